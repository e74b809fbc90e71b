"""Text-to-image and image-to-image on diffusion models.

Orchestration only: `model` becomes a loaded model in core.models.diffusion (the embedded emoji
model, a Stable Diffusion checkpoint or diffusers folder in the models folder, or a Hub repo id);
the sampler comes from core.models.schedulers, LoRAs from core.models.lora, the VAE decode from
core.models.vae, the optional x4 upscale from core.generators.enlarge, the Hires. fix from core.generators.hires.
Inpainting: the steps in core.generators.inpainting (the mask work in pixels: core.imaging.masks; the
pipelines: core.models.inpaint); outpainting, built on image_to_image: core.generators.outpaint. ControlNet
units: core.models.controlnet (the pipeline to call instead of the model's own).

Batch invariance: image i of a batch has the same pixels as its seed alone. On the CPU, convolution
and matrix kernels pick their blocking by batch size, which moved pixels by an 8-bit level, so
there each image is denoised in its own pipeline call (the cost is small for these models; on a
GPU a batch runs as one call, and images may differ from the same seed alone by rounding).
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from core.catalog import (
    GUIDANCE_RANGE,
    MAX_BATCH,
    MAX_BATCH_COUNT,
    STEPS_RANGE,
    STRENGTH_RANGE,
)
from core.checks import check_bool, check_float, check_int, check_prompt
from core.errors import CoreError, InvalidInput
from core.generators import enlarge, hires
from core.generators import inpainting as inpaint_steps
from core.generators.progress import Progress, freed_on_failure
from core.imaging import masks
from core.imaging.io import flatten, open_image, to_pil
from core.models import controlnet, files, hashes, latent_preview, lora, prompts, schedulers, vae, zerogpu
from core.models.diffusion import DEFAULT_MODEL, DiffusionModel, get, token_warnings
from core.models.output_checks import bad_values, flat, lost_contrast, redo_in_float32, to_float32
from core.models.schedulers import make_scheduler
from core.result import Result
from core.seeds import resolve_seeds

_RUN_LOCK = threading.Lock()
"""Model state that requests share (LoRA adapters and their weights, VAE tiling, the move to float32)
changes only under this lock; a request lets it go only inside on_step (see `_Turn`)."""


def _settings(m: DiffusionModel, name: str, steps, guidance_scale, width, height, batch_size, batch_count,
              scheduler) -> dict[str, Any]:
    """Check the shared settings and fill the model's defaults; sides not a multiple of 8 are rounded
    (said in settings["warnings"]). Steps must also fit the sampler (LCM: at most 50)."""
    settings: dict[str, Any] = {
        "model": name,
        "steps": check_int("steps", m.defaults["steps"] if steps is None else steps, *STEPS_RANGE),
        "guidance_scale": check_float("guidance_scale", m.defaults["guidance_scale"] if guidance_scale is None
                                      else guidance_scale, *GUIDANCE_RANGE),
        "batch_size": check_int("batch_size", batch_size, 1, MAX_BATCH),
        "batch_count": check_int("batch_count", batch_count, 1, MAX_BATCH_COUNT),
        "scheduler": m.defaults["scheduler"] if scheduler is None or scheduler == "" else schedulers.check(scheduler),
        "warnings": [],
    }
    limit = schedulers.max_steps(settings["scheduler"], m.scheduler_config)
    if settings["steps"] > limit:
        raise InvalidInput(f"steps must be 1..{limit} with the {settings['scheduler']} sampler, "
                           f"got {settings['steps']}; lower steps or choose another sampler")
    low, high = m.sizes
    for key, value in (("width", width), ("height", height)):
        value = check_int(key, m.native if value is None else value, low, high)
        if value % 8:
            rounded = min(high, max(low, 8 * round(value / 8)))
            settings["warnings"].append(f"{key} {value} px was rounded to {rounded} px (a multiple of 8)")
            value = rounded
        settings[key] = value
    return settings


def _denoise(m: DiffusionModel, pipe, seeds: list[int], settings: dict, callback, call: dict, progress: Progress,
             run_steps: int) -> tuple[torch.Tensor, list[str], list[int]]:
    """One pipeline call for len(seeds) images: returns (pixels `(N, 3, H, W)` in [0, 1], warnings,
    indices blacked out by the model's safety checker). List arguments in `call` are cut to N.

    NaN or infinite values from a half-precision denoiser redo the call with the UNet, its ControlNets and
    the text encoders in float32 for good (the redo's steps are added to `progress`); the VAE has its own
    fallback (core.models.vae.decode).
    """
    call = {k: v[:len(seeds)] if isinstance(v, list) else v for k, v in call.items()}

    def run() -> torch.Tensor:
        gens = [torch.Generator().manual_seed(s) for s in seeds]  # fresh: a redo draws the same noise
        args = prompts.embed_call(pipe, call) if prompts.reads_chunks(m.family, pipe) else call  # a redo re-encodes
        return pipe(generator=gens, num_inference_steps=settings["steps"], guidance_scale=settings["guidance_scale"],
                    callback_on_step_end=callback, output_type="latent" if m.has_vae else "pt", **args).images

    def upcast() -> str | None:
        was = to_float32(getattr(pipe, name, None)
                         for name in ("unet", "controlnet", "text_encoder", "text_encoder_2"))
        if was:
            progress.add(run_steps)
        return was

    out, warning = redo_in_float32(run, bad_values, upcast, what=f"the denoiser of {m.label}", advice=_ADVICE)
    warnings = [warning] if warning else []
    if not m.has_vae:
        return out, warnings, []
    vae.set_vae_tiling(m, settings["width"], settings["height"])  # here: another request may have run meanwhile
    pixels, upcast_vae = vae.decode(m, out)
    if upcast_vae:
        warnings.append("the half-precision VAE gave NaN values; decoded in float32 instead")
    pixels, flagged = vae.safety_check(m, pixels)
    return pixels, warnings, flagged


_ADVICE = "try more steps, another sampler or a lower guidance scale, or another model"


class _Turn:
    """One request's hold on the model state that requests share, which changes only under _RUN_LOCK.

    The request holds the lock from its first to its last pipeline call, except while on_step runs:
    there the host may run another user's request (a fair scheduler), which may need the lock. So
    `step` lets the lock go around on_step, takes it back after, and puts this request's LoRAs back
    when another request had the model meanwhile. `fail` takes off the adapters loaded for this
    request, so a failed or stopped request leaves no half-made state behind.
    """

    holder: "_Turn | None" = None  # the request whose LoRAs are on now

    def __init__(self, m: DiffusionModel, loras: list[tuple[str, float]], progress: Progress,
                 preview: "_Previews") -> None:
        self.m, self.loras, self.progress, self.preview, self.loaded = m, loras, progress, preview, []

    def begin(self) -> None:
        """Put this request's LoRAs on (under the lock)."""
        _, self.loaded = lora.apply(self.m, self.loras)
        _Turn.holder = self

    def step(self, _pipe, i, _t, kwargs: dict) -> dict:
        """diffusers' callback_on_step_end: report the step (and a preview when one is due) with the
        lock let go; whatever on_step or on_preview raises (core.Cancelled) goes out unchanged, with
        the lock held again."""
        _RUN_LOCK.release()
        try:
            self.progress.step()
            self.preview.after(i, kwargs)
        finally:
            _RUN_LOCK.acquire()
        if _Turn.holder is not self:
            _, new = lora.apply(self.m, self.loras)
            self.loaded += new
            _Turn.holder = self
        return kwargs

    def fail(self, pipe) -> None:
        """After an error or a stop: take off the adapters loaded for this request, and the offload hooks'
        modules off the GPU (model CPU offload). The request's own error goes on, never one of these."""
        if _Turn.holder is self:
            _Turn.holder = None
        with contextlib.suppress(Exception):
            lora.unload(self.m, self.loaded)
        with contextlib.suppress(Exception):
            pipe.maybe_free_model_hooks()


class _Previews:
    """Previews for `on_preview(images)` after every `every` steps of a pipeline call (not after its
    last step, whose result comes anyway), made by core.models.latent_preview: Stable Diffusion
    latents through a linear latent-to-RGB map, the emoji model's own clean-picture prediction."""

    def __init__(self, on_preview: Callable[[list[Image.Image]], None] | None, every: int, run_steps: int,
                 pixel_space: bool) -> None:
        self.on_preview, self.every, self.run_steps, self.pixel_space = on_preview, every, run_steps, pixel_space

    def after(self, i: int, kwargs: dict) -> None:
        """Called after step i (0-based) of a call with the pipeline's callback kwargs."""
        if self.on_preview is None or (i + 1) % self.every or i + 1 >= self.run_steps:
            return
        if self.pixel_space:
            picture = kwargs.get("denoised")
            picture = kwargs.get("latents") if picture is None else picture
            images = latent_preview.pixels_to_rgb(picture) if picture is not None else []
        else:
            images = latent_preview.latents_to_rgb(kwargs["latents"]) if "latents" in kwargs else []
        if images:
            self.on_preview(images)


@zerogpu.gpu(duration=120)
def _generate(m: DiffusionModel, pipe, seeds: list[int], settings: dict, loras: list[tuple[str, float]], on_step,
              run_steps: int, upscale: bool, call: dict, on_preview=None, preview_every: int = 5,
              finish: masks.Paste | None = None) -> tuple[list[Image.Image], list[str]]:
    """Sampler, LoRAs, every pipeline call of a request, the output checks, `finish` on each picture (an
    inpainting's paste back into the original), then the optional x4 upscale: the GPU-bound part, so on
    ZeroGPU one borrowed GPU does all of it. One call per `batch_size` seeds, or per seed on the CPU
    (see the module docstring). Returns (images, warnings);
    it changes none of its arguments, since ZeroGPU may run it in another process. The calls run on a
    view of `pipe` (copy.copy: every module shared; its own scheduler and per-call attributes), so a
    request that runs while this one waits in on_step cannot change them."""
    n = 1 if pipe.device.type == "cpu" else settings["batch_size"]
    groups = [seeds[i:i + n] for i in range(0, len(seeds), n)]
    per_image = enlarge.x4_tiles((settings["width"], settings["height"])) if upscale else 0
    progress = Progress(on_step, len(groups) * run_steps + len(seeds) * per_image)
    images: list[Image.Image] = []
    warnings: list[str] = []
    with freed_on_failure():
        with _RUN_LOCK, torch.inference_mode():
            own = copy.copy(pipe)
            own.scheduler = make_scheduler(settings["scheduler"], m.scheduler_config, settings["steps"])
            turn = _Turn(m, loras, progress, _Previews(on_preview, preview_every, run_steps, not m.has_vae))
            try:
                turn.begin()
                warnings += [note for note in lora.notes(m, loras) if note not in warnings]
                for group in groups:
                    pixels, notes, flagged = _denoise(m, own, group, settings, turn.step, call, progress, run_steps)
                    warnings += [w for w in notes if w not in warnings]
                    warnings += [f"image {len(images) + i + 1} was blacked out by the model's safety checker"
                                 for i in flagged]
                    for i, image in enumerate(to_pil(pixels)):
                        if i not in flagged and _flat(image, call.get("image")):
                            warnings.append(f"image {len(images) + 1} (seed {group[i]}) is one flat colour: the "
                                            f"model drew nothing; {_ADVICE}")
                        images.append(finish(image) if finish is not None else image)
            except BaseException:
                turn.fail(own)
                raise
        if upscale:
            images, more = enlarge.x4(images, on_tile=progress.part(len(images) * per_image))
            warnings += more
    return images, warnings


def _flat(image: Image.Image, start: list[Image.Image] | None) -> bool:
    """A generated picture that is one flat colour, although its start picture (image to image) was not."""
    return lost_contrast(image, start[0]) if start else flat(image)


def _run(m: DiffusionModel, pipe, settings: dict, seed: int, on_step, upscale: bool, loras, run_steps: int,
         previews: tuple, finish: masks.Paste | None = None, **call) -> Result:
    """Seeds, then everything that runs the model (`_generate`), then the report."""
    seeds = resolve_seeds(seed, settings["batch_size"] * settings["batch_count"])
    images, warnings = _generate(m, pipe, seeds, settings, loras, on_step, run_steps, upscale, call, *previews,
                                 finish=finish)
    settings["loras"] = [{"file": file, "weight": weight, "sha256": _sha256(file)} for file, weight in loras]
    settings["model_sha256"] = _sha256(m.name)
    settings["vae_tiling"] = m.has_vae and settings["width"] * settings["height"] > vae.TILE_VAE_ABOVE
    settings["warnings"] += warnings
    settings["upscale"] = upscale
    settings["seed"] = seeds[0]
    return Result(images=images, seeds=seeds, parameters=settings)


def text_to_image(prompt: str, *, model: str | None = None, negative_prompt: str = "", steps: int | None = None,
                  guidance_scale: float | None = None, width: int | None = None, height: int | None = None,
                  seed: int = -1, batch_size: int = 1, batch_count: int = 1, scheduler: str | None = None,
                  loras: list[tuple[str, float]] | dict[str, float] | None = None, upscale: bool = False,
                  on_step: Callable[[int, int], None] | None = None,
                  on_preview: Callable[[list[Image.Image]], None] | None = None, preview_every: int = 5,
                  controlnets: list[dict[str, Any]] | None = None, hires_scale: float | None = None,
                  hires_upscaler: str = "Lanczos", hires_strength: float = 0.5, hires_steps: int = 0) -> Result:
    """Generate images from a text prompt.

    Args:
        prompt: what to draw, 1..2000 characters (the emoji model knows Unicode emoji names, e.g.
            "red apple", "rocket"; Stable Diffusion reads AUTOMATIC1111's syntax, `(word:1.3)`, `(word)`,
            `[word]`, `BREAK`, and prompts over 75 CLIP tokens in 75-token chunks: core.models.prompts).
        model: None for the embedded emoji model; a registered name; a checkpoint (.safetensors,
            .ckpt/.pt/.pth) or diffusers folder in the models folder; or a Hub repo id such as
            "stabilityai/sd-turbo" (see core.models.stable_diffusion).
        negative_prompt: what to steer away from ("" for none).
        steps: denoising steps, 1..100, 1..50 with the LCM sampler (default: the model's, e.g. 25; 1 for
            Turbo models).
        guidance_scale: classifier-free guidance, 0..30; 1 or less turns it off (default: the
            model's, e.g. 5 for emoji, 7 for SD 1.x/2.x, 5 for SDXL, 0 for Turbo).
        width, height: output size in px (default: the model's native size). Emoji: 16..64; Stable
            Diffusion: 64..2048. Sides that are not a multiple of 8 are rounded to one (a warning says so).
        seed: -1 for random, else 0..2**32-1; image i of the run uses seed + i.
        batch_size: images per pipeline call, 1..16.
        batch_count: pipeline calls in a row, 1..16 (batch_size x batch_count images in all).
        scheduler: a name from core.models.schedulers.SCHEDULERS (default: the model's).
        loras: LoRA files in the models folder with a weight each, as [(file, weight)] or
            {file: weight}; weights -4..4 (Stable Diffusion models only).
        upscale: True to also enlarge each image x4 with the default upscaler (core.upscale); True or False only.
        on_step: called as on_step(done, total) after each denoising step of each pipeline call
            (steps x images on the CPU, where each image runs alone; steps x batch_count on a GPU),
            then, with `upscale`, after each tile of the x4 upscale (tiles per image x images); the
            total grows by the steps of a call redone in float32. Core never imports gradio.
            Raising core.Cancelled from on_step stops the work within one step/tile/face: it goes
            out unchanged, LoRAs loaded for the request are taken off again and its memory is let go.
        on_preview: called as on_preview(images) every `preview_every` steps of each pipeline call
            (not after its last), with one small RGB preview per image of that call: for Stable
            Diffusion the current latents through a linear latent-to-RGB map (1/8 of the size; see
            core.models.latent_preview), for the emoji model the sampler's prediction of the clean
            picture (full size; DDIM, Euler, Euler a, LCM; the current sample for the others).
            Whatever it raises (core.Cancelled) goes out as from on_step.
        preview_every: steps between previews, 1..100.
        controlnets: None, or up to 3 ControlNet units (Stable Diffusion models only), each a dict:
            "model": a ControlNet file (.safetensors, or .pth/.ckpt) or diffusers folder in the models folder
                (core.catalog.controlnets()), made for the model's family (SD 1.x, SD 2.x or SDXL);
            "image": the control picture (as `image` of image_to_image; required here);
            "preprocessor": "canny" (Canny edges, with "low_threshold" and "high_threshold", 1..255, default
                100 and 200), "scribble" (a sketch: dark strokes on light ground become white lines on black)
                or "none" (the picture as it is; the default): core.imaging.control, at width x height;
            "weight": 0..2 (default 1), diffusers' controlnet_conditioning_scale; a unit of weight 0 is not
                run, so the output is exactly the model's own;
            "start", "end": 0..1, start < end (defaults 0 and 1): the fraction of the steps the unit acts in.
            Several units at once run as diffusers' MultiControlNetModel (core.models.controlnet).
            parameters["controlnets"] lists them ({"model", "preprocessor", "weight", "start", "end",
            Canny's thresholds, "sha256" of a single file}). With the Hires. fix, both passes use them.
        hires_scale: AUTOMATIC1111's "Hires. fix" ("Upscale by"): None or 1 for off, else 1..4. Each
            picture drawn at width x height is enlarged this many times (sides rounded to multiples of
            8, within the model's sizes) with `hires_upscaler`, then redrawn by image_to_image at that
            size with the same prompt, negative prompt, seed, sampler, guidance and LoRAs
            (core.generators.hires); `upscale` then applies to the result. on_step and on_preview
            count both passes; parameters add hires_scale, hires_upscaler, hires_strength,
            hires_steps and hires_size ([w, h]; width and height stay the first pass's).
        hires_upscaler: "Lanczos" (a plain resize) or a name of the super-resolution list
            (core.catalog.upscalers()); a larger scale than asked is resized down with Lanczos.
        hires_strength: 0.01..1, the second pass's denoising strength (A1111's "Denoising strength").
        hires_steps: 0..100, the steps the second pass runs (0: `steps`), as A1111's "Hires steps":
            over a schedule of int(hires_steps / min(hires_strength, 0.999)) steps, which must fit
            the sampler (1..100; LCM 50).

    Returns:
        Result with batch_size x batch_count RGB images of (width, height) px (the hires size with the
        Hires. fix; x4 when `upscale`), their seeds, and the applied settings (`parameters["warnings"]`
        lists anything adjusted).

    Raises:
        InvalidInput: empty prompt, a setting out of range or of the wrong type, or a name (model,
            scheduler, LoRA) that is no name (the message names it); a ControlNet unit that is not as above,
            a control image that cannot be read, a ControlNet for another family than the model (both
            named), or ControlNet units for the emoji model.
        ModelNotFound: unknown model, missing weights, or a Hub id not cached while offline.
        UnsafeModelFile: a checkpoint, LoRA or ControlNet that is corrupt, of the wrong kind, or needs unpickling
            of code.
        ModelError: the model (denoiser, VAE or the x4 upscaler) gave NaN or infinite values even in
            float32; a half-precision model is first moved to float32 for good and the work redone (said in
            the warnings). An image that comes out as one flat colour is kept and named in the warnings.
        Cancelled: on_step raised it (the request was stopped).
    """
    if hires.wanted(hires_scale, hires_upscaler, hires_strength, hires_steps):  # checks them, also when off
        return hires.fix(**locals())  # the first statement: locals() holds the arguments, as given
    prompt = check_prompt(prompt)
    negative = check_prompt(negative_prompt, name="negative_prompt", required=False)
    check_bool("upscale", upscale)
    loras = lora.parse_loras(loras)
    units = controlnet.parse_units(controlnets)
    m = get(model)
    settings = _settings(m, model or DEFAULT_MODEL, steps, guidance_scale, width, height, batch_size, batch_count,
                         scheduler)
    settings.update(prompt=prompt, negative_prompt=negative)
    settings["warnings"] += token_warnings(m, prompt=prompt, negative_prompt=negative)
    control = controlnet.prepare(m, units, "text_to_image", settings["width"], settings["height"])
    settings["controlnets"] = control.parameters
    n = settings["batch_size"]
    size = (settings["width"], settings["height"])
    call = {"prompt": [prompt] * n, "negative_prompt": [negative] * n, "height": size[1], "width": size[0]}
    pipe = control.pipe
    if pipe is None:  # an SD inpainting checkpoint draws from pure noise with the whole picture masked, as in A1111
        call.update(image=[Image.new("RGB", size, (127, 127, 127))] * n, strength=1.0)
        pipe = inpaint_steps.whole_mask(m, m.text_to_image, size, call)
        if pipe is m.text_to_image:
            del call["image"], call["strength"]
    return _run(m, pipe, settings, seed, on_step, upscale, loras, settings["steps"],
                _check_previews(on_preview, preview_every), **call)


def image_to_image(image: Image.Image, prompt: str, *, strength: float = 0.6, model: str | None = None,
                   negative_prompt: str = "", steps: int | None = None, guidance_scale: float | None = None,
                   width: int | None = None, height: int | None = None, seed: int = -1, batch_size: int = 1,
                   batch_count: int = 1, scheduler: str | None = None,
                   loras: list[tuple[str, float]] | dict[str, float] | None = None, upscale: bool = False,
                   on_step: Callable[[int, int], None] | None = None,
                   on_preview: Callable[[list[Image.Image]], None] | None = None, preview_every: int = 5,
                   mask: Any = None, mask_blur: int = 4, inpaint_area: str = "whole", inpaint_padding: int = 32,
                   masked_content: str = "original", controlnets: list[dict[str, Any]] | None = None) -> Result:
    """Redraw a picture to match a prompt (SDEdit: noise it to `strength`, then denoise), or with a `mask`
    only the masked part of it (inpainting).

    Args:
        image: the starting picture (RGB/RGBA/L/P, each side 8..4096 px); transparency is
            composited on white and the picture is resized (Lanczos) to width x height.
        prompt: what the result should show, 1..2000 characters.
        strength: 0.01..1, how much to change: near 0 keeps the picture, 1 ignores it (default 0.6).
            As in diffusers, the last int(strength x steps) steps of the schedule run; when that is
            under one step, steps are raised to ceil(1 / strength) (a warning says so); when the sampler
            cannot run that many (LCM: 50), the strength is refused with the least one that it can run.
        model, negative_prompt, steps, guidance_scale, width, height, seed, batch_size, batch_count,
        scheduler, loras, upscale: as in `text_to_image`. With a mask, width x height is the working
            size of the redraw, not the output's.
        on_step: as in `text_to_image`, counting the steps that run (int(strength x steps) per call);
            raising core.Cancelled from on_step stops the work within one step/tile/face.
        on_preview, preview_every: as in `text_to_image`, counting the steps that run (with a mask the
            previews show the working picture).
        mask: None, or a picture of the image's size where white means redraw (PIL of mode 1, L, RGB or
            RGBA, a path, bytes or a uint8 array; an RGBA mask with any transparency counts by its alpha,
            as a layer painted in Gradio's ImageEditor; a pixel counts from 50 % up): see
            core.imaging.masks.read_mask. The model redraws where the blurred mask reaches, grown to whole
            latent pixels, and at the end the input is composited back in pixel space, as AUTOMATIC1111
            does: output = input x (1 - blurred mask) + redrawn x blurred mask, so every pixel the blurred
            mask does not reach (farther than int(2.5 x mask_blur + 0.5) px from the painted ones) is the
            input's exactly. SD inpainting checkpoints (9-channel UNet) and ordinary models (known region
            blended back at every step) both work: core.models.inpaint. Without a mask an SD inpainting
            checkpoint redraws the whole picture through its inpainting pipeline (all of it masked, as
            A1111 runs such models in img2img).
        mask_blur: 0..64 px, sigma of the Gaussian that softens the mask's edge (A1111 "Mask blur").
        inpaint_area: "whole": the whole picture is resized to width x height, redrawn, and resized back;
            "masked" (A1111 "Only masked"): the mask's bounding box grown by `inpaint_padding` px,
            widened to the aspect ratio of width x height and clipped to the picture, is cropped, redrawn
            at width x height (so small areas get the model's full resolution) and pasted back.
        inpaint_padding: 0..256 px around the mask in the "masked" area (A1111 "Only masked padding").
        masked_content: what the masked area starts from before the SDEdit noising: "original" (the
            picture), "noise" (standard normal noise in the model's own space, latent for SD as A1111's
            "latent noise", pixels for the emoji model, drawn from each image's seed: at strength 1 the
            same as pure noise, below it the masked area keeps nothing of the picture), or "fill" (the
            surrounding colours blurred into it, A1111's "fill": core.imaging.masks.fill).
        controlnets: ControlNet units, as in `text_to_image`; a unit without "image" is steered by the
            picture itself (with a mask: the part redrawn, before "fill"). With inpaint_area "masked", a
            unit's own image is taken as covering the whole picture and cut to the area redrawn. With a
            mask they run in diffusers' ControlNet inpainting pipelines (masked_content "noise" is not
            available with them).

    Returns:
        Result with batch_size x batch_count RGB images of (width, height) px, or with a mask of the input
        picture's size (as A1111 keeps it); x4 when `upscale`. With a mask, `parameters` also holds
        mask_blur, inpaint_area, inpaint_padding and masked_content.

    Raises:
        InvalidInput: no or unreadable image, a side under 8 or over 4096 px, empty prompt, or a
            setting out of range; a mask that is unreadable, of another mode or size than the picture,
            empty or covering the whole picture; inpaint_area, masked_content, mask_blur or
            inpaint_padding out of their choices or ranges; "noise" or a mask for a model whose pipeline
            cannot take it (the message names the model); ControlNet units as in `text_to_image`, or with
            masked_content "noise".
        ModelNotFound, UnsafeModelFile, ModelError, Cancelled: as in `text_to_image` (a flat result is
            only named in the warnings when the start picture was not flat itself).

    Sources: SDEdit (Meng et al. 2021, arXiv:2108.01073); RePaint (Lugmayr et al. 2022, arXiv:2201.09865)
    and diffusers' Stable Diffusion inpainting pipelines for the blend; AUTOMATIC1111's img2img inpaint
    (mask blur, "Only masked", masked content, the final overlay).
    """
    picture = open_image(image)
    prompt = check_prompt(prompt)
    negative = check_prompt(negative_prompt, name="negative_prompt", required=False)
    strength = check_float("strength", strength, *STRENGTH_RANGE)
    check_bool("upscale", upscale)
    loras = lora.parse_loras(loras)
    units = controlnet.parse_units(controlnets)
    inpainting = inpaint_steps.check_settings(mask_blur, inpaint_area, inpaint_padding, masked_content)
    painted = None if mask is None else masks.read_mask(mask, picture.size)
    m = get(model)
    settings = _settings(m, model or DEFAULT_MODEL, steps, guidance_scale, width, height, batch_size, batch_count,
                         scheduler)
    if int(strength * settings["steps"]) < 1:
        raised = math.ceil(1 / strength - 1e-9)
        limit = schedulers.max_steps(settings["scheduler"], m.scheduler_config)
        if raised > limit:
            least = math.ceil(100 / limit) / 100  # in the 0.01 steps of the strength slider
            raise InvalidInput(f"strength {strength:g} runs no step of {settings['steps']} steps and would need "
                               f"{raised} steps, but the {settings['scheduler']} sampler runs at most {limit}: "
                               f"raise strength to at least {least:g}, or choose another sampler")
        settings["warnings"].append(f"steps raised from {settings['steps']} to {raised} so that strength "
                                    f"{strength:g} runs at least one step")
        settings["steps"] = raised
    settings.update(prompt=prompt, negative_prompt=negative, strength=strength, input_size=list(picture.size))
    settings["warnings"] += picture.info.get("notes", [])  # e.g. an animated picture: its first frame
    settings["warnings"] += token_warnings(m, prompt=prompt, negative_prompt=negative)
    n = settings["batch_size"]
    size = (settings["width"], settings["height"])
    call = {"prompt": [prompt] * n, "negative_prompt": [negative] * n, "strength": strength}
    pipe, finish = m.image_to_image, None
    if painted is not None:
        pipe, finish = inpaint_steps.masked(m, flatten(picture), painted, inpainting, size, call)
        settings.update(inpainting)
    else:
        call["image"] = [flatten(picture).resize(size, Image.LANCZOS)] * n
        pipe = inpaint_steps.whole_mask(m, pipe, size, call)
    pipe = inpaint_steps.with_controlnets(m, pipe, units, size, call, finish, settings)
    return _run(m, pipe, settings, seed, on_step, upscale, loras,
                min(int(strength * settings["steps"]), settings["steps"]), _check_previews(on_preview, preview_every),
                finish=finish, **call)


def _check_previews(on_preview: object, preview_every: object) -> tuple:
    """(on_preview, preview_every) checked: a callable or None, and 1..100 steps."""
    if on_preview is not None and not callable(on_preview):
        raise InvalidInput(f"on_preview must be a function or None, got {type(on_preview).__name__}")
    return on_preview, check_int("preview_every", preview_every, 1, STEPS_RANGE[1])


def _sha256(name: str) -> str | None:
    """The sha256 of a model or LoRA file the user named (cached per file version: core.models.hashes),
    for the pictures' "Model hash" and "Lora hashes"; None for a registered model, a folder or a Hub id."""
    try:
        path = files.resolve_file(name)
    except CoreError:
        return None
    return hashes.file_sha256(path)
