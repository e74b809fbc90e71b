"""Text-to-image and image-to-image on diffusion models.

`model` is the embedded emoji model (pixel-space, 32x32, trained here: weights/emoji-diffusion, see
its model card), a Stable Diffusion checkpoint or diffusers folder in the models folder, or a Hub
repo id (core.sd_models). Text-to-image and image-to-image share one loaded pipeline: the
image-to-image pipeline is made with `from_pipe`, so switching tabs loads nothing again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core import lora, models, sd_models, zerogpu
from core.checks import check_float, check_int, check_prompt
from core.devices import default_device, default_dtype
from core.errors import InvalidInput, ModelNotFound
from core.imageio import flatten, open_image, to_pil
from core.model_files import scan
from core.paths import WEIGHTS_DIR
from core.result import Result
from core.schedulers import make_scheduler
from core.sd_models import DiffusionModel
from core.seeds import resolve_seeds

KIND = "text_to_image"
SOURCE_KIND = "text_to_image:source"  # cache entries for paths and Hub ids, keyed by core.sd_models.source_key
DEFAULT_MODEL = "emoji-diffusion-32"
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 5.0  # best top-1 retrieval of the shipped emoji model (bench/emoji_retrieval.py, 2..6)
DEFAULT_SCHEDULER = "DDIM"
MAX_BATCH = 16
MAX_BATCH_COUNT = 16
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0.0, 30.0)
_RUN_LOCK = threading.Lock()  # one pipeline call at a time: schedulers and LoRA scales are per-model state


def load_emoji_folder(folder: Path, name: str = DEFAULT_MODEL) -> DiffusionModel:
    """Load an emoji-model pipeline folder (diffusers layout, as `core.training.train` writes it).

    Returns a DiffusionModel whose two pipelines share every module; native size = the training size,
    accepted sides from half to twice it.

    Raises:
        ModelNotFound: the folder holds no UNet weights.
    """
    from core.emoji_pipeline import EmojiImg2ImgPipeline, EmojiPipeline, prepare_text_encoder

    if not (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file():
        raise ModelNotFound(f"the emoji model is missing from {folder}; run `bash scripts/setup.sh` "
                            "or train it with `python -m core.training.train` (see weights/README.md)")
    prepare_text_encoder(folder)
    device = default_device()
    t2i = EmojiPipeline.from_pretrained(folder, dtype=default_dtype(device), disable_mmap=True)
    if device.type != "cpu":
        t2i = t2i.to(device)
    native = t2i.unet.config.sample_size
    return DiffusionModel(name=name, text_to_image=t2i, image_to_image=EmojiImg2ImgPipeline.from_pipe(t2i),
                          family="emoji", native=native, sizes=(native // 2, native * 2),
                          defaults={"steps": DEFAULT_STEPS, "guidance_scale": DEFAULT_GUIDANCE,
                                    "scheduler": DEFAULT_SCHEDULER},
                          scheduler_config=t2i.scheduler.config)


models.register(models.ModelSpec(
    kind="text_to_image", name=DEFAULT_MODEL, loader=partial(load_emoji_folder, WEIGHTS_DIR / "emoji-diffusion"),
    description="emoji diffusion, 32x32 pixel-space UNet trained here on Noto Emoji (Apache-2.0)"))


def choices() -> list[str]:
    """What the model list offers: registered models (the embedded default first), then the models
    folder's checkpoints and diffusers folders, then well-known Hub ids."""
    return [*models.names(KIND), *scan("checkpoint"), *sd_models.HUB_MODELS]


def suggested_settings(model: str | None) -> dict[str, Any]:
    """Steps, guidance_scale, scheduler, width, height and upscale (x4 for the 32-px emoji model
    only) that suit `model`, without loading it (a loaded model answers from itself). For the UI,
    to fill its controls when the model changes."""
    name = DEFAULT_MODEL if model in (None, "") else model
    if name in models.cached(KIND):
        m = models.load(KIND, name)
        return {**m.defaults, "width": m.native, "height": m.native, "upscale": m.family == "emoji"}
    if name == DEFAULT_MODEL:
        return {"steps": DEFAULT_STEPS, "guidance_scale": DEFAULT_GUIDANCE, "scheduler": DEFAULT_SCHEDULER,
                "width": 32, "height": 32, "upscale": True}
    return {**sd_models.suggested(name), "upscale": False}


def get_model(model: str | None) -> DiffusionModel:
    """The loaded (cached) model for `model`: None for the default, a registered name, a checkpoint
    file or diffusers folder (relative to the models folder), or a Hub repo id.

    Raises:
        InvalidInput: `model` is not text.
        ModelNotFound, UnsafeModelFile: see core.sd_models.load.
    """
    name = DEFAULT_MODEL if model in (None, "") else model
    if not isinstance(name, str):
        raise InvalidInput(f"model must be a model name, file or Hub id, got {type(model).__name__}")
    if name in models.names(KIND):
        return models.load(KIND, name)
    key = sd_models.source_key(name)
    if key == name and not sd_models.is_hub_id(name) and not Path(name).suffix:
        raise ModelNotFound(f"unknown model {name!r}; choose one of {', '.join(models.names(KIND))}, a checkpoint "
                            "in the models folder, or a Hugging Face repo id like stabilityai/sd-turbo")
    if key not in models.names(SOURCE_KIND):
        folder = Path(key.rsplit("@", 1)[0])
        emoji = (folder / "model_index.json").is_file() and '"EmojiPipeline"' in (folder / "model_index.json").read_text()
        loader = partial(load_emoji_folder, folder, name) if emoji else partial(sd_models.load, name)
        models.register(models.ModelSpec(SOURCE_KIND, key, loader))
    return models.load(SOURCE_KIND, key)


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


@zerogpu.gpu(duration=120)
def _denoise(m: DiffusionModel, pipe, seeds: list[int], settings: dict, callback, call: dict
             ) -> tuple[torch.Tensor, bool, list[int]]:
    """One pipeline call for len(seeds) images: returns (pixels `(N, 3, H, W)` in [0, 1], VAE upcast,
    indices blacked out by the model's safety checker). The GPU-bound part (ZeroGPU-wrapped)."""
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    out = pipe(generator=gens, num_inference_steps=settings["steps"], guidance_scale=settings["guidance_scale"],
               callback_on_step_end=callback, output_type="latent" if m.has_vae else "pt", **call).images
    if not m.has_vae:
        return out, False, []
    pixels, upcast = sd_models.decode(m, out)
    pixels, flagged = sd_models.safety_check(m, pixels)
    return pixels, upcast, flagged


def _run(m: DiffusionModel, pipe, settings: dict, seed: int, on_step, upscale: bool, loras, run_steps: int,
         **call) -> Result:
    """Seeds, sampler, LoRAs, `batch_count` pipeline calls, then PIL and the optional x4 upscale."""
    n, count = settings["batch_size"], settings["batch_count"]
    seeds = resolve_seeds(seed, n * count)
    images: list[Image.Image] = []
    with _RUN_LOCK, torch.inference_mode():
        pipe.scheduler = make_scheduler(settings["scheduler"], m.scheduler_config, settings["steps"])
        settings["loras"] = lora.apply(m, loras)
        settings["vae_tiling"] = sd_models.set_vae_tiling(m, settings["width"], settings["height"])
        for b in range(count):
            def callback(_pipe, i, _t, kwargs, b=b):
                if on_step is not None:
                    on_step(b * run_steps + i + 1, count * run_steps)
                return kwargs

            pixels, upcast, flagged = _denoise(m, pipe, seeds[b * n:(b + 1) * n], settings, callback, call)
            if upcast:
                settings["warnings"].append("the half-precision VAE gave NaN values; decoded in float32 instead")
            settings["warnings"] += [f"image {b * n + i + 1} was blacked out by the model's safety checker"
                                     for i in flagged]
            images += to_pil(pixels)
    if upscale:
        from core.super_resolution import upscale as upscale_image

        images = [upscale_image(img, scale=4).images[0] for img in images]
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
            "stabilityai/sd-turbo" (see core.sd_models).
        negative_prompt: what to steer away from ("" for none).
        steps: denoising steps, 1..100 (default: the model's, e.g. 25; 1 for Turbo models).
        guidance_scale: classifier-free guidance, 0..30; 1 or less turns it off (default: the
            model's, e.g. 5 for emoji, 7 for SD 1.x/2.x, 5 for SDXL, 0 for Turbo).
        width, height: output size in px (default: the model's native size). Emoji: 16..64; Stable
            Diffusion: 64..2048. Sides that are not a multiple of 8 are rounded to one (a warning says so).
        seed: -1 for random, else 0..2**32-1; image i of the run uses seed + i.
        batch_size: images per pipeline call, 1..16.
        batch_count: pipeline calls in a row, 1..16 (batch_size x batch_count images in all).
        scheduler: a name from core.schedulers.SCHEDULERS (default: the model's).
        loras: LoRA files in the models folder with a weight each, as [(file, weight)] or
            {file: weight}; weights -4..4 (Stable Diffusion models only).
        upscale: also enlarge each image x4 with the default upscaler (core.upscale).
        on_step: called as on_step(done_steps, total_steps); core never imports gradio.

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
    negative = check_prompt(negative_prompt, required=False)
    loras = lora.parse_loras(loras)
    m = get_model(model)
    settings = _settings(m, model or DEFAULT_MODEL, steps, guidance_scale, width, height, batch_size, batch_count,
                         scheduler)
    settings.update(prompt=prompt, negative_prompt=negative)
    settings["warnings"] += sd_models.token_warnings(m, prompt=prompt, negative_prompt=negative)
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
    negative = check_prompt(negative_prompt, required=False)
    strength = check_float("strength", strength, 0.01, 1.0)
    loras = lora.parse_loras(loras)
    m = get_model(model)
    settings = _settings(m, model or DEFAULT_MODEL, steps, guidance_scale, width, height, batch_size, batch_count,
                         scheduler)
    if int(strength * settings["steps"]) < 1:
        raised = math.ceil(1 / strength - 1e-9)
        settings["warnings"].append(f"steps raised from {settings['steps']} to {raised} so that strength "
                                    f"{strength:g} runs at least one step")
        settings["steps"] = raised
    settings.update(prompt=prompt, negative_prompt=negative, strength=strength, input_size=list(picture.size))
    settings["warnings"] += sd_models.token_warnings(m, prompt=prompt, negative_prompt=negative)
    start = flatten(picture).resize((settings["width"], settings["height"]), Image.LANCZOS)
    n = settings["batch_size"]
    return _run(m, m.image_to_image, settings, seed, on_step, upscale, loras,
                min(int(strength * settings["steps"]), settings["steps"]),
                prompt=[prompt] * n, negative_prompt=[negative] * n, image=[start] * n, strength=strength)
