"""The inpainting steps of image_to_image: its settings checked, the pipeline and working pictures for a mask
(or for an SD inpainting checkpoint without one), and the ControlNet pipeline that replaces it.

Orchestration only: the mask work in pixels is core.imaging.masks, the inpainting pipelines are
core.models.inpaint, the ControlNet units core.models.controlnet. Each function fills the pipeline call's
keyword arguments (`call`: prompt, image, mask_image, width, height, ...) that core.generators.diffusion
then runs.

Sources: AUTOMATIC1111's img2img inpaint (mask blur, "Only masked", masked content; SD inpainting models run
with the whole picture masked in img2img); diffusers' Stable Diffusion (ControlNet) inpainting pipelines.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from core.catalog import INPAINT_AREAS, INPAINT_PADDING_RANGE, MASK_BLUR_RANGE, MASKED_CONTENTS
from core.checks import check_int
from core.errors import InvalidInput
from core.imaging import masks
from core.models import controlnet
from core.models.diffusion import DiffusionModel


def check_settings(mask_blur: object, inpaint_area: object, inpaint_padding: object,
                   masked_content: object) -> dict[str, Any]:
    """The inpainting settings of image_to_image checked (also without a mask: a bad value is refused all the
    same): {"mask_blur", "inpaint_area", "inpaint_padding", "masked_content"}, ranges and choices from core.catalog.

    Raises:
        InvalidInput: a value out of its range or choices (the message names the argument).
    """
    return {"mask_blur": check_int("mask_blur", mask_blur, *MASK_BLUR_RANGE),
            "inpaint_area": masks.check_choice("inpaint_area", inpaint_area, INPAINT_AREAS),
            "inpaint_padding": check_int("inpaint_padding", inpaint_padding, *INPAINT_PADDING_RANGE),
            "masked_content": masks.check_choice("masked_content", masked_content, MASKED_CONTENTS)}


def masked(m: DiffusionModel, original: Image.Image, painted: Image.Image, inpainting: dict[str, Any],
           size: tuple[int, int], call: dict[str, Any]) -> tuple[Any, masks.Paste]:
    """The inpainting pipeline of `m` and the Paste that puts its output back into `original`; puts the
    working picture, its mask, the working size and masked_content into `call` (core.imaging.masks.plan).

    Args:
        original: the RGB picture; painted: its "L" mask of the same size (255 = redraw, core.imaging.masks);
        inpainting: check_settings' dict; size: the working (width, height) in px, multiples of 8.

    Raises:
        InvalidInput: masked_content "noise" for a pipeline that cannot take it (the message names the model).
    """
    from core.models import inpaint

    pipe = inpaint.pipeline(m)
    content = inpainting["masked_content"]
    if content == "noise" and not inpaint.takes_noise(pipe):
        raise InvalidInput(f"masked_content 'noise' is not available for {m.label}; choose 'original' or 'fill'")
    redraw = masks.plan(original, painted, size=size, cell=inpaint.cell(m), **inpainting)
    n = len(call["prompt"])
    call.update(image=[redraw.start] * n, mask_image=[redraw.mask] * n, width=size[0], height=size[1])
    if inpaint.takes_noise(pipe):
        call["masked_content"] = "noise" if content == "noise" else "original"
    return pipe, redraw.paste


def with_controlnets(m: DiffusionModel, pipe, units: list[controlnet.Unit], size: tuple[int, int],
                     call: dict[str, Any], finish: masks.Paste | None, settings: dict[str, Any]):
    """The ControlNet pipeline of `units` for image to image (inpainting when `call` has a mask), or `pipe`
    when none runs; records the units in settings["controlnets"]. Units without an image are steered by the
    picture being redrawn (with a mask, its part at the working size, before any "fill").

    Raises:
        InvalidInput: as core.models.controlnet.prepare (a ControlNet of another family, an unreadable control
            image); masked_content "noise" with units that run.
    """
    start, crop = call["image"][0], None
    if finish is not None:
        start = finish.original.crop(finish.box).resize(size, Image.LANCZOS)
        crop = (finish.original.size, finish.box)
    task = "inpaint" if "mask_image" in call else "image_to_image"
    control = controlnet.prepare(m, units, task, *size, start=start, crop=crop)
    settings["controlnets"] = control.parameters
    if control.pipe is None:
        return pipe
    if call.pop("masked_content", "original") != "original":
        raise InvalidInput("masked_content 'noise' is not available with ControlNet units; choose 'original' or "
                           "'fill', or remove the units")
    return control.pipe


def whole_mask(m: DiffusionModel, pipe, size: tuple[int, int], call: dict[str, Any]):
    """`pipe`, or for an SD inpainting checkpoint (its UNet also takes a mask and the masked picture, which
    the image-to-image pipeline cannot give) its inpainting pipeline with the whole picture masked, as
    AUTOMATIC1111 runs such models in img2img; the mask goes into `call`."""
    from core.models import inpaint

    if not inpaint.needs_mask(m):
        return pipe
    call.update(mask_image=[Image.new("L", size, 255)] * len(call["prompt"]), width=size[0], height=size[1])
    return inpaint.pipeline(m)
