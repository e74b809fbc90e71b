"""Hugging Face ZeroGPU support: GPU-bound functions borrow a GPU only while they run.

On a ZeroGPU Space the `spaces` package is installed, and a function decorated with
`spaces.GPU(duration=...)` is given a GPU for at most `duration` seconds per call. Anywhere else
`spaces` is absent and `gpu()` leaves functions unchanged. Source: huggingface.co/docs/hub/spaces-zerogpu.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def available() -> bool:
    """Whether the `spaces` package (Hugging Face ZeroGPU) can be imported here."""
    try:
        import spaces  # noqa: F401
    except ImportError:
        return False
    return True


def gpu(duration: int = 60) -> Callable[[F], F]:
    """Decorator: `spaces.GPU(duration=duration)` when `spaces` is importable, else the identity.

    Apply it at import time (module level), as ZeroGPU requires. `duration` is the longest a call
    may hold the GPU, in seconds.
    """
    if not available():
        return lambda fn: fn
    import spaces

    return spaces.GPU(duration=duration)
