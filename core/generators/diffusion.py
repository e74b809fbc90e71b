"""Text-to-image and image-to-image on diffusion models.

Orchestration only: `model` becomes a loaded model in core.models.diffusion (the embedded emoji
model, a Stable Diffusion checkpoint or diffusers folder in the models folder, or a Hub repo id);
the sampler comes from core.models.schedulers, LoRAs from core.models.lora, the VAE decode from
core.models.vae, the optional x4 upscale from core.generators.enlarge.

Batch invariance: image i of a batch has the same pixels as its seed alone. On the CPU, convolution
and matrix kernels pick their blocking by batch size, which moved pixels by an 8-bit level, so
there each image is denoised in its own pipeline call (the cost is small for these models; on a
GPU a batch runs as one call, and images may differ from the same seed alone by rounding).
"""

from __future__ import annotations

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
from core.checks import check_float, check_int, check_prompt
from core.generators import enlarge
from core.imaging.io import flatten, open_image, to_pil
from core.models import lora, vae, zerogpu
from core.models.diffusion import DEFAULT_MODEL, DiffusionModel, get, token_warnings
from core.models.schedulers import make_scheduler
from core.result import Result
from core.seeds import resolve_seeds

_RUN_LOCK = threading.Lock()  # one pipeline call at a time: schedulers and LoRA scales are per-model state


def _settings(m: DiffusionModel, name: str, steps, guidance_scale, width, height, batch_size, batch_count,
              scheduler) -> dict[str, Any]:
    """Check the shared settings and fill the model's defaults; sides not a multiple of 8 are rounded
    (said in settings["warnings"])."""
    settings: dict[str, Any] = {
        "model": name,
        "steps": check_int("steps", m.defaults["steps"] if steps is None else steps, *STEPS_RANGE),
        "guidance_scale": check_float("guidance_scale", m.defaults["guidance_scale"] if guidance_scale is None
                                      else guidance_scale, *GUIDANCE_RANGE),
        "batch_size": check_int("batch_size", batch_size, 1, MAX_BATCH),
        "batch_count": check_int("batch_count", batch_count, 1, MAX_BATCH_COUNT),
        "scheduler": scheduler or m.defaults["scheduler"],
        "warnings": [],
    }
    low, high = m.sizes
    for key, value in (("width", width), ("height", height)):
        value = check_int(key, m.native if value is None else value, low, high)
        if value % 8:
            rounded = min(high, max(low, 8 * round(value / 8)))
            settings["warnings"].append(f"{key} {value} px was rounded to {rounded} px (a multiple of 8)")
            value = rounded
        settings[key] = value
    return settings


def _denoise(m: DiffusionModel, pipe, seeds: list[int], settings: dict, callback, call: dict
             ) -> tuple[torch.Tensor, bool, list[int]]:
    """One pipeline call for len(seeds) images: returns (pixels `(N, 3, H, W)` in [0, 1], VAE upcast,
    indices blacked out by the model's safety checker). List arguments in `call` are cut to N."""
    call = {k: v[:len(seeds)] if isinstance(v, list) else v for k, v in call.items()}
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    out = pipe(generator=gens, num_inference_steps=settings["steps"], guidance_scale=settings["guidance_scale"],
               callback_on_step_end=callback, output_type="latent" if m.has_vae else "pt", **call).images
    if not m.has_vae:
        return out, False, []
    pixels, upcast = vae.decode(m, out)
    pixels, flagged = vae.safety_check(m, pixels)
    return pixels, upcast, flagged


@zerogpu.gpu(duration=120)
def _generate(m: DiffusionModel, pipe, seeds: list[int], settings: dict, on_step, run_steps: int, upscale: bool,
              call: dict) -> tuple[list[Image.Image], list[str]]:
    """Every pipeline call of a request, then the optional x4 upscale: the GPU-bound part, so on
    ZeroGPU one borrowed GPU does all of it. One call per `batch_size` seeds, or per seed on the
    CPU (see the module docstring). Returns (images, warnings); it changes none of its arguments,
    since ZeroGPU may run it in another process."""
    n = 1 if pipe.device.type == "cpu" else settings["batch_size"]
    groups = [seeds[i:i + n] for i in range(0, len(seeds), n)]
    images: list[Image.Image] = []
    warnings: list[str] = []
    for g, group in enumerate(groups):
        def callback(_pipe, i, _t, kwargs, g=g):
            if on_step is not None:  # steps of all pipeline calls: one per image on the CPU
                on_step(g * run_steps + i + 1, len(groups) * run_steps)
            return kwargs

        pixels, upcast, flagged = _denoise(m, pipe, group, settings, callback, call)
        if upcast:
            warnings.append("the half-precision VAE gave NaN values; decoded in float32 instead")
        warnings += [f"image {len(images) + i + 1} was blacked out by the model's safety checker" for i in flagged]
        images += to_pil(pixels)
    return (enlarge.x4(images) if upscale else images), warnings


def _run(m: DiffusionModel, pipe, settings: dict, seed: int, on_step, upscale: bool, loras, run_steps: int,
         **call) -> Result:
    """Seeds, sampler, LoRAs, the pipeline calls and the optional x4 upscale (`_generate`)."""
    seeds = resolve_seeds(seed, settings["batch_size"] * settings["batch_count"])
    with _RUN_LOCK, torch.inference_mode():
        pipe.scheduler = make_scheduler(settings["scheduler"], m.scheduler_config, settings["steps"])
        settings["loras"] = lora.apply(m, loras)
        settings["vae_tiling"] = vae.set_vae_tiling(m, settings["width"], settings["height"])
        images, warnings = _generate(m, pipe, seeds, settings, on_step, run_steps, bool(upscale), call)
    settings["warnings"] += warnings
    settings["upscale"] = bool(upscale)
    settings["seed"] = seeds[0]
    return Result(images=images, seeds=seeds, parameters=settings)


def text_to_image(prompt: str, *, model: str | None = None, negative_prompt: str = "", steps: int | None = None,
                  guidance_scale: float | None = None, width: int | None = None, height: int | None = None,
                  seed: int = -1, batch_size: int = 1, batch_count: int = 1, scheduler: str | None = None,
                  loras: list[tuple[str, float]] | dict[str, float] | None = None, upscale: bool = False,
                  on_step: Callable[[int, int], None] | None = None) -> Result:
    """Generate images from a text prompt.

    Args:
        prompt: what to draw, 1..2000 characters (the emoji model knows Unicode emoji names, e.g.
            "red apple", "rocket"; Stable Diffusion reads 75 CLIP tokens, longer prompts are cut
            and the result's warnings say which words were left out).
        model: None for the embedded emoji model; a registered name; a checkpoint (.safetensors,
            .ckpt/.pt/.pth) or diffusers folder in the models folder; or a Hub repo id such as
            "stabilityai/sd-turbo" (see core.models.stable_diffusion).
        negative_prompt: what to steer away from ("" for none).
        steps: denoising steps, 1..100 (default: the model's, e.g. 25; 1 for Turbo models).
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
        upscale: also enlarge each image x4 with the default upscaler (core.upscale).
        on_step: called as on_step(done_steps, total_steps) after each denoising step of each pipeline
            call (total = steps x images on the CPU, where each image runs alone; steps x batch_count on a
            GPU); core never imports gradio.

    Returns:
        Result with batch_size x batch_count RGB images of (width, height) px (x4 when `upscale`),
        their seeds, and the applied settings (`parameters["warnings"]` lists anything adjusted).

    Raises:
        InvalidInput: empty prompt, or a setting out of range (the message names it).
        ModelNotFound: unknown model, missing weights, or a Hub id not cached while offline.
        UnsafeModelFile: a checkpoint or LoRA that is corrupt, of the wrong kind, or needs unpickling of code.
        ModelError: the model produced NaN values even in float32.
    """
    prompt = check_prompt(prompt)
    negative = check_prompt(negative_prompt, name="negative_prompt", required=False)
    loras = lora.parse_loras(loras)
    m = get(model)
    settings = _settings(m, model or DEFAULT_MODEL, steps, guidance_scale, width, height, batch_size, batch_count,
                         scheduler)
    settings.update(prompt=prompt, negative_prompt=negative)
    settings["warnings"] += token_warnings(m, prompt=prompt, negative_prompt=negative)
    n = settings["batch_size"]
    return _run(m, m.text_to_image, settings, seed, on_step, upscale, loras, settings["steps"],
                prompt=[prompt] * n, negative_prompt=[negative] * n, height=settings["height"],
                width=settings["width"])


def image_to_image(image: Image.Image, prompt: str, *, strength: float = 0.6, model: str | None = None,
                   negative_prompt: str = "", steps: int | None = None, guidance_scale: float | None = None,
                   width: int | None = None, height: int | None = None, seed: int = -1, batch_size: int = 1,
                   batch_count: int = 1, scheduler: str | None = None,
                   loras: list[tuple[str, float]] | dict[str, float] | None = None, upscale: bool = False,
                   on_step: Callable[[int, int], None] | None = None) -> Result:
    """Redraw a picture to match a prompt (SDEdit: noise it to `strength`, then denoise).

    Args:
        image: the starting picture (RGB/RGBA/L/P, each side 8..4096 px); transparency is
            composited on white and the picture is resized (Lanczos) to width x height.
        prompt: what the result should show, 1..2000 characters.
        strength: 0.01..1, how much to change: near 0 keeps the picture, 1 ignores it (default 0.6).
            As in diffusers, the last int(strength x steps) steps of the schedule run; when that is
            under one step, steps are raised to ceil(1 / strength) (a warning says so).
        model, negative_prompt, steps, guidance_scale, width, height, seed, batch_size, batch_count,
        scheduler, loras, upscale, on_step: as in `text_to_image`.

    Returns:
        Result with batch_size x batch_count RGB images of (width, height) px (x4 when `upscale`).

    Raises:
        InvalidInput: no or unreadable image, a side under 8 or over 4096 px, empty prompt, or a
            setting out of range.
        ModelNotFound, UnsafeModelFile, ModelError: as in `text_to_image`.
    """
    picture = open_image(image)
    prompt = check_prompt(prompt)
    negative = check_prompt(negative_prompt, name="negative_prompt", required=False)
    strength = check_float("strength", strength, *STRENGTH_RANGE)
    loras = lora.parse_loras(loras)
    m = get(model)
    settings = _settings(m, model or DEFAULT_MODEL, steps, guidance_scale, width, height, batch_size, batch_count,
                         scheduler)
    if int(strength * settings["steps"]) < 1:
        raised = math.ceil(1 / strength - 1e-9)
        settings["warnings"].append(f"steps raised from {settings['steps']} to {raised} so that strength "
                                    f"{strength:g} runs at least one step")
        settings["steps"] = raised
    settings.update(prompt=prompt, negative_prompt=negative, strength=strength, input_size=list(picture.size))
    settings["warnings"] += picture.info.get("notes", [])  # e.g. an animated picture: its first frame
    settings["warnings"] += token_warnings(m, prompt=prompt, negative_prompt=negative)
    start = flatten(picture).resize((settings["width"], settings["height"]), Image.LANCZOS)
    n = settings["batch_size"]
    return _run(m, m.image_to_image, settings, seed, on_step, upscale, loras,
                min(int(strength * settings["steps"]), settings["steps"]),
                prompt=[prompt] * n, negative_prompt=[negative] * n, image=[start] * n, strength=strength)
