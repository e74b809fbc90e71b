"""Every error that `core` raises on purpose.

Each one is something the user can act on: the UI shows the message as-is (as a `gr.Error`),
the CLI prints it on one line and exits non-zero. Each also inherits the matching builtin, so
callers that only know Python's own exceptions still catch it.
"""

from __future__ import annotations

import re

_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\](?:[^\s'\"/\\,;:()]+[/\\])+([^\s'\",;:()]*)")


class CoreError(Exception):
    """Something the user can act on; the UI and the CLI show the message as-is."""


class InvalidInput(CoreError, ValueError):
    """An argument is missing, of the wrong type, or out of its documented range."""


class ModelNotFound(CoreError, FileNotFoundError):
    """A model name, path or repo id matches nothing that can be loaded here."""


class UnsafeModelFile(CoreError, ValueError):
    """A weights file that is malformed, of an unknown kind, or would need unpickling of code."""


class OutOfMemory(CoreError, MemoryError):
    """The request does not fit in the memory of the chosen device, even at the smallest setting."""


class ModelError(CoreError, RuntimeError):
    """The model ran but produced no usable image (e.g. NaN values even in float32)."""


def brief(err: BaseException, limit: int = 240) -> str:
    """A library exception as a short reason for a user: its first line, every absolute path cut
    to its last part (no server paths reach the page), at most `limit` characters."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = _PATH.sub(lambda m: m.group(1) or "that folder", lines[0] if lines else type(err).__name__)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Cancelled(CoreError):
    """The request was stopped (the Stop button, `job.cancel()`, or the caller's `on_step` raising
    it) before it finished; nothing was returned and the memory it held is free again."""
