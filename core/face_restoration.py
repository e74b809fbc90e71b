"""Face restoration: redraw a blurry or damaged face crop with a face-restoration net from a user's file.

Any face-restoration architecture spandrel knows (its "FaceSR" models: GFPGAN v1 Clean, Wang et al.
2021, arXiv:2101.04061, Apache-2.0; RestoreFormer, Wang et al. 2022, arXiv:2201.06374, Apache-2.0)
works from a `.safetensors` or `.pth` file in the models folder, read only as tensors
(core.spandrel_files). CodeFormer (S-Lab License 1.0, non-commercial) is not in spandrel's main
package; its files are read too when the user has installed `spandrel_extra_arches`.

The nets were trained on 512x512 crops of centred, upright faces (FFHQ alignment). `restore_face`
takes a picture that is such a crop (as the face tab makes them); `restore_faces` finds the faces
in any picture (core.face_detection), cuts a crop around each, restores it and blends it back with
a feathered edge, leaving the rest of the picture untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from core import models, spandrel_files
from core.checks import check_float
from core.devices import default_device
from core.errors import InvalidInput, UnsafeModelFile
from core.face_detection import Box, find_faces
from core.imageio import to_pil, to_tensor
from core.model_files import resolve_file, scan
from core.paths import MODELS_DIR

KIND = "face_restorer"  # cached by path + mtime
FACE_SIDE = 512
"""Side of the face crop the nets were trained on (FFHQ-aligned, 512x512)."""
CROP_PER_FACE = 2.0
"""Side of the crop cut around a detected face, in face-box sides: in FFHQ-aligned crops the face
(brows to mouth) fills about the middle half, with hair, ears and chin around it. Our framing."""
CROP_RAISE = 0.1
"""How far the crop's centre sits above the face box's centre, in face-box sides (the box centres on
the nose; aligned crops centre a little above it). Our framing."""


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
        image: an RGB, RGBA, L or LA PIL image of a centred, upright face, any size (resized to
            FACE_SIDE x FACE_SIDE for the net with Lanczos, and to `size` after).
        size: (width, height) of the result in px; None keeps the input's size.
        model: a face-restoration file, see `get_restorer`.
        weight: 0..1, how much of the restored face to keep: 1 all of it, 0 the input unchanged,
            in between a linear blend (what A1111 calls the restorer's visibility).

    Returns:
        An image of `size` in the input's mode (alpha resized with Lanczos, not restored; grey
        modes get the restored face in grey).

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
    if image.mode in ("RGBA", "LA"):
        out.putalpha(image.getchannel("A").resize(size, Image.Resampling.LANCZOS))
    return out.convert(image.mode) if image.mode in ("L", "LA") else out


def crop_box(face: Box) -> Box:
    """The square crop to restore around `face`, in the same px: CROP_PER_FACE face sides wide,
    centred CROP_RAISE face sides above the face's centre. It may reach past the picture's edges
    (a face at the border stays centred in its crop; `cut` fills the outside)."""
    side = round(max(face.right - face.left, face.bottom - face.top) * CROP_PER_FACE)
    left = round((face.left + face.right - side) / 2)
    top = round((face.top + face.bottom - side) / 2 - CROP_RAISE * (face.bottom - face.top))
    return Box(left, top, left + side, top + side)


def cut(image: Image.Image, box: Box) -> Image.Image:
    """`image`'s pixels inside `box`; where the box reaches past the picture, its edge pixels are
    repeated outwards (what a face crop at the border is given instead of black)."""
    inside = (max(box.left, 0), max(box.top, 0), min(box.right, image.width), min(box.bottom, image.height))
    pixels = np.asarray(image.crop(inside))
    pad = [(inside[1] - box.top, box.bottom - inside[3]), (inside[0] - box.left, box.right - inside[2])]
    return Image.fromarray(np.pad(pixels, pad + [(0, 0)] * (pixels.ndim - 2), mode="edge"), image.mode)


def _feather(side: int) -> Image.Image:
    """An L mask of side x side px: 255 in the middle, fading to 0 over the outer tenth of each edge."""
    edge = max(1, side // 10)
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).rectangle((edge, edge, side - 1 - edge, side - 1 - edge), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(edge / 2))


def restore_faces(image: Image.Image, model: str | os.PathLike, *, weight: float = 1.0,
                  on_face: Callable[[int, int], None] | None = None) -> tuple[Image.Image, list[Box]]:
    """Find the faces in `image` (core.face_detection.find_faces) and restore each in place.

    Each face gets a square crop (`crop_box`, edge pixels repeated past the picture's border),
    redrawn by `restore_face` at FACE_SIDE px, resized back and pasted through a feathered mask, so
    no seam shows; pixels outside every crop are unchanged. Overlapping crops are done one after
    the other, largest face first.

    Args:
        image: an RGB, RGBA, L or LA PIL image, any size (alpha is kept as it was).
        model: a face-restoration file, see `get_restorer`.
        weight: 0..1, see `restore_face`; 0 returns a copy at once, without looking for faces.
        on_face: called as on_face(done, total) after each face (a face takes seconds on a CPU).

    Returns:
        (a new image of the same size and mode, the areas redrawn: each face's crop clipped to the
        picture, in image px). With no face found (or weight 0) the image comes back unchanged and
        the list is empty.

    Raises:
        InvalidInput: weight out of range. ModelNotFound: the model file, or OpenCV's face cascade, is
        missing. UnsafeModelFile: see `get_restorer`.
    """
    weight = check_float("face restoration weight", weight, 0.0, 1.0)
    get_restorer(model)  # a bad file fails before the detector runs
    out = image.copy()
    if weight == 0.0:
        return out, []
    crops = [crop_box(face) for face in find_faces(image)]
    for done, box in enumerate(crops, 1):
        redrawn = restore_face(cut(out, box), model, weight=weight)
        out.paste(redrawn, box[:2], _feather(redrawn.width))
        if on_face is not None:
            on_face(done, len(crops))
    return out, [Box(max(b.left, 0), max(b.top, 0), min(b.right, image.width), min(b.bottom, image.height))
                 for b in crops]
