"""Outpainting: a picture extended past its borders, as inpainting of a grown canvas (core.generators.diffusion's
image_to_image with the new area as the mask).

Sources: AUTOMATIC1111's "Poor man's outpainting" script (the new area plus 2 x mask blur px of overlap into
the old picture is the mask); the canvas and mask in pixels are core.imaging.masks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from core.catalog import INPUT_SIDES, MASK_BLUR_RANGE, OUTPAINT_FILLS, OUTPAINT_MAX, SIDE_STEP
from core.checks import check_int, check_prompt
from core.errors import InvalidInput
from core.generators.diffusion import image_to_image
from core.imaging import masks
from core.imaging.io import flatten, open_image
from core.models.diffusion import get
from core.result import Result


def outpaint(image: Image.Image, prompt: str, *, left: int = 0, right: int = 0, top: int = 0, bottom: int = 0,
             mask_blur: int = 4, fill: str = "edge", strength: float = 1.0, model: str | None = None,
             negative_prompt: str = "", steps: int | None = None, guidance_scale: float | None = None,
             seed: int = -1, batch_size: int = 1, batch_count: int = 1, scheduler: str | None = None,
             loras: list[tuple[str, float]] | dict[str, float] | None = None, upscale: bool = False,
             on_step: Callable[[int, int], None] | None = None,
             on_preview: Callable[[list[Image.Image]], None] | None = None, preview_every: int = 5,
             controlnets: list[dict[str, Any]] | None = None, width: int | None = None,
             height: int | None = None) -> Result:
    """Extend a picture past its borders: the new area is drawn to match the picture and the prompt.

    The picture is put on a canvas grown by `left`, `right`, `top` and `bottom` px; the new area plus
    2 x mask_blur px of overlap into the picture on each extended side (so the seam is redrawn, as
    A1111's "Poor man's outpainting") is the mask, and the canvas is inpainted as `image_to_image` does
    with inpaint_area "whole": resized to the working size, redrawn, resized back and pasted through the
    blurred mask, so the result has the canvas's size whatever the model's sides.

    Args:
        image: the picture (as in `image_to_image`).
        prompt: what the whole extended picture should show, 1..2000 characters.
        left, right, top, bottom: px to add on each side, 0..2048, at least one over 0; each side of the
            extended picture at most 4096 px (core.catalog.INPUT_SIDES).
        mask_blur: 0..64 px (default 4, A1111's), as in `image_to_image`; pixels of the picture farther than
            2 x mask_blur + int(2.5 x mask_blur + 0.5) px inside its extended sides are kept exactly.
        fill: what the new area starts from before the SDEdit noising: "edge" (the picture's border
            pixels stretched outward) or "noise" (noise in the model's own space, per seed: masked_content
            "noise" of `image_to_image`). At strength 1 (the default) the start matters little.
        strength: 0.01..1 (default 1), as in `image_to_image`.
        model, negative_prompt, steps, guidance_scale, seed, batch_size, batch_count, scheduler, loras,
        upscale, on_step, on_preview, preview_every, controlnets: as in `image_to_image` (a unit's own image
            covers the extended picture; a unit without one is steered by the extended canvas).
        width, height: the working size in px (multiples of 8 within the model's sides, as in
            `image_to_image`); None (default) for `working_size`: the canvas itself when it fits the
            model's sides, else the canvas scaled to fit them (a warning says so).

    Returns:
        Result with batch_size x batch_count RGB images of the extended size (W + left + right,
        H + top + bottom) px (x4 when `upscale`); `parameters` holds outpaint ({"left", "right", "top",
        "bottom"}), fill and mask_blur, width and height (the working size) and input_size (the picture's).

    Raises:
        InvalidInput: as `image_to_image`; a side out of range or all sides 0; an extended side over 4096 px
            (the message names the sides and the limit); a mask_blur whose overlap covers the whole picture;
            a fill that is not "edge" or "noise".
        ModelNotFound, UnsafeModelFile, ModelError, Cancelled: as in `text_to_image`.
    """
    picture = open_image(image)
    check_prompt(prompt)  # before the model loads; image_to_image checks the rest
    sides = {name: check_int(name, value, 0, OUTPAINT_MAX) for name, value in
             (("left", left), ("right", right), ("top", top), ("bottom", bottom))}
    if not any(sides.values()):
        raise InvalidInput("left, right, top and bottom are all 0: give at least one side the px to extend by")
    fill = masks.check_choice("fill", fill, OUTPAINT_FILLS)
    mask_blur = check_int("mask_blur", mask_blur, *MASK_BLUR_RANGE)
    m = get(model)
    canvas = masks.outpaint_canvas(flatten(picture), **sides)
    _check_extent(picture.size, canvas.size, sides, overlap=2 * mask_blur)
    mask = masks.outpaint_mask(canvas.size, overlap=2 * mask_blur, **sides)
    fitted = None
    if width is None and height is None:
        width, height = working_size(canvas.size, m.sizes)
        if (width, height) != tuple(SIDE_STEP * round(side / SIDE_STEP) for side in canvas.size):
            fitted = (f"the extended picture ({canvas.width}x{canvas.height} px) was redrawn at {width}x{height} px "
                      f"to fit the {m.sizes[0]}..{m.sizes[1]} px a side that {m.label} takes, then resized back; "
                      "set width and height to choose the working size")
    result = image_to_image(canvas, prompt, strength=strength, model=model, negative_prompt=negative_prompt,
                            steps=steps, guidance_scale=guidance_scale, width=width, height=height, seed=seed,
                            batch_size=batch_size, batch_count=batch_count, scheduler=scheduler, loras=loras,
                            upscale=upscale, on_step=on_step, on_preview=on_preview, preview_every=preview_every,
                            mask=mask, mask_blur=mask_blur, inpaint_area="whole",
                            masked_content="noise" if fill == "noise" else "original", controlnets=controlnets)
    for key in ("inpaint_area", "inpaint_padding", "masked_content"):  # not outpaint's settings
        result.parameters.pop(key, None)
    result.parameters.update(outpaint=sides, fill=fill, input_size=list(picture.size))
    if fitted:
        result.parameters.setdefault("warnings", []).append(fitted)
    return result


def working_size(size: tuple[int, int], sides: tuple[int, int]) -> tuple[int, int]:
    """The automatic working (width, height) in px for an extended picture of `size` px on a model taking
    `sides` = (least, most) px a side: `size` itself when it fits, else `size` scaled (aspect ratio kept) so
    that its longer side is the most; each side rounded to a multiple of SIDE_STEP, and one under the least
    raised to it (only a long, thin picture then loses its ratio, for the redraw: the result keeps it)."""
    low, high = sides
    scale = min(1.0, high / max(size))
    return tuple(min(high, max(low, SIDE_STEP * round(side * scale / SIDE_STEP))) for side in size)


def _check_extent(size: tuple[int, int], extended: tuple[int, int], sides: dict[str, int], overlap: int) -> None:
    """Refuse an outpainting whose canvas has a side over INPUT_SIDES' most, or whose overlap (2 x mask_blur
    px into each extended side) leaves nothing of the picture kept (InvalidInput naming the sides)."""
    high = INPUT_SIDES[1]
    for (a, b), total, axis, own in ((("left", "right"), extended[0], "wide", size[0]),
                                     (("top", "bottom"), extended[1], "high", size[1])):
        if total > high:
            raise InvalidInput(f"{a} {sides[a]} + {b} {sides[b]} px make the picture ({own} px {axis}) {total} px "
                               f"{axis}, over the {high} px a picture's side may have: lower {a}/{b}")
        if own <= overlap * ((sides[a] > 0) + (sides[b] > 0)):
            raise InvalidInput(f"mask_blur {overlap // 2} overlaps {overlap} px into each extended side, which "
                               f"covers the whole picture ({own} px {axis}): lower mask_blur")
