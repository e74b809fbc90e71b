"""What the UI lists and offers, in one place: the models of each tab, their defaults, ranges and samplers.

The demos ask this module, never a loader. The tables here are also the ranges the generators check,
so a control can never offer what core refuses. Importing it loads no torch; the functions that
look into files (`upscalers`, `face_restorers`, `diffusion_settings` for a checkpoint) import what
they need when called, which the UI does when the page loads or a list is opened, not at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.seeds import MAX_SEED

__all__ = [
    "MAX_SEED", "DiffusionSettings", "diffusion_models", "diffusion_settings", "model_note", "loras", "controlnets",
    "upscalers", "upscaler_descriptions", "face_restorers", "face_models",
]

# --- text to image, image to image -------------------------------------------------------------
DEFAULT_DIFFUSION_MODEL = "emoji-diffusion-32"
STEPS_RANGE = (1, 100)
GUIDANCE_RANGE = (0.0, 30.0)
STRENGTH_RANGE = (0.01, 1.0)
SIDE_STEP = 8
"""Width and height are multiples of 8 (the VAE's downsampling; our emoji UNet's too)."""
MAX_BATCH = 16
MAX_BATCH_COUNT = 16
LORA_WEIGHT_RANGE = (-4.0, 4.0)
SAMPLERS = ("DDIM", "Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "UniPC", "LCM")
"""AUTOMATIC1111 / ComfyUI names; core.models.schedulers maps each to a diffusers scheduler."""
KARRAS_SAMPLERS = ("DPM++ 2M Karras",)
"""Karras sigmas repeat timesteps on a cosine noise schedule (the emoji model's), so not offered there."""

EMOJI_SETTINGS = {"steps": 25, "guidance_scale": 5.0, "scheduler": "DDIM"}
"""Guidance 5: the best top-1 retrieval of the shipped emoji model (bench/emoji_retrieval.py, 2..6)."""
FAMILY_DEFAULTS = {
    "sd1": {"steps": 25, "guidance_scale": 7.0, "scheduler": "DPM++ 2M Karras"},
    "sd2": {"steps": 25, "guidance_scale": 7.0, "scheduler": "DPM++ 2M Karras"},
    "sdxl": {"steps": 25, "guidance_scale": 5.0, "scheduler": "DPM++ 2M Karras"},
    "turbo": {"steps": 1, "guidance_scale": 0.0, "scheduler": "Euler a"},  # model cards of SD-/SDXL-Turbo
    "lcm": {"steps": 4, "guidance_scale": 1.0, "scheduler": "LCM"},
}
NATIVE_SIDE = {"sd1": 512, "sd2": 768, "sdxl": 1024, "turbo": 512}
"""Training resolution in px per family (model cards); both Turbo models were distilled at 512."""
SD_SIDES = (64, 2048)
HUB_MODELS = {
    "stabilityai/sd-turbo": "sd2",  # SD 2.1 distilled: 512 px, 1-4 steps, no CFG
    "stabilityai/sdxl-turbo": "sdxl",  # 512 px, 1-4 steps, no CFG
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd1",
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl",
}
"""Hub repo ids offered in the model list, with their family (any other id works too)."""

# --- inpainting and outpainting (image to image) ----------------------------------------------
INPAINT_AREAS = ("whole", "masked")
"""inpaint_area: the whole picture at width x height, or only the masked area's crop (A1111 "Only masked")."""
MASKED_CONTENTS = ("original", "noise", "fill")
"""masked_content: what the masked area holds before denoising (A1111's original / latent noise / fill)."""
OUTPAINT_SIDES = ("left", "right", "top", "bottom")
"""The sides outpaint extends, in the order its settings and its "Outpaint" field list them."""
OUTPAINT_FILLS = ("edge", "noise")
"""outpaint fill: the new area starts from the border pixels stretched outward, or from noise."""
MASK_BLUR_RANGE = (0, 64)
"""Mask blur in px (the Gaussian's sigma; A1111's "Mask blur" slider, default 4)."""
INPAINT_PADDING_RANGE = (0, 256)
"""px around the mask in the "masked" inpaint area (A1111's "Only masked padding", default 32)."""
OUTPAINT_MAX = SD_SIDES[1]
"""The most px outpaint adds on one side (the largest side any model here takes)."""

# --- Hires. fix (text to image) ----------------------------------------------------------------
HIRES_SCALE_RANGE = (1.0, 4.0)
"""A1111's "Upscale by" slider: 1 = off."""
HIRES_SCALE_STEP = 0.05
HIRES_STEPS_RANGE = (0, STEPS_RANGE[1])
"""Steps the second pass runs; 0 = the first pass's steps."""
HIRES_STRENGTH_RANGE = STRENGTH_RANGE
LANCZOS = "Lanczos"
"""The hires upscaler that is a plain resize (PIL's Lanczos), as in A1111's list."""
HIRES_DEFAULTS = {"hires_scale": None, "hires_upscaler": LANCZOS, "hires_strength": 0.5, "hires_steps": 0}
"""text_to_image's defaults: off; A1111's own are 2, "Latent", 0.7, 0 (strength 0.5 suits a pixel upscaler)."""

# --- ControlNet (text to image, image to image) ------------------------------------------------
PREPROCESSORS = ("canny", "scribble", "none")
"""How a control image is made from a picture (core.imaging.control): Canny edges, a sketch as white strokes
on black, or the picture as it is."""
MAX_CONTROLNETS = 3
"""ControlNet units in one request (A1111's default number of units)."""
CONTROLNET_WEIGHT_RANGE = (0.0, 2.0)
"""A unit's weight (diffusers' controlnet_conditioning_scale; A1111's "Control Weight" slider)."""
CONTROL_GUIDANCE_RANGE = (0.0, 1.0)
"""A unit's start and end, as fractions of the denoising steps (control_guidance_start/end); start < end."""
CANNY_THRESHOLD_RANGE = (1, 255)
CANNY_THRESHOLDS = (100, 200)
"""Canny's default low and high thresholds (A1111's)."""

# --- faces -------------------------------------------------------------------------------------
DEFAULT_FACE_MODEL = "mobilestylegan-ffhq-1024"
DCGAN_FACE_MODEL = "dcgan-digiface-64"
MAX_FACES = 64
MAX_FRAMES = 120
MAX_KEYFRAMES = 16
"""Seeds an interpolation passes through."""
FACE_SIZES = (1024, 512, 256, 128, 64)
"""Output sides a face can be resized to (Lanczos)."""
FPS_RANGE = (1.0, 60.0)

# --- super-resolution --------------------------------------------------------------------------
DEFAULT_UPSCALER = "realesr-animevideov3-x4"
BUNDLED_UPSCALERS = {  # name -> description; the file is weights/upscalers/<name>.safetensors
    "realesr-animevideov3-x4": "Compact (SRVGG, 16 convs, 0.6 M params), x4: fast, anime/video, fine on photos",
    "realesr-animevideov3-x2": "the x4 Compact net, then bicubic to x2 (as the ncnn release does)",
    "realesr-animevideov3-x3": "the x4 Compact net, then bicubic to x3 (as the ncnn release does)",
    "RealESRGAN_x4plus": "RRDBNet (ESRGAN, 23 blocks, 16.7 M params), x4: best on photos, ~10x slower",
    "RealESRGAN_x4plus_anime_6B": "RRDBNet (ESRGAN, 6 blocks, 4.5 M params), x4: anime illustrations",
}
MAX_SCALE = 8
TILE_RANGE = (64, 2048)
"""Tile side in input px; 0 in the UI means automatic."""
INPUT_SIDES = (8, 4096)
"""Each side of an input picture, in px."""


def hires_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The Hires. fix second pass's (width, height) in px: `size` (px) times `scale` (HIRES_SCALE_RANGE), each
    side rounded to a multiple of SIDE_STEP."""
    return tuple(SIDE_STEP * round(side * scale / SIDE_STEP) for side in size)

@dataclass(frozen=True)
class DiffusionSettings:
    """What suits one diffusion model, for the controls to follow when it is chosen.

    Attributes:
        family: "emoji", "sd1", "sd2", "sdxl" or "other".
        steps, guidance_scale, scheduler: the model's own defaults.
        width, height: its native size in px.
        sides: (min, max) px a side that the model takes.
        samplers: the sampler names it can run (a subset of SAMPLERS).
        upscale: whether an x4 upscale is on by default (the 32-px emoji model only).
    """

    family: str
    steps: int
    guidance_scale: float
    scheduler: str
    width: int
    height: int
    sides: tuple[int, int]
    samplers: tuple[str, ...]
    upscale: bool


def diffusion_models() -> list[str]:
    """The text-to-image model list: registered models (the embedded default first), the models
    folder's checkpoints and diffusers folders, then well-known Hub ids."""
    from core.models import diffusion
    from core.models.files import scan

    return [*diffusion.names(), *scan("checkpoint"), *HUB_MODELS]


def diffusion_settings(model: str | None) -> DiffusionSettings:
    """The defaults, sizes and samplers of `model` (None: the default), without loading it when it is
    not loaded yet (a single file's header or a folder's JSON tells its family).

    Raises:
        InvalidInput: `model` is not text.
        ModelNotFound: `model` is neither registered, a file or folder in the models folder, nor a Hub id.
    """
    from core.models import diffusion

    return diffusion.settings(model)


def model_note(model: str | None) -> str | None:
    """What to tell the user about where diffusion `model` comes from, found without any network access:
    None when it is here (the default, a registered name, a file or folder in the models folder, a
    loaded model, a Hub id in the Hugging Face cache), else for a Hub id a note that it will be
    downloaded on first use, e.g. "org/name is not in the Hugging Face cache yet: it will be
    downloaded on first use".

    Raises:
        InvalidInput: `model` is not text.
        ModelNotFound: `model` matches nothing, is no valid Hub id, or is a Hub id not in the cache while
            downloads are off (HF_HUB_OFFLINE=1); the message says how to fetch it (`hf download <id>`).
    """
    from core.models import diffusion

    return diffusion.model_note(model)


def loras() -> list[str]:
    """LoRA files in the models folder (relative paths, `.safetensors` only)."""
    from core.models.files import scan

    return scan("lora")


def controlnets() -> list[str]:
    """ControlNets in the models folder (relative paths): single files (`.safetensors`, or `.pth`/`.ckpt`
    read with torch.load(weights_only=True)) and diffusers ControlNet folders."""
    from core.models.files import scan

    return scan("controlnet")


def upscalers() -> list[tuple[str, str]]:
    """(label, model) pairs for the upscaler list: the bundled upscalers, then the models folder's
    upscaler files, each labelled with the scale and architecture spandrel reads from it, e.g.
    ("RealESRGAN_x4plus (x4 ESRGAN)", "RealESRGAN_x4plus"). Unreadable files are left out. Reads
    each new or changed file once (spandrel)."""
    from core.models import upscalers

    return upscalers.choices()


def upscaler_descriptions() -> dict[str, str]:
    """Bundled upscaler name -> one line on what it is and where it is good."""
    return dict(BUNDLED_UPSCALERS)


def face_models() -> list[tuple[str, str]]:
    """(label, model) pairs for the face model list: the embedded models (the default first), then the
    models folder's StyleGAN2/StyleGAN3 files, e.g. ("ffhq.safetensors (StyleGAN2 1024 px)", "ffhq.safetensors")."""
    from core.models import gans

    return gans.choices()


def face_restorers() -> list[tuple[str, str]]:
    """(label, file) pairs of the models folder's face-restoration files, e.g.
    ("GFPGANv1.4.safetensors (x1 GFPGAN)", "GFPGANv1.4.safetensors")."""
    from core.models import face_restorers

    return face_restorers.choices()
