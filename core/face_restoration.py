"""Face restoration: redraw a blurry or damaged face crop with a face-restoration net from a user's file.

Any face-restoration architecture spandrel knows (its "FaceSR" models: GFPGAN v1 Clean, Wang et al.
2021, arXiv:2101.04061, Apache-2.0; RestoreFormer, Wang et al. 2022, arXiv:2201.06374, Apache-2.0)
works from a `.safetensors` or `.pth` file in the models folder, read only as tensors
(core.spandrel_files). CodeFormer (S-Lab License 1.0, non-commercial) is not in spandrel's main
package; its files are read too when the user has installed `spandrel_extra_arches`.

No face detector ships here, so the whole picture is treated as one face crop, centred and upright,
as the face tab makes them and as face datasets (FFHQ) align them. The nets were trained at 512x512.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from core import models, spandrel_files
from core.checks import check_float
from core.devices import default_device
from core.errors import InvalidInput, UnsafeModelFile
from core.imageio import to_pil, to_tensor
from core.model_files import resolve_file, scan
from core.paths import MODELS_DIR

KIND = "face_restorer"  # cached by path + mtime
FACE_SIDE = 512
"""Side of the face crop the nets were trained on (FFHQ-aligned, 512x512)."""


def choices() -> list[tuple[str, str]]:
    """(label, file) pairs of the models folder's face-restoration files, e.g.
    ("GFPGANv1.4.safetensors (x1 GFPGAN)", "GFPGANv1.4.safetensors")."""
    return spandrel_files.labelled({name: MODELS_DIR / name for name in scan("upscaler")}, "FaceSR")


def get_restorer(model: str | os.PathLike):
    """The loaded (cached) face-restoration net of a file (relative to the models folder, or a path
    inside the allowed folders): spandrel's ImageModelDescriptor on the default device, fp32.

    Raises:
        InvalidInput: `model` is not a path.
        ModelNotFound: the file is missing or outside the allowed folders.
        UnsafeModelFile: see core.spandrel_files.read; or the file is an upscaler, not a face restorer.
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise InvalidInput(f"face restoration model must be a file name, got {model!r}")
    if model in models.names("upscaler"):
        raise UnsafeModelFile(f"{model} is an upscaler, not a face-restoration model (GFPGAN, RestoreFormer, ...); "
                              "put one into the models folder")
    path = resolve_file(os.fspath(model))
    return models.load_file(KIND, path, lambda: _load(path))


def prepare(model: str | os.PathLike, weight: float) -> float:
    """Check a restoration request before any picture is made: loads the restorer (see
    `get_restorer` for the errors) and returns `weight` checked to 0..1 (InvalidInput otherwise)."""
    weight = check_float("face_weight", weight, 0.0, 1.0)
    get_restorer(model)
    return weight


def _load(path: Path):
    descriptor = spandrel_files.read(path).descriptor
    if descriptor.purpose != "FaceSR":
        raise UnsafeModelFile(f"{path.name} is {spandrel_files.a_or_an(descriptor.architecture.name)} upscaler, "
                              "not a face-restoration model (GFPGAN, RestoreFormer, ...)")
    return descriptor.to(default_device())


def restore_face(image: Image.Image, model: str | os.PathLike, *, weight: float = 1.0,
                 size: tuple[int, int] | None = None) -> Image.Image:
    """Restore one face crop.

    Args:
        image: an RGB, RGBA or L PIL image of a centred, upright face, any size (resized to
            FACE_SIDE x FACE_SIDE for the net with Lanczos, and to `size` after).
        size: (width, height) of the result in px; None keeps the input's size.
        model: a face-restoration file, see `get_restorer`.
        weight: 0..1, how much of the restored face to keep: 1 all of it, 0 the input unchanged,
            in between a linear blend (what A1111 calls the restorer's visibility).

    Returns:
        An image of `size` in the input's mode, RGB, RGBA or L (alpha resized with Lanczos, not
        restored).

    Raises:
        InvalidInput: weight out of range. ModelNotFound, UnsafeModelFile: see `get_restorer`.
    """
    weight = check_float("face restoration weight", weight, 0.0, 1.0)
    net = get_restorer(model)
    size = tuple(size or image.size)
    if weight == 0.0:
        return image.resize(size, Image.Resampling.LANCZOS) if image.size != size else image.copy()
    rgb = image.convert("RGB")
    face = rgb.resize((FACE_SIDE, FACE_SIDE), Image.Resampling.LANCZOS)
    x = to_tensor(face).to(net.device)  # (1, 3, 512, 512) in [0, 1]
    with torch.inference_mode():
        restored = net(x).float().cpu()  # spandrel takes and gives [0, 1]
    out = to_pil(restored)[0].resize(size, Image.Resampling.LANCZOS)
    if weight < 1.0:
        out = Image.blend(rgb.resize(size, Image.Resampling.LANCZOS), out, weight)
    if image.mode == "RGBA":
        out.putalpha(image.getchannel("A").resize(size, Image.Resampling.LANCZOS))
    return out.convert("L") if image.mode == "L" else out
