"""Face generation speed: our MobileStyleGAN path against the same IR files run the plain way, side by side.

    .venv/bin/python bench/bench_faces.py [--faces 8] [--rounds 3] [--sizes 1024 512 256] [--log FILE]

For each output size, each variant runs in its own fresh process (so peak RSS is its own), in turns
A B A B ... for `--rounds` rounds:
- ours: `core.generate_faces(count=faces, seed=0, truncation_psi=0.7, size=size)` (f32, per-layer
  style inputs, a latency-hinted model for one face, a throughput-hinted one with several infer
  requests in flight for a batch; core.models.mobilestylegan);
- plain: one `openvino.Core().compile_model(xml, "CPU")` per network with OpenVINO's defaults and one
  `infer` per face (mapping, truncation, synthesis), then the same clip/convert/Lanczos resize.
Each process warms up (ours: with a batch of two; plain: one face), then times `faces` faces; seconds per face is the median over
rounds, ratio = plain / ours (> 1: ours faster), paired round by round. Then the default tab request
(`/generate_faces` with no inputs: 4 faces at 1024 px, PNG files written) through gradio_client on the
app in this process: median of 5 after one warm-up. CPU and flags are printed first. Takes about 3 minutes
on 2 cores; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_description, write_log  # noqa: E402

PSI = 0.7


def run_ours(faces: int, size: int) -> float:
    """Seconds for `faces` faces through core (after a two-face warm-up: a batch, as the tab's default
    request is, so the single-face model is not compiled and its memory is not counted)."""
    import core

    core.generate_faces(count=2, seed=10_000, truncation_psi=PSI, size=size)
    start = time.perf_counter()
    core.generate_faces(count=faces, seed=0, truncation_psi=PSI, size=size)
    return time.perf_counter() - start


def run_plain(faces: int, size: int) -> float:
    """Seconds for `faces` faces the plain way (after a one-face warm-up): default compile, one infer each."""
    import numpy as np
    import openvino as ov
    from PIL import Image

    from core.models.gans import MOBILESTYLEGAN_FOLDER
    from core.paths import WEIGHTS_DIR

    folder = WEIGHTS_DIR / "faces" / MOBILESTYLEGAN_FOLDER
    ov_core = ov.Core()
    mapping = ov_core.compile_model(folder / "MappingNetwork.xml", "CPU")
    synthesis = ov_core.compile_model(folder / "SynthesisNetwork.xml", "CPU")
    z_mean = np.random.default_rng(0).standard_normal((4096, 512), dtype=np.float32)
    mean = np.mean([mapping({"var": z[None]})["style"][0] for z in z_mean], axis=0)

    def one(seed: int) -> Image.Image:
        z = np.random.RandomState(seed).randn(1, 512).astype(np.float32)
        style = mean + PSI * (mapping({"var": z})["style"] - mean)
        img = synthesis({"style": style})["img"][0]  # (3, 1024, 1024)
        rgb = np.clip(img * 127.5 + 128.0, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        picture = Image.fromarray(rgb)
        return picture if size == 1024 else picture.resize((size, size), Image.Resampling.LANCZOS)

    one(10_000)
    start = time.perf_counter()
    for seed in range(faces):
        one(seed)
    return time.perf_counter() - start


def child(variant: str, faces: int, size: int) -> None:
    """Run one variant and print JSON: seconds per face and peak RSS (MiB) of this process."""
    seconds = (run_ours if variant == "ours" else run_plain)(faces, size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"per_face_s": seconds / faces, "peak_rss_mib": peak}))


def measure(variant: str, faces: int, size: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", variant, "--faces", str(faces), "--sizes", str(size)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tab_request(runs: int = 5) -> list[float]:
    """Seconds of the default /generate_faces request (4 faces at 1024 px) through gradio_client."""
    from gradio_client import Client

    import app

    hub = app.build()
    hub.launch(prevent_thread_lock=True, server_port=7949, quiet=True)
    try:
        client = Client(hub.local_url, verbose=False)
        client.predict(api_name="/generate_faces")  # warm-up: loads and compiles the model
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            client.predict(api_name="/generate_faces")
            times.append(time.perf_counter() - start)
        return times
    finally:
        hub.close()


def precision_gap(seed: int = 0) -> str:
    """How far OpenVINO's default inference precision on this CPU moves a face from f32 (ours), in
    8-bit levels: the same seed's 1024-px face drawn both ways, max and mean absolute difference."""
    import numpy as np
    import openvino as ov

    import core
    from core.models.gans import MOBILESTYLEGAN_FOLDER
    from core.paths import WEIGHTS_DIR

    ours = np.asarray(core.generate_faces(count=1, seed=seed, truncation_psi=PSI).images[0], dtype=np.int16)
    folder = WEIGHTS_DIR / "faces" / MOBILESTYLEGAN_FOLDER
    synthesis = ov.Core().compile_model(folder / "SynthesisNetwork.xml", "CPU")
    from core import catalog
    from core.models import gans, registry

    net = registry.load(gans.KIND, catalog.DEFAULT_FACE_MODEL)
    mean = net.mean_style()
    style = mean + PSI * (net.mapping(np.random.RandomState(seed).randn(1, 512).astype(np.float32)) - mean)
    img = synthesis({"style": style.astype(np.float32)})["img"][0]
    plain = np.clip(img * 127.5 + 128.0, 0, 255).astype(np.uint8).transpose(1, 2, 0).astype(np.int16)
    gap = np.abs(ours - plain)
    return (f"default precision here: {synthesis.get_property('INFERENCE_PRECISION_HINT')}; seed {seed} drawn in it "
            f"differs from f32 by up to {gap.max()} 8-bit levels (mean {gap.mean():.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512, 256])
    parser.add_argument("--child", choices=["ours", "plain"])
    parser.add_argument("--log", type=Path)
    parser.add_argument("--precision-only", action="store_true",
                        help="only compare the default precision's pixels with f32 (no timing), appended to --log")
    args = parser.parse_args()
    if args.precision_only:
        line = precision_gap()
        print(line)
        if args.log:
            with open(args.log, "a") as log:
                log.write(f"$ .venv/bin/python bench/bench_faces.py {' '.join(sys.argv[1:])}\n{line}\n")
        return
    if args.child:
        child(args.child, args.faces, args.sizes[0])
        return
    lines = [cpu_description(), f"{args.faces} faces per run, psi {PSI}, {args.rounds} rounds, variants alternating"]
    print(lines[0], flush=True)
    lines.append(f"{'size':>5} {'ours s/face':>12} {'plain s/face':>13} {'ratio plain/ours':>17} "
                 f"{'ours RSS MiB':>13} {'plain RSS MiB':>14}")
    for size in args.sizes:
        ours, plain = [], []
        for _ in range(args.rounds):
            ours.append(measure("ours", args.faces, size))
            plain.append(measure("plain", args.faces, size))
        ratios = [p["per_face_s"] / o["per_face_s"] for o, p in zip(ours, plain)]
        lines.append(f"{size:>5} {statistics.median(o['per_face_s'] for o in ours):>12.3f} "
                     f"{statistics.median(p['per_face_s'] for p in plain):>13.3f} "
                     f"{statistics.median(ratios):>8.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
                     f"{max(o['peak_rss_mib'] for o in ours):>13.0f} {max(p['peak_rss_mib'] for p in plain):>14.0f}")
        print(lines[-1], flush=True)
    lines.append(precision_gap())
    print(lines[-1], flush=True)
    times = tab_request()
    lines.append(f"default tab request (/generate_faces, 4 faces at 1024 px, PNG files) through gradio_client: "
                 f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}, 5 runs)")
    print(lines[-1], flush=True)
    if args.log:
        write_log(args.log, lines)


if __name__ == "__main__":
    main()
