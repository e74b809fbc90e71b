"""Face-restoration nets from the user's files (GFPGAN, RestoreFormer, ... as spandrel reads them).

Any face-restoration architecture spandrel knows (its "FaceSR" models: GFPGAN v1 Clean, Wang et al.
2021, arXiv:2101.04061, Apache-2.0; RestoreFormer, Wang et al. 2022, arXiv:2201.06374, Apache-2.0)
works from a `.safetensors` or `.pth` file in the models folder, read only as tensors
(core.models.spandrel_io). CodeFormer (S-Lab License 1.0, non-commercial) is not in spandrel's main
package; its files are read too when the user has installed `spandrel_extra_arches`. Cached per
file version.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.checks import check_name, shown
from core.errors import InvalidInput, UnsafeModelFile
from core.models import files, registry, spandrel_io
from core.models.registry import FileVersion, ModelKind

KIND = ModelKind.FACE_RESTORER


def choices() -> list[tuple[str, str]]:
    """(label, file) pairs of the models folder's face-restoration files, e.g.
    ("GFPGANv1.4.safetensors (x1 GFPGAN)", "GFPGANv1.4.safetensors")."""
    return spandrel_io.labelled({name: files.MODELS_DIR / name for name in files.scan("upscaler")}, "FaceSR")


def get_restorer(model: str | os.PathLike):
    """The loaded (cached) face-restoration net of a file (relative to the models folder, or a path
    inside the allowed folders): spandrel's ImageModelDescriptor on the default device, fp32.

    Raises:
        InvalidInput: `model` is not a path, or no name (core.checks.check_name: too long, control
            characters, invalid Unicode).
        ModelNotFound: the file is missing or outside the allowed folders.
        UnsafeModelFile: see core.models.spandrel_io.read; or the file is an upscaler, not a face restorer.
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise InvalidInput(f"face_restoration must be a file name, got {shown(model)}")
    name = check_name("face_restoration", os.fspath(model))
    if name in registry.names(ModelKind.UPSCALER):
        raise UnsafeModelFile(f"{name} is an upscaler, not a face-restoration model (GFPGAN, RestoreFormer, ...); "
                              "put one into the models folder")
    path = files.resolve_file(name)
    return registry.load_source(KIND, FileVersion.of(path), lambda: _load(path))


def _load(path: Path):
    from core.models.devices import default_device

    descriptor = spandrel_io.read(path).descriptor
    if descriptor.purpose != "FaceSR":
        raise UnsafeModelFile(f"{path.name} is {spandrel_io.a_or_an(descriptor.architecture.name)} upscaler, "
                              "not a face-restoration model (GFPGAN, RestoreFormer, ...)")
    return descriptor.to(default_device())
