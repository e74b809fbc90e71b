"""AUTOMATIC1111's "Hires. fix" for text to image: draw each picture at width x height, enlarge it, then
redraw it at the larger size (image to image) with the same prompt, seed and settings.

Orchestration only, for `core.generators.diffusion.text_to_image` (its `hires_*` arguments): the two
passes are that module's own text_to_image and image_to_image, the enlarging is core.generators.enlarge
with an upscaler of the super-resolution list (core.models.upscalers), or a Lanczos resize.

As A1111 does it (modules/processing.py, StableDiffusionProcessingTxt2Img.sample_hr_pass, v1.10):
    1. the first pass is an ordinary text-to-image call at width x height;
    2. each picture is enlarged `hires_scale` times with the chosen upscaler (pixel space);
    3. the second pass is image to image on it, with the same prompt, negative prompt, seed (image i
       keeps seed + i), sampler, guidance and LoRAs, at the denoising strength `hires_strength`;
    4. "Hires steps" are the steps that *run* in the second pass (0: the first pass's steps). A1111
       stretches the schedule so that they do (modules/sd_samplers_common.py, setup_img2img_steps):
       a schedule of int(hires steps / min(strength, 0.999)) steps, of which the last hires steps run.
       We do the same (`schedule`); the schedule must fit the steps a sampler takes (1..100, LCM 50).
Where we differ: A1111's default upscaler "Latent" (resizing the latents) is not offered, only pixel
upscalers; the enlarged sides are rounded to multiples of 8 (A1111 cuts the latent to whole multiples),
and must be within the model's sizes (A1111 has no such limit).

Importing this module loads no torch (the UI takes its ranges from here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PIL import Image

from core import catalog
from core.catalog import (
    HIRES_SCALE_RANGE,
    HIRES_SCALE_STEP,
    HIRES_STEPS_RANGE,
    HIRES_STRENGTH_RANGE,
    LANCZOS,
    STEPS_RANGE,
    hires_size,
)
from core.checks import check_bool, check_float, check_int, shown
from core.errors import InvalidInput
from core.generators.progress import Progress, freed_on_failure
from core.models import zerogpu
from core.result import Result


def upscaler_names() -> list[str]:
    """The names `hires_upscaler` takes: "Lanczos", then the super-resolution list (core.catalog.upscalers())."""
    return [LANCZOS, *(name for _, name in catalog.upscalers())]


def wanted(hires_scale: object, hires_upscaler: object, hires_strength: object, hires_steps: object) -> bool:
    """Check text_to_image's Hires. fix arguments (also when the fix is off); True when it runs.

    Raises:
        InvalidInput: hires_scale not None or 1..4, hires_strength not 0.01..1, hires_steps not a
            whole number 0..100, or hires_upscaler neither "Lanczos" nor a name of the upscaler list.
    """
    if hires_scale is not None:
        hires_scale = check_float("hires_scale", hires_scale, *HIRES_SCALE_RANGE)
    check_float("hires_strength", hires_strength, *HIRES_STRENGTH_RANGE)
    check_int("hires_steps", hires_steps, *HIRES_STEPS_RANGE)
    if hires_upscaler != LANCZOS:
        names = upscaler_names()
        if not isinstance(hires_upscaler, str) or hires_upscaler not in names:
            raise InvalidInput(f"hires_upscaler must be one of {', '.join(names)} (the super-resolution "
                               f"list, or Lanczos for a plain resize); got {shown(hires_upscaler)}")
    return hires_scale is not None and hires_scale != 1


def schedule(steps: int, strength: float) -> tuple[int, float]:
    """(schedule steps, image-to-image strength) that run exactly `steps` steps at denoising
    `strength`, as A1111's hires pass: a schedule of int(steps / min(strength, 0.999)) steps, the last
    `steps` of which run (sd_samplers_common.setup_img2img_steps). The strength returned makes
    diffusers' int(schedule x strength) come out at `steps` without rounding error."""
    total = int(steps / min(strength, 0.999))
    return total, min(1.0, (steps + 0.5) / total)


def fix(*, prompt: str, model: str | None, negative_prompt: str, steps: int | None, guidance_scale: float | None,
        width: int | None, height: int | None, seed: int, batch_size: int, batch_count: int, scheduler: str | None,
        loras: Any, upscale: bool, on_step: Callable[[int, int], None] | None,
        on_preview: Callable[[list[Image.Image]], None] | None, preview_every: int, hires_scale: float,
        hires_upscaler: str, hires_strength: float, hires_steps: int, **more: Any) -> Result:
    """text_to_image with the Hires. fix on: its arguments as given (checked by `wanted`); `more` (any
    argument text_to_image gains later, e.g. ControlNet units) goes to both passes.

    Returns:
        Result with batch_size x batch_count RGB images of the hires size (x4 when `upscale`), the first
        pass's seeds, and its parameters (width and height are the first pass's, as A1111's "Size")
        plus hires_scale, hires_upscaler, hires_strength, hires_steps (0: as `steps`) and hires_size ([w, h]).
        `on_step` counts both passes (the first pass's steps, the upscaler's tiles, then the second
        pass's steps and any x4 tiles per picture); previews come from both.

    Raises:
        InvalidInput: as text_to_image; the hires size over the model's largest side (naming
            hires_scale and the limit); a second-pass schedule longer than the sampler takes.
        ModelNotFound, UnsafeModelFile, ModelError, Cancelled: as text_to_image, and from the upscaler.
    """
    from core.generators import diffusion, enlarge
    from core.models import schedulers, upscalers

    # 1. check what the passes will be, before any work (the hires settings as numbers of their kind)
    check_bool("upscale", upscale)
    hires_scale = check_float("hires_scale", hires_scale, *HIRES_SCALE_RANGE)
    hires_strength = check_float("hires_strength", hires_strength, *HIRES_STRENGTH_RANGE)
    hires_steps = check_int("hires_steps", hires_steps, *HIRES_STEPS_RANGE)
    m = diffusion.get(model)
    name = model or diffusion.DEFAULT_MODEL
    first = diffusion._settings(m, name, steps, guidance_scale, width, height, batch_size, batch_count, scheduler)
    base = (first["width"], first["height"])
    size = _check_size(name, base, hires_scale, m.sizes[1])
    run = hires_steps or first["steps"]
    total, strength = schedule(run, hires_strength)
    most = min(STEPS_RANGE[1], schedulers.max_steps(first["scheduler"], m.scheduler_config))
    _check_schedule(run, hires_steps, hires_strength, total, most, first["scheduler"])
    up = None if hires_upscaler == LANCZOS else upscalers.get_upscaler(hires_upscaler)

    # 2. the units of work on_step counts: first pass, then per picture: upscaler tiles, second pass, x4 tiles
    count = first["batch_size"] * first["batch_count"]
    calls = count if m.text_to_image.device.type == "cpu" else first["batch_count"]
    per_enlarge = 0 if up is None else enlarge.count_tiles(base, up, scale=_factor(base, size))
    per_redraw = run + (enlarge.x4_tiles(size) if upscale else 0)
    progress = Progress(on_step, calls * first["steps"] + count * (per_enlarge + per_redraw))
    shared = {"model": model, "negative_prompt": negative_prompt, "guidance_scale": guidance_scale,
              "scheduler": scheduler, "loras": loras, "on_preview": on_preview, "preview_every": preview_every, **more}

    # 3. the first pass, as without the fix; then each picture enlarged and redrawn with its own seed
    drawn = diffusion.text_to_image(prompt, steps=steps, width=width, height=height, seed=seed, batch_size=batch_size,
                                    batch_count=batch_count, upscale=False,
                                    on_step=progress.part(calls * first["steps"]), **shared)
    parameters = drawn.parameters
    warnings, images, tiling = list(parameters["warnings"]), [], parameters["vae_tiling"]
    for picture, picture_seed in zip(drawn.images, drawn.seeds):
        enlarged, notes = _enlarge(picture, up, size, progress.part(per_enlarge))
        redrawn = diffusion.image_to_image(enlarged, prompt, strength=strength, steps=total, width=size[0],
                                           height=size[1], seed=picture_seed, upscale=upscale,
                                           on_step=progress.part(per_redraw), **shared)
        images += redrawn.images
        tiling = tiling or redrawn.parameters["vae_tiling"]
        warnings += [w for w in [*notes, *redrawn.parameters["warnings"]] if w not in warnings]

    # 4. report: the first pass's settings and the fix's
    parameters.update(hires_scale=hires_scale, hires_upscaler=hires_upscaler, hires_strength=hires_strength,
                      hires_steps=hires_steps, hires_size=list(size), upscale=upscale, vae_tiling=tiling,
                      warnings=warnings)
    return Result(images=images, seeds=drawn.seeds, parameters=parameters)


def _check_size(model: str, base: tuple[int, int], scale: float, largest: int) -> tuple[int, int]:
    """The hires size of `base` at `scale`, refused when a side is over the model's `largest`."""
    size = hires_size(base, scale)
    if max(size) <= largest:
        return size
    fits = math.floor(largest / max(base) / HIRES_SCALE_STEP) * HIRES_SCALE_STEP
    advice = (f"choose hires_scale {fits:g} or less, or a smaller width and height" if fits > 1
              else "choose a smaller width and height")
    raise InvalidInput(f"hires_scale {scale:g} makes {size[0]}x{size[1]} px from {base[0]}x{base[1]} px, but "
                       f"{model} takes sides of at most {largest} px: {advice}")


def _check_schedule(run: int, hires_steps: int, strength: float, total: int, limit: int, sampler: str) -> None:
    """Refuse a second pass whose stretched schedule (see `schedule`) is longer than `limit` steps."""
    if total <= limit:
        return
    asked = f"hires_steps {run}" if hires_steps else f"the first pass's {run} steps (hires_steps 0)"
    fewer = math.floor(limit * min(strength, 0.999))
    stronger = math.ceil(100 * run / limit) / 100
    advice = f"set hires_steps to {fewer} or fewer, or " if fewer >= 1 else ""
    raise InvalidInput(f"{asked} at hires_strength {strength:g} need a schedule of {total} steps (as A1111, the "
                       f"second pass runs the last {run} of int(steps / strength)), over the {limit} the {sampler} "
                       f"sampler takes: {advice}raise hires_strength to {stronger:g} or more")


def _factor(base: tuple[int, int], size: tuple[int, int]) -> float:
    """The enlargement from `base` that covers `size` on both sides (they differ by the rounding to 8 px)."""
    return max(size[0] / base[0], size[1] / base[1])


def _enlarge(picture: Image.Image, up: Any, size: tuple[int, int], on_tile: Callable[[int, int], None]
             ) -> tuple[Image.Image, list[str]]:
    """`picture` (RGB) enlarged to `size` (width, height): Lanczos when `up` is None, else the upscaler
    (its own scale, more passes when that is too small) and then Lanczos to `size` exactly. Returns
    (picture, warnings)."""
    if up is None:
        return picture.resize(size, Image.Resampling.LANCZOS), []
    return _run_upscaler(picture, up, size, on_tile)


@zerogpu.gpu(duration=60)
def _run_upscaler(picture: Image.Image, up: Any, size: tuple[int, int], on_tile: Callable[[int, int], None]
                  ) -> tuple[Image.Image, list[str]]:
    """The upscaler's part of `_enlarge`: GPU-bound, so on ZeroGPU it borrows the GPU."""
    from core.generators import enlarge

    with freed_on_failure():
        out = enlarge.enlarge(picture.convert("RGB"), up, scale=_factor(picture.size, size), on_tile=on_tile)
    image = out.image if out.image.size == size else out.image.resize(size, Image.Resampling.LANCZOS)
    return image, list(out.warnings)
