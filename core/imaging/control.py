"""Control images for ControlNet: a picture through an offline preprocessor, at the generation size.

Preprocessors (core.catalog.PREPROCESSORS):
    "canny"     Canny edges (Canny 1986) through OpenCV's `cv2.Canny` on the RGB picture, as lllyasviel's
                ControlNet annotator (`annotator/canny`) does: white one-pixel edges on black. Gradients
                under `low_threshold` are never edges, over `high_threshold` always; between, only where
                they join a strong edge (hysteresis).
    "scribble"  the sketch itself, as the scribble ControlNets expect it: white strokes on black. The
                ground is the sketch's median colour; a stroke is a pixel whose colour differs from the
                ground by more than STROKE_DIFFERENCE (of 255) in some channel. Strokes become white and the
                rest black, so dark strokes on light paper, coloured strokes (any hue) on white, and a scribble
                already drawn white on black all give white-on-black lines.
    "none"      the picture as it is (e.g. a depth map or pose drawing made elsewhere).

The picture is first flattened on white (transparency, e.g. an editor layer with an empty background) and
resized to the generation's width x height (Lanczos, stretched to that shape as image to image does),
then preprocessed, so edges and strokes stay one pixel sharp. Pixels only: no model, no torch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.catalog import CANNY_THRESHOLD_RANGE, PREPROCESSORS
from core.checks import check_int, shown
from core.errors import InvalidInput
from core.imaging.io import flatten

STROKE_DIFFERENCE = 48
"""How far (0..255, in any of R, G, B) a pixel must be from the sketch's ground colour to be a stroke: above
anti-aliasing and paper noise, below any visible pen colour on white (light yellow is 35..255 off white)."""


def check_preprocessor(name: str, value: object) -> str:
    """`value` if it is one of PREPROCESSORS, else InvalidInput naming `name` and the choices."""
    if not isinstance(value, str) or value not in PREPROCESSORS:
        raise InvalidInput(f"{name} must be one of {', '.join(PREPROCESSORS)}, got {shown(value)}")
    return value


def check_thresholds(name: str, low: object, high: object) -> tuple[int, int]:
    """Canny's (low, high) thresholds checked: whole numbers in CANNY_THRESHOLD_RANGE, low <= high.

    Raises:
        InvalidInput: naming `name`.low_threshold / .high_threshold and the range, or saying that low is
            above high (OpenCV would quietly swap them).
    """
    low = check_int(f"{name}.low_threshold", low, *CANNY_THRESHOLD_RANGE)
    high = check_int(f"{name}.high_threshold", high, *CANNY_THRESHOLD_RANGE)
    if low > high:
        raise InvalidInput(f"{name}.low_threshold ({low}) must be at most {name}.high_threshold ({high}); "
                           "lower the low threshold or raise the high one")
    return low, high


def control_image(picture: Image.Image, preprocessor: str, width: int, height: int, *, low_threshold: int = 100,
                  high_threshold: int = 200) -> Image.Image:
    """The control image of `picture` for a generation of width x height px.

    Args:
        picture: RGB, RGBA or L PIL image (as core.imaging.io.open_image returns), any size.
        preprocessor: "canny", "scribble" or "none" (see the module docstring).
        width, height: the generation size in px (8..4096 each).
        low_threshold, high_threshold: Canny's hysteresis thresholds on the gradient magnitude, 1..255,
            low <= high (A1111's defaults 100 and 200); read by "canny" only.

    Returns:
        An RGB PIL image of (width, height) px. "canny" and "scribble" give only the values 0 and 255, equal
        in the three channels.

    Raises:
        InvalidInput: an unknown preprocessor or thresholds out of range (see check_thresholds).
    """
    preprocessor = check_preprocessor("preprocessor", preprocessor)
    rgb = flatten(picture).resize((width, height), Image.LANCZOS)
    if preprocessor == "canny":
        return canny(rgb, *check_thresholds("preprocessor", low_threshold, high_threshold))
    if preprocessor == "scribble":
        return scribble(rgb)
    return rgb


def canny(picture: Image.Image, low_threshold: int, high_threshold: int) -> Image.Image:
    """Canny edges of an RGB picture: an RGB image of its size, 255 on edges and 0 elsewhere.

    OpenCV's cv2.Canny on the 8-bit RGB array (its gradient is the largest of the three channels'),
    3x3 Sobel, L1 gradient norm: OpenCV's defaults, as lllyasviel's annotator calls it.
    """
    import cv2

    edges = cv2.Canny(np.asarray(picture.convert("RGB")), low_threshold, high_threshold)  # (H, W) uint8, 0 or 255
    return Image.fromarray(edges).convert("RGB")


def scribble(picture: Image.Image) -> Image.Image:
    """A sketch as white strokes on black (see the module docstring): an RGB image of its size, 0 or 255."""
    array = np.asarray(picture.convert("RGB"), dtype=np.int16)  # (H, W, 3)
    ground = np.median(array.reshape(-1, 3), axis=0)  # the colour of most of the picture: the paper
    strokes = (np.abs(array - ground).max(axis=2) > STROKE_DIFFERENCE).astype(np.uint8) * 255  # (H, W)
    return Image.fromarray(strokes).convert("RGB")
