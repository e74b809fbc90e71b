"""Pick the device and dtype a model runs on: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import os
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def default_device() -> torch.device:
    """The best device here: CUDA, then MPS, then CPU. `IMAGEGEN_DEVICE` (e.g. "cpu") overrides it."""
    forced = os.environ.get("IMAGEGEN_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on CUDA and MPS, fp32 on the CPU (CPU speed-ups use bf16 autocast per model instead)."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def cpu_has_bf16() -> bool:
    """True when this CPU does bf16 matrix work natively (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    try:
        flags = open("/proc/cpuinfo", encoding="ascii", errors="ignore").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
