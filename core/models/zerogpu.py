"""Hugging Face ZeroGPU support: GPU-bound functions borrow a GPU only while they run.

On a ZeroGPU Space the `spaces` package is installed, and a function decorated with
`spaces.GPU(duration=...)` is given a GPU for at most `duration` seconds per call. Anywhere else
`spaces` is absent and `gpu()` leaves functions unchanged. Source: huggingface.co/docs/hub/spaces-zerogpu.

Errors: `spaces.GPU` runs the function in a forked worker and raises the worker's exception again, as
it is, in the caller (spaces/zero/wrappers.py: `raise res.value`), so `core.Cancelled` and the other
`CoreError`s come out unchanged; nothing here catches them. The function's arguments, `on_step`
included, are pickled to that worker, and on_step then runs there.
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
