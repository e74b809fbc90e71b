"""Every error that `core` raises on purpose.

Each one is something the user can act on: the UI shows the message as-is (as a `gr.Error`),
the CLI prints it on one line and exits non-zero. Each also inherits the matching builtin, so
callers that only know Python's own exceptions still catch it.
"""

from __future__ import annotations


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
