"""Face restoration as a step of a generator: redraw faces with a face-restoration net and blend them back.

The nets (core.models.face_restorers) were trained on 512x512 crops of centred, upright faces (FFHQ
alignment). `restore_face` takes a picture that is such a crop (as the faces tab makes them);
`restore_faces` finds the faces in any picture (core.imaging.face_detection), cuts a crop around
each, restores it and blends it back with a feathered edge, leaving the rest of the picture
untouched. `Restorer` is the option as both the faces and the super-resolution generators use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from core.checks import check_float
from core.imaging import face_detection
from core.imaging.face_detection import Box, find_faces
from core.imaging.io import to_pil, to_tensor
from core.models.face_restorers import get_restorer
from core.models.output_checks import bad_values, lost_contrast, redo_in_float32

FACE_SIDE = 512
"""Side of the face crop the nets were trained on (FFHQ-aligned, 512x512)."""
CROP_PER_FACE = 2.0
"""Side of the crop cut around a detected face, in face-box sides: in FFHQ-aligned crops the face
(brows to mouth) fills about the middle half, with hair, ears and chin around it. Our framing."""
CROP_RAISE = 0.1
"""How far the crop's centre sits above the face box's centre, in face-box sides (the box centres on
the nose; aligned crops centre a little above it). Our framing."""


class Restorer:
    """The face-restoration option of a generator; identity when no model is chosen.

    Made before any picture is drawn, so a bad file, weight or missing detector fails first.

    Args:
        model: None or "" for none, else a face-restoration file (core.models.face_restorers.get_restorer).
        weight: 0..1, how much of the restored face to keep.
        find_faces: True to look for faces in each picture (any photo); False when each picture
            is a face crop already (the faces tab).

    Raises:
        InvalidInput: weight out of range. ModelNotFound, UnsafeModelFile: see `get_restorer`;
        ModelNotFound also when faces must be found and OpenCV's face cascade is missing.
    """

    def __init__(self, model: str | os.PathLike | None, weight: float, *, find_faces: bool) -> None:
        self.model = model or None
        self.weight = check_float("face_weight", weight, 0.0, 1.0)
        if self.model:
            get_restorer(self.model)
            if find_faces:
                face_detection.detector()
        self.parameters = {"face_restoration": self.model, "face_weight": self.weight if self.model else None}

    def face(self, image: Image.Image) -> Image.Image:
        """One face crop restored whole at FACE_SIDE px (the input unchanged without a model)."""
        if not self.model:
            return image
        return restore_face(image, self.model, weight=self.weight, size=(FACE_SIDE, FACE_SIDE))

    def in_picture(self, image: Image.Image, on_face: Callable[[int, int], None] | None = None
                   ) -> tuple[Image.Image, list[list[int]] | None, list[str]]:
        """The faces found in `image` restored in place (see `restore_faces`). Returns (picture, the
        crops redrawn as [left, top, right, bottom] px, or None without a model, warnings)."""
        if not self.model:
            return image, None, []
        if image.mode == "I;16":
            return image, [], ["face restoration was skipped: it works on 8-bit pictures, and this one is 16-bit"]
        out, crops = restore_faces(image, self.model, weight=self.weight, on_face=on_face)
        warnings = []
        if not crops and self.weight > 0:
            warnings.append("face restoration found no face, so nothing was redrawn (it finds upright faces "
                            f"looking at the camera, at least 1/{face_detection.MIN_FACE_SHARE} of the picture's "
                            f"longest side wide and {face_detection.MIN_FACE_PX} px or more)")
        return out, [list(box) for box in crops], warnings


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
        ModelError: the net gave NaN or infinite values, or one flat colour for a face with contrast
            (its weights are damaged or not a face restorer's; face restorers run in float32 already).
    """
    weight = check_float("face restoration weight", weight, 0.0, 1.0)
    net = get_restorer(model)
    size = tuple(size or image.size)
    if weight == 0.0:
        return image.resize(size, Image.Resampling.LANCZOS) if image.size != size else image.copy()
    rgb = image.convert("RGB")
    face = rgb.resize((FACE_SIDE, FACE_SIDE), Image.Resampling.LANCZOS)
    x = to_tensor(face).to(net.device)  # (1, 3, 512, 512) in [0, 1]

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return net(x).float().cpu()  # spandrel takes and gives [0, 1]

    def check(restored: torch.Tensor) -> str | None:
        return bad_values(restored) or ("one flat colour" if lost_contrast(to_pil(restored)[0], face) else None)

    restored, _ = redo_in_float32(run, check, lambda: None,  # loaded in float32 (face_restorers): nothing to redo
                                  what=f"the face restorer {Path(os.fspath(model)).name}",
                                  advice="its weights may be damaged or not meant for this: try another face "
                                         "restoration model, or none")
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
    """Find the faces in `image` (core.imaging.face_detection.find_faces) and restore each in place.

    Each face gets a square crop (`crop_box`, edge pixels repeated past the picture's border),
    redrawn by `restore_face` at FACE_SIDE px, resized back and pasted through a feathered mask, so
    no seam shows; pixels outside every crop are unchanged. Overlapping crops are done one after
    the other, largest face first.

    Args:
        image: an RGB, RGBA, L or LA PIL image, any size (alpha is kept as it was).
        model: a face-restoration file, see `get_restorer`.
        weight: 0..1, see `restore_face`; 0 returns a copy at once, without looking for faces.
        on_face: called as on_face(done, total) after each face (a face takes seconds on a CPU);
            whatever it raises (core.Cancelled) goes out unchanged and no more faces are redrawn.

    Returns:
        (a new image of the same size and mode, the areas redrawn: each face's crop clipped to the
        picture, in image px). With no face found (or weight 0) the image comes back unchanged and
        the list is empty.

    Raises:
        InvalidInput: weight out of range. ModelNotFound: the model file, or OpenCV's face cascade, is
        missing. UnsafeModelFile: see `get_restorer`. ModelError: see `restore_face`.
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
