"""imagegen-hub's core: one inference function per generator, no UI.

    from core import text_to_image, image_to_image, outpaint, generate_faces, interpolate_faces, upscale

Importing `core` is cheap: torch, diffusers and the weights load on first use of a generator.
Every function returns a `core.Result`; every deliberate failure is a `core.CoreError`.
What a UI lists and offers (models, defaults, ranges, samplers) is in `core.catalog`; the image
helpers a UI needs (`open_image`, `save_png`, `to_8bit`, `read_parameters`,
`read_provenance`) are exported here too.

Packages: `core.generators` (the public functions: orchestration), `core.models` (registry,
cache, loaders per model kind), `core.imaging` (pixels: I/O, tiling, face detection),
`core.build` (fetching and converting the embedded weights), `core.training`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.errors import Cancelled, CoreError, InvalidInput, ModelError, ModelNotFound, OutOfMemory, UnsafeModelFile
from core.result import Result

_LAZY = {
    "text_to_image": "core.generators.diffusion",
    "image_to_image": "core.generators.diffusion",
    "outpaint": "core.generators.outpaint",
    "generate_faces": "core.generators.faces",
    "interpolate_faces": "core.generators.faces",
    "upscale": "core.generators.super_resolution",
    "open_image": "core.imaging.io",
    "save_png": "core.imaging.io",
    "to_8bit": "core.imaging.io",
    "read_parameters": "core.imaging.parameters",
    "read_provenance": "core.imaging.provenance_report",
}

__all__ = [
    "Cancelled", "CoreError", "InvalidInput", "ModelError", "ModelNotFound", "OutOfMemory", "UnsafeModelFile", "Result",
    *_LAZY,
]

if TYPE_CHECKING:  # pragma: no cover
    from core.generators.diffusion import image_to_image, text_to_image  # noqa: F401
    from core.generators.faces import generate_faces, interpolate_faces  # noqa: F401
    from core.generators.outpaint import outpaint  # noqa: F401
    from core.generators.super_resolution import upscale  # noqa: F401
    from core.imaging.io import open_image, save_png, to_8bit  # noqa: F401
    from core.imaging.parameters import read_parameters  # noqa: F401
    from core.imaging.provenance_report import read_provenance  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
