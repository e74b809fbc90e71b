"""imagegen-hub's core: one inference function per generator, no UI.

    from core import text_to_image, image_to_image, generate_faces, upscale

Importing `core` is cheap: torch, diffusers and the weights load on first use of a generator.
Every function returns a `core.Result`; every deliberate failure is a `core.CoreError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.errors import CoreError, InvalidInput, ModelNotFound, OutOfMemory, UnsafeModelFile
from core.result import Result

_LAZY = {
    "text_to_image": "core.diffusion",
    "image_to_image": "core.diffusion",
    "generate_faces": "core.faces",
    "interpolate_faces": "core.faces",
    "upscale": "core.super_resolution",
}

__all__ = [
    "CoreError", "InvalidInput", "ModelNotFound", "OutOfMemory", "UnsafeModelFile", "Result", *_LAZY,
]

if TYPE_CHECKING:  # pragma: no cover
    from core.diffusion import image_to_image, text_to_image
    from core.faces import generate_faces, interpolate_faces
    from core.super_resolution import upscale


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
