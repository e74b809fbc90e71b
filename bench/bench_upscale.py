"""Upscaling speed: our PyTorch path (core.generators.super_resolution) against ncnn's own runtime, same inputs.

    .venv/bin/python bench/bench_upscale.py [--large] [--threads 2] [--compile] [--separate]

Prints seconds (min of 3 alternating rounds, after a warm-up) for each model and size, and the ratio
ncnn_time / our_time (above 1: we are faster); a control column times ncnn with its Winograd
convolutions turned off (direct convolutions, like PyTorch's oneDNN on an AVX2 CPU), to show where
ncnn's lead comes from; then the wall time of the tab's default request
(a 256x256 photo, x4, default model) through core.upscale, first call (with model load) and warm.
Input: astronaut.png from the scikit-image 0.26.0 wheel, resized with Lanczos. About a minute on 2 cores.

--separate times each runtime in its own process instead, one after the other (5 runs each after
a warm-up, min): both use OpenMP worker threads that spin for a while after a call, so when they
alternate in one process, each can be timed against the other's spinning threads. It also times
core.upscale on the same picture (PIL in and out, tiled as the tab runs it: a 512-px picture in
3x3 tiles of 182 px), against ncnn on the whole picture.

--compile adds a column: the same net through torch.compile (inductor, with weight freezing,
so convolutions get prepacked oneDNN weights), compiled once per model and input shape before
timing; the compile time is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # ncnn_reference: a test helper

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from core.imaging.io import to_tensor  # noqa: E402
from core.paths import REPO_DIR  # noqa: E402


def best_of(*fns, runs: int = 3) -> list[float]:
    """Min seconds of each function over `runs` rounds, after one warm-up each.

    Rounds alternate between the functions, so background load on the machine hits all alike.
    """
    for fn in fns:
        fn()  # first-call allocations and kernel selection
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def compiled_net(up, x: torch.Tensor):
    """`up`'s net through torch.compile (inductor, freezing on), compiled for `x`'s shape; returns
    (the callable taking x, seconds the compile took)."""
    import torch._inductor.config as inductor

    inductor.freezing = True
    net = torch.compile(up.model.model)
    xs = x.contiguous(memory_format=torch.channels_last)
    started = time.perf_counter()
    with torch.inference_mode():
        net(xs)

    def run(x):
        with torch.inference_mode():
            return net(x.contiguous(memory_format=torch.channels_last))
    return run, time.perf_counter() - started


def child(runtime: str, name: str, side: int, threads: int) -> float:
    """Min seconds of 5 runs of one runtime on the photo at `side` px, in this process alone: "ours"
    (the net on the whole picture), "upscale" (core.upscale: PIL in and out, tiled as the tab runs
    it), "ncnn" or "ncnn-direct" (ncnn without Winograd)."""
    from ncnn_reference import ncnn_runner, wheel_models

    import core
    from core.models import upscalers

    picture = photo().resize((side, side), Image.Resampling.LANCZOS)
    x = to_tensor(picture)
    if runtime == "ours":
        up = upscalers.get_upscaler(name)
        fn = lambda: up(x)  # noqa: E731
    elif runtime == "upscale":
        fn = lambda: core.upscale(picture, model=name)  # noqa: E731
    else:
        array = np.ascontiguousarray(x[0].numpy())
        run = ncnn_runner(wheel_models(REPO_DIR / ".cache" / "ncnn-realesrgan"), name, threads=threads, fp32=False,
                          winograd=runtime == "ncnn")
        fn = lambda: run(array)  # noqa: E731
    (best,) = best_of(fn, runs=5)
    return best


def photo(name: str = "astronaut.png") -> Image.Image:
    """A scikit-image photo (astronaut.png by default; 0.26.0 wheel, BSD-3-Clause), RGB."""
    from core.build.wheels import photo_file

    return Image.open(photo_file(name)).convert("RGB")


def separate(cases: list[tuple[str, int]], threads: int) -> None:
    """Each runtime in its own process per case; prints seconds and the ratios to ours."""
    import subprocess

    print(f"{'model':28} {'input':>9} {'ours s':>8} {'ncnn s':>8} {'ncnn/ours':>10} {'direct s':>9} "
          f"{'direct/ours':>12} {'upscale s':>10} {'ncnn/upscale':>13}  (separate processes; direct: ncnn "
          "without Winograd; upscale: core.upscale, tiled)")
    for name, side in cases:
        times = {}
        for runtime in ("ours", "ncnn", "ncnn-direct", "upscale"):
            done = subprocess.run([sys.executable, __file__, "--child", runtime, "--model", name, "--side", str(side),
                                   "--threads", str(threads)], capture_output=True, text=True, check=True)
            times[runtime] = float(done.stdout.strip().splitlines()[-1])
        print(f"{name:28} {side:>4}x{side:<4} {times['ours']:8.3f} {times['ncnn']:8.3f} "
              f"{times['ncnn'] / times['ours']:10.2f} {times['ncnn-direct']:9.3f} "
              f"{times['ncnn-direct'] / times['ours']:12.2f} {times['upscale']:10.3f} "
              f"{times['ncnn'] / times['upscale']:13.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also time animevideov3 at 512x512")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both runtimes")
    parser.add_argument("--compile", action="store_true", help="also time the net through torch.compile")
    parser.add_argument("--separate", action="store_true", help="time each runtime in its own process")
    parser.add_argument("--child", choices=("ours", "upscale", "ncnn", "ncnn-direct"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(child(args.child, args.model, args.side, args.threads))
        return

    from ncnn_reference import ncnn_runner, wheel_models

    import core
    from core.models import devices, registry, upscalers

    picture = photo()
    ncnn_dir = wheel_models(REPO_DIR / ".cache" / "ncnn-realesrgan")

    cases = [("realesr-animevideov3-x4", 256), ("RealESRGAN_x4plus", 128)]
    if args.large:
        cases.insert(1, ("realesr-animevideov3-x4", 512))
    if args.separate:
        separate(cases, args.threads)
        return
    print(f"threads={args.threads} device={devices.default_device()} bf16_cpu={devices.cpu_has_bf16()}")
    print(f"{'model':28} {'input':>9} {'ours s':>8} {'ncnn s':>8} {'ncnn/ours':>10} {'direct s':>9} "
          f"{'direct/ours':>12}  precision" + ("   compiled s  ncnn/compiled  compile s" if args.compile else ""))
    for name, side in cases:
        x = to_tensor(picture.resize((side, side), Image.Resampling.LANCZOS))  # (1, 3, side, side) in [0, 1]
        up = upscalers.get_upscaler(name)
        run = ncnn_runner(ncnn_dir, name, threads=args.threads, fp32=False)
        direct = ncnn_runner(ncnn_dir, name, threads=args.threads, fp32=False, winograd=False)
        array = np.ascontiguousarray(x[0].numpy())
        fns = [lambda: up(x), lambda: run(array), lambda: direct(array)]
        if args.compile:
            compiled, compile_s = compiled_net(up, x)
            fns.append(lambda: compiled(x))
        ours, theirs, control, *rest = best_of(*fns)
        extra = f"   {rest[0]:10.3f}  {theirs / rest[0]:13.2f}  {compile_s:9.1f}" if rest else ""
        print(f"{name:28} {side:>4}x{side:<4} {ours:8.3f} {theirs:8.3f} {theirs / ours:10.2f} {control:9.3f} "
              f"{control / ours:12.2f}  {up.precision}{extra}",
              flush=True)

    registry.clear_cache()
    request = picture.resize((256, 256), Image.Resampling.LANCZOS)
    start = time.perf_counter()
    result = core.upscale(request)
    first = time.perf_counter() - start
    (warm,) = best_of(lambda: core.upscale(request), runs=2)
    print(f"default request (256x256 photo -> {result.images[0].size[0]}x{result.images[0].size[1]}, "
          f"{result.parameters['model']}, tile {result.parameters['tile']}): "
          f"first call {first:.2f} s (with model load), warm {warm:.2f} s")


if __name__ == "__main__":
    main()
