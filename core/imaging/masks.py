"""Masks for inpainting and outpainting, in pixels (no models): read and check a mask, blur its edge, the
"only masked" crop box, the masked-area fill, the outpaint canvas and its mask, and the paste back.

Conventions: a mask is a PIL "L" image of the picture's size, 255 = redraw, 0 = keep; a picture is RGB.
Boxes are (left, top, right, bottom) in px, right and bottom exclusive (PIL's).

Sources: AUTOMATIC1111 stable-diffusion-webui's img2img inpainting, written here from its documented
behaviour: "Mask blur" (a Gaussian of sigma = blur px, cut at 2.5 sigma, through OpenCV), "Inpaint area:
Only masked" (the mask's bounding box grown by "Only masked padding", widened to the working aspect
ratio, redrawn at width x height, pasted back), "Masked content: fill" (blurred surrounding colours), the
final overlay of the original through the blurred mask; and its "Poor man's outpainting" script (the new
area plus 2 x mask blur px of overlap into the old picture is the mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from core.checks import shown
from core.errors import InvalidInput
from core.imaging.io import open_image

MASK_MODES = ("1", "L", "LA", "I;16", "RGB", "RGBA")
"""The PIL modes a mask may have (a Gradio ImageEditor layer is RGBA; 16-bit grey is read at 8 bits)."""
PAINTED = 128
"""A mask pixel (luminance, or alpha) from this level up means "redraw"."""


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else InvalidInput naming `name`, the value and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {shown(value)}")
    return value


def read_mask(mask: Any, size: tuple[int, int]) -> Image.Image:
    """Check a user's mask and return it as a binary "L" image: 255 where the picture is to be redrawn.

    Args:
        mask: a PIL image of mode 1, L, LA, I;16, RGB or RGBA, a path, bytes, or a uint8 array `(H, W)`, `(H, W, 3)`
            or `(H, W, 4)` (see core.imaging.io.open_image). White means redraw: the luminance, or for an
            RGBA or LA mask with any transparency (a painted layer over a transparent one, as Gradio's
            ImageEditor gives) its alpha; a 16-bit grey mask is read at 8 bits. A pixel counts as painted from level PAINTED (128) up.
        size: the picture's (width, height) in px; the mask must have the same.

    Raises:
        InvalidInput (naming `mask`): unreadable; a PIL image of another mode (e.g. P, I, F, CMYK); of
            another size than the picture; empty ("paint
            the area to redraw") or covering the whole picture.
    """
    if isinstance(mask, Image.Image) and mask.mode not in MASK_MODES:
        raise InvalidInput(f"mask has mode {mask.mode}; give a black-and-white mask of mode {', '.join(MASK_MODES)} "
                           "(white = redraw)")
    picture = open_image(mask, name="mask", grey=True)
    if picture.mode == "I;16":  # 16-bit grey: its top 8 bits
        picture = Image.fromarray((np.asarray(picture, dtype=np.uint16) >> 8).astype(np.uint8), mode="L")
    elif picture.mode == "LA":  # grey with alpha: as RGBA (its alpha when it has transparency)
        picture = picture.convert("RGBA")
    if picture.mode not in ("L", "RGB", "RGBA"):
        raise InvalidInput(f"mask has mode {picture.mode}; give a black-and-white mask of mode "
                           f"{', '.join(MASK_MODES)} (white = redraw)")
    if picture.size != tuple(size):
        raise InvalidInput(f"mask is {picture.width}x{picture.height} px but the picture is {size[0]}x{size[1]} px; "
                           "give a mask of the picture's size")
    alpha = picture.getchannel("A") if picture.mode == "RGBA" else None
    values = alpha if alpha is not None and alpha.getextrema()[0] < 255 else picture.convert("L")
    binary = values.point(lambda v: 255 if v >= PAINTED else 0)
    low, high = binary.getextrema()
    if high == 0:
        raise InvalidInput("mask is empty: paint the area to redraw in white (or opaque strokes on a transparent "
                           "layer)")
    if low == 255:
        raise InvalidInput("mask covers the whole picture: use image to image without a mask, or leave part of it "
                           "black")
    return binary


def blur(mask: Image.Image, radius: int) -> Image.Image:
    """The mask's edge softened: a Gaussian of sigma `radius` px (0..64; 0 = unchanged), its kernel cut at
    int(2.5 x radius + 0.5) px as A1111's "Mask blur" (OpenCV's GaussianBlur), so the blurred mask reaches
    at most that far past the painted pixels (less than 3 x radius). "L" in, "L" out, same size."""
    if radius == 0:
        return mask.copy()
    import cv2  # here, not at import: see core.imaging.watermark

    reach = int(2.5 * radius + 0.5)
    return Image.fromarray(cv2.GaussianBlur(np.asarray(mask), (2 * reach + 1, 2 * reach + 1), radius))


def crop_box(mask: Image.Image, padding: int, width: int, height: int) -> tuple[int, int, int, int]:
    """A1111's "Only masked" region: the bounding box of `mask`'s nonzero pixels grown by `padding` px on
    each side and clipped to the picture, then grown about its centre to the aspect ratio width:height
    (shifted to stay inside the picture; clipped where the picture is too small for that ratio).

    Returns (left, top, right, bottom) in the mask's px. Raises InvalidInput for an empty mask."""
    box = mask.getbbox()
    if box is None:
        raise InvalidInput("mask is empty: paint the area to redraw")
    full_w, full_h = mask.size
    left, top = max(0, box[0] - padding), max(0, box[1] - padding)
    right, bottom = min(full_w, box[2] + padding), min(full_h, box[3] + padding)
    w, h = right - left, bottom - top
    if w * height < h * width:  # narrower than width:height
        left, right = _grow(left, right, round(h * width / height), full_w)
    else:
        top, bottom = _grow(top, bottom, round(w * height / width), full_h)
    return left, top, right, bottom


def _grow(low: int, high: int, want: int, limit: int) -> tuple[int, int]:
    """[low, high) grown to `want` px (at most `limit`) about its centre, shifted to stay in [0, limit)."""
    want = min(max(want, high - low), limit)
    low -= (want - (high - low)) // 2
    low = min(max(low, 0), limit - want)
    return low, low + want


def fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """`image` with its masked area (mask >= PAINTED) painted in the colours around it, as A1111's "Masked
    content: fill": averages of the kept pixels weighted by Gaussians of 256, 64, 16, 4 and 2 px laid over
    each other, the wide ones first, each where enough kept pixels are near (mid-grey where nothing is
    kept). Kept pixels are unchanged."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    keep = (np.asarray(mask) < PAINTED).astype(np.float32)  # (H, W)
    start = rgb[keep > 0].mean(0) if keep.any() else np.full(3, 127.5, np.float32)  # mid-grey: nothing kept
    out = np.broadcast_to(start, rgb.shape).copy()
    for sigma, repeats in ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2)):
        near = _smooth(keep, sigma)
        colour = _smooth(rgb * keep[:, :, None], sigma) / np.maximum(near, 1e-6)[:, :, None]
        alpha = (1 - (1 - np.clip(near, 0, 1)) ** repeats)[:, :, None]
        out = colour * alpha + out * (1 - alpha)
    out = np.where(keep[:, :, None] > 0, rgb, out)
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8))


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of about `sigma` px as three box blurs (constant time per pixel at any sigma);
    float32 `(H, W)` or `(H, W, C)`."""
    import cv2

    side = max(1, int(round((4 * sigma * sigma + 1) ** 0.5)) | 1)
    for _ in range(3):
        values = cv2.blur(values, (side, side), borderType=cv2.BORDER_REFLECT)
    return values


def outpaint_canvas(image: Image.Image, left: int, right: int, top: int, bottom: int) -> Image.Image:
    """`image` (RGB) on a canvas grown by the given px on each side, the new area holding the border
    pixels stretched outward (numpy's "edge" padding). Size (W + left + right, H + top + bottom)."""
    pixels = np.pad(np.asarray(image.convert("RGB")), ((top, bottom), (left, right), (0, 0)), mode="edge")
    return Image.fromarray(pixels)


def outpaint_mask(size: tuple[int, int], left: int, right: int, top: int, bottom: int,
                  overlap: int) -> Image.Image:
    """The mask of an outpainting canvas of `size` (width, height): 255 on the new area and `overlap` px
    into the old picture beyond each extended side (so the seam is redrawn too), 0 elsewhere."""
    width, height = size
    mask = Image.new("L", size, 255)
    keep = (left + (overlap if left else 0), top + (overlap if top else 0),
            width - right - (overlap if right else 0), height - bottom - (overlap if bottom else 0))
    if keep[0] < keep[2] and keep[1] < keep[3]:
        mask.paste(0, keep)
    return mask


@dataclass(frozen=True)
class Paste:
    """How a redrawn picture goes back into the original: resized (Lanczos) from the working size to the
    size of `box`, put at `box`, then blended through the blurred mask as A1111's overlay:
    output = original x (1 - mask) + redrawn x mask, so every pixel where the mask is 0 is the original's.

    Attributes: original (RGB, the picture's size), mask ("L", the blurred mask, same size), box
    (left, top, right, bottom) of the redrawn region in the original's px."""

    original: Image.Image
    mask: Image.Image
    box: tuple[int, int, int, int]

    def __call__(self, redrawn: Image.Image) -> Image.Image:
        """The redrawn picture (RGB, any size: the working size) composited; RGB of the original's size."""
        left, top, right, bottom = self.box
        region = redrawn.convert("RGB").resize((right - left, bottom - top), Image.LANCZOS)
        full = self.original.copy()
        full.paste(region, (left, top))
        return Image.composite(full, self.original, self.mask)


@dataclass(frozen=True)
class Redraw:
    """What the model gets for an inpainting, and how its output goes back.

    Attributes:
        start: RGB (width, height): the picture (or its "only masked" crop) at the working size, with the
            masked area filled first when masked_content is "fill".
        mask: "L" (width, height): 255 on every pixel the model redraws: where the blurred mask is
            nonzero, grown to whole cells of `cell` px (the VAE's latent pixels, so none is half kept).
        paste: the Paste that puts the model's output back.
    """

    start: Image.Image
    mask: Image.Image
    paste: Paste


def plan(original: Image.Image, painted: Image.Image, *, mask_blur: int, inpaint_area: str, inpaint_padding: int,
         size: tuple[int, int], cell: int, masked_content: str) -> Redraw:
    """Plan an inpainting of `original` (RGB) where `painted` (binary "L", same size) is white, at the
    working size `size` (width, height): blur the mask; crop ("masked": crop_box of the blurred mask) or
    take the whole picture; resize both to `size`; fill the masked area ("fill"). See Redraw and Paste."""
    soft = blur(painted, mask_blur)
    reach = soft.point(lambda v: 255 if v else 0)
    width, height = size
    box = crop_box(reach, inpaint_padding, width, height) if inpaint_area == "masked" else (0, 0, *original.size)
    start = original.crop(box).resize(size, Image.LANCZOS)
    redraw = _cells(_shrink(reach.crop(box), size), cell)
    if masked_content == "fill":
        start = fill(start, redraw)
    return Redraw(start=start, mask=redraw, paste=Paste(original=original, mask=soft, box=box))


def _shrink(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A binary mask resized to `size` so that every working pixel covering a white pixel is white, however
    far it is shrunk (grown first by the shrink factor, then area-averaged: BOX alone drops a 1-px mark
    shrunk 64 times)."""
    import cv2

    factor = math.ceil(max(mask.width / size[0], mask.height / size[1]))
    if factor > 1:
        mask = Image.fromarray(cv2.dilate(np.asarray(mask), np.ones((2 * factor + 1, 2 * factor + 1), np.uint8)))
    return mask.resize(size, Image.BOX).point(lambda v: 255 if v else 0)


def _cells(mask: Image.Image, cell: int) -> Image.Image:
    """`mask` with every `cell` x `cell` block (from the top left) that holds a nonzero pixel set to 255."""
    if cell <= 1:
        return mask
    a = np.asarray(mask) > 0
    h, w = a.shape
    padded = np.zeros((-(-h // cell) * cell, -(-w // cell) * cell), dtype=bool)
    padded[:h, :w] = a
    blocks = padded.reshape(padded.shape[0] // cell, cell, padded.shape[1] // cell, cell).any(axis=(1, 3))
    grown = blocks.repeat(cell, 0).repeat(cell, 1)[:h, :w]
    return Image.fromarray(grown.astype(np.uint8) * 255)
