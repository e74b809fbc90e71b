"""Text-to-image and image-to-image on diffusion models.

The embedded default is our emoji model (pixel-space, 32x32, trained here: weights/emoji-diffusion,
see its model card). Text-to-image and image-to-image share one loaded pipeline: the image-to-image
pipeline is made with `from_pipe`, so switching tabs loads nothing again.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from core import models
from core.checks import check_float, check_int, check_prompt
from core.devices import default_device, default_dtype
from core.errors import InvalidInput, ModelNotFound
from core.imageio import flatten, open_image, to_pil, to_tensor
from core.paths import WEIGHTS_DIR
from core.result import Result
from core.schedulers import make_scheduler
from core.seeds import resolve_seeds

DEFAULT_MODEL = "emoji-diffusion-32"
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 3.0  # best retrieval for the shipped emoji model (bench/emoji_retrieval.py, 1.5..6)
DEFAULT_SCHEDULER = "DDIM"
MAX_BATCH = 16
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (1.0, 20.0)
_RUN_LOCK = threading.Lock()  # one pipeline call at a time: schedulers keep per-call state


def load_emoji_folder(folder: Path) -> dict[str, Any]:
    """Load an emoji-model pipeline folder (diffusers layout, as `core.training.train` writes it).

    Returns a dict: "text_to_image" and "image_to_image" pipelines sharing every module, "native"
    (the training size in px) and "sizes" (the (min, max) side in px it accepts).

    Raises:
        ModelNotFound: the folder holds no UNet weights.
    """
    from core.emoji_pipeline import EmojiImg2ImgPipeline, EmojiPipeline, prepare_text_encoder

    if not (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file():
        raise ModelNotFound(f"the emoji model is missing from {folder}; run `bash scripts/setup.sh` "
                            "or train it with `python -m core.training.train` (see weights/README.md)")
    prepare_text_encoder(folder)
    device = default_device()
    t2i = EmojiPipeline.from_pretrained(folder, torch_dtype=default_dtype(device))
    if device.type != "cpu":
        t2i = t2i.to(device)
    i2i = EmojiImg2ImgPipeline.from_pipe(t2i)
    native = t2i.unet.config.sample_size
    return {"text_to_image": t2i, "image_to_image": i2i, "native": native, "sizes": (native // 2, native * 2)}


models.register(models.ModelSpec(
    kind="text_to_image", name=DEFAULT_MODEL, loader=partial(load_emoji_folder, WEIGHTS_DIR / "emoji-diffusion"),
    description="emoji diffusion, 32x32 pixel-space UNet trained here on Noto Emoji (Apache-2.0)"))


def _check_common(model, steps, guidance_scale, width, height, batch_size, scheduler):
    """Check and fill the shared settings; returns (loaded model dict, settings dict)."""
    name = model or DEFAULT_MODEL
    if not isinstance(name, str):
        raise InvalidInput(f"model must be a model name, got {type(model).__name__}")
    settings = {
        "model": name,
        "steps": check_int("steps", DEFAULT_STEPS if steps is None else steps, *STEPS_RANGE),
        "guidance_scale": check_float("guidance_scale", DEFAULT_GUIDANCE if guidance_scale is None
                                      else guidance_scale, *GUIDANCE_RANGE),
        "batch_size": check_int("batch_size", batch_size, 1, MAX_BATCH),
        "scheduler": scheduler or DEFAULT_SCHEDULER,
    }
    loaded = models.load("text_to_image", name)
    low, high = loaded["sizes"]
    for key, value in (("width", width), ("height", height)):
        value = check_int(key, loaded["native"] if value is None else value, low, high)
        if value % 8:
            raise InvalidInput(f"{key} must be a multiple of 8, got {value}")
        settings[key] = value
    return loaded, settings


def _run(pipe, settings: dict, seed: int, on_step, upscale: bool, **call) -> Result:
    """Seeds, scheduler, the pipeline call, then PIL and the optional x4 upscale."""
    seeds = resolve_seeds(seed, settings["batch_size"])
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    with _RUN_LOCK, torch.inference_mode():
        pipe.scheduler = make_scheduler(settings["scheduler"], pipe.scheduler.config)
        pixels = pipe(generator=gens, num_inference_steps=settings["steps"],
                      guidance_scale=settings["guidance_scale"], callback=on_step, **call)
    images = to_pil(pixels)
    if upscale:
        from core.super_resolution import upscale as upscale_image

        images = [upscale_image(img, scale=4).images[0] for img in images]
    settings["upscale"] = bool(upscale)
    settings["seed"] = seeds[0]
    return Result(images=images, seeds=seeds, parameters=settings)


def text_to_image(prompt: str, *, model: str | None = None, negative_prompt: str = "", steps: int | None = None,
                  guidance_scale: float | None = None, width: int | None = None, height: int | None = None,
                  seed: int = -1, batch_size: int = 1, scheduler: str | None = None, upscale: bool = False,
                  on_step: Callable[[int, int], None] | None = None) -> Result:
    """Generate images from a text prompt.

    Args:
        prompt: what to draw, 1..2000 characters (the emoji model knows Unicode emoji names,
            e.g. "red apple", "rocket", "grinning face"; it reads the first 16 word pieces).
        model: None for the embedded emoji model, or a registered model name.
        negative_prompt: what to steer away from ("" for none).
        steps: denoising steps, 1..100 (default 25).
        guidance_scale: classifier-free guidance, 1..20; 1 turns it off (default 3.0).
        width, height: output size in px, multiples of 8 from half to twice the model's training
            size (emoji: 16..64, default 32).
        seed: -1 for random, else 0..2**32-1; image i of the batch uses seed + i.
        batch_size: images per call, 1..16.
        scheduler: a name from core.schedulers.SCHEDULERS (default "DDIM").
        upscale: also enlarge each image x4 with the default upscaler (core.upscale).
        on_step: called as on_step(done_steps, total_steps); core never imports gradio.

    Returns:
        Result with `batch_size` RGB images of (width, height) px (x4 when `upscale`), their seeds,
        and the applied settings.

    Raises:
        InvalidInput: empty prompt, or a setting out of range (the message names it).
        ModelNotFound: unknown model, or its weights are missing.
    """
    prompt = check_prompt(prompt)
    negative = check_prompt(negative_prompt, required=False)
    loaded, settings = _check_common(model, steps, guidance_scale, width, height, batch_size, scheduler)
    n = settings["batch_size"]
    settings.update(prompt=prompt, negative_prompt=negative)
    return _run(loaded["text_to_image"], settings, seed, on_step, upscale, prompt=[prompt] * n,
                negative_prompt=[negative] * n, height=settings["height"], width=settings["width"])


def image_to_image(image: Image.Image, prompt: str, *, strength: float = 0.6, model: str | None = None,
                   negative_prompt: str = "", steps: int | None = None, guidance_scale: float | None = None,
                   width: int | None = None, height: int | None = None, seed: int = -1, batch_size: int = 1,
                   scheduler: str | None = None, upscale: bool = False,
                   on_step: Callable[[int, int], None] | None = None) -> Result:
    """Redraw a picture to match a prompt (SDEdit: noise it to `strength`, then denoise).

    Args:
        image: the starting picture (RGB/RGBA/L/P, each side 8..4096 px); transparency is
            composited on white and the picture is resized (Lanczos) to width x height.
        prompt: what the result should show, 1..2000 characters.
        strength: 0..1, how much to change: 0 keeps the picture, 1 ignores it (default 0.6);
            round(strength * steps) steps are run, at least one.
        model, negative_prompt, steps, guidance_scale, width, height, seed, batch_size, scheduler,
        upscale, on_step: as in `text_to_image`.

    Returns:
        Result with `batch_size` RGB images of (width, height) px (x4 when `upscale`).

    Raises:
        InvalidInput: no or unreadable image, a side under 8 or over 4096 px, empty prompt, or a
            setting out of range.
        ModelNotFound: unknown model, or its weights are missing.
    """
    picture = open_image(image)
    prompt = check_prompt(prompt)
    negative = check_prompt(negative_prompt, required=False)
    strength = check_float("strength", strength, 0.0, 1.0)
    loaded, settings = _check_common(model, steps, guidance_scale, width, height, batch_size, scheduler)
    n = settings["batch_size"]
    settings.update(prompt=prompt, negative_prompt=negative, strength=strength,
                    input_size=list(picture.size))
    start = flatten(picture).resize((settings["width"], settings["height"]), Image.LANCZOS)
    pixels = to_tensor(start).repeat(n, 1, 1, 1)  # (N, 3, H, W) in [0, 1]
    return _run(loaded["image_to_image"], settings, seed, on_step, upscale, prompt=[prompt] * n,
                negative_prompt=[negative] * n, image=pixels, strength=strength)
