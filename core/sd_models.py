"""Diffusion models from where people keep them: Hub repo ids, diffusers folders, single-file checkpoints.

Every source ends as a `DiffusionModel`: a text-to-image pipeline, the image-to-image pipeline
made from it with `from_pipe` (the two share every module), and what the tabs need to know about
it (family, native size, defaults). Pipelines are diffusers' own, chosen from the model's type by
`AutoPipelineForText2Image` (Hub ids and folders) or from the checkpoint's keys (single files).

Single files (`.safetensors`, or `.ckpt`/`.pt`/`.pth` read with `torch.load(weights_only=True)`)
load offline: the family (SD 1.x, SD 2.x, SDXL) is read from the keys by diffusers'
`infer_diffusers_model_type`, and the matching config folder in `weights/sd-configs/`
(core.sd_configs) is given to `from_single_file`, so nothing is asked of the Hub.

Placement: CUDA in fp16 (model CPU offload when the weights would not fit in free GPU memory), MPS
in fp16, the CPU in fp32 with channels-last UNet and VAE. VAE slicing is always on (one image
decoded at a time); VAE tiling is switched on per call for images over 1024x1024 px.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.devices import default_device, default_dtype
from core.errors import CoreError, ModelNotFound, UnsafeModelFile, brief
from core.model_files import PICKLE_SUFFIXES, SAFE_SUFFIX, load_pickle_weights, resolve_file, safetensors_header

HUB_MODELS = {
    "stabilityai/sd-turbo": "sd2",  # SD 2.1 distilled: 512 px, 1-4 steps, no CFG
    "stabilityai/sdxl-turbo": "sdxl",  # 512 px, 1-4 steps, no CFG
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd1",
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl",
}
"""Hub repo ids offered in the model list, with their family (any other id works too)."""

NATIVE_SIDE = {"sd1": 512, "sd2": 768, "sdxl": 1024, "turbo": 512}
"""Training resolution in px per family (model cards); both Turbo models were distilled at 512."""

FAMILY_OF_TYPE = {"v1": "sd1", "v2": "sd2", "xl_base": "sdxl"}
"""diffusers' single-file model types -> our config folders (core.sd_configs)."""

FAMILY_DEFAULTS = {
    "sd1": {"steps": 25, "guidance_scale": 7.0, "scheduler": "DPM++ 2M Karras"},
    "sd2": {"steps": 25, "guidance_scale": 7.0, "scheduler": "DPM++ 2M Karras"},
    "sdxl": {"steps": 25, "guidance_scale": 5.0, "scheduler": "DPM++ 2M Karras"},
    "turbo": {"steps": 1, "guidance_scale": 0.0, "scheduler": "Euler a"},  # model cards of SD-/SDXL-Turbo
    "lcm": {"steps": 4, "guidance_scale": 1.0, "scheduler": "LCM"},
}
TILE_VAE_ABOVE = 1024 * 1024
"""Images with more pixels than this are decoded with VAE tiling."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelError(CoreError, RuntimeError):
    """The model ran but produced no usable image (e.g. NaN values even in float32)."""


@dataclass
class DiffusionModel:
    """A loaded diffusion model, shared by the text-to-image and image-to-image tabs.

    Attributes:
        name: what the user chose (registry name, path or repo id).
        text_to_image, image_to_image: diffusers pipelines sharing every module.
        family: "emoji", "sd1", "sd2", "sdxl" or "other".
        native: the side in px the model was trained at (the default width and height).
        sizes: (min, max) side in px accepted.
        defaults: "steps", "guidance_scale", "scheduler" that suit the model.
        scheduler_config: the model's own scheduler config, the base of every sampler choice.
        adapters: LoRA file path -> adapter name, for the LoRAs loaded into this model.
    """

    name: str
    text_to_image: Any
    image_to_image: Any
    family: str
    native: int
    sizes: tuple[int, int]
    defaults: dict[str, Any]
    scheduler_config: Any
    adapters: dict[str, str] = field(default_factory=dict)

    @property
    def has_vae(self) -> bool:
        """Latent-space model (decoded by a VAE) rather than pixel-space (our emoji model)."""
        return getattr(self.text_to_image, "vae", None) is not None


def is_hub_id(text: str) -> bool:
    """`org/name` with no file suffix: the shape of a Hugging Face repo id."""
    return bool(_HUB_ID.match(text)) and Path(text).suffix.lower() not in (SAFE_SUFFIX, *PICKLE_SUFFIXES)


def load(source: str) -> DiffusionModel:
    """Load `source`: a path (single file or diffusers folder, in the models folder or weights/), or a Hub id.

    A path is tried first (relative to the models folder), so `org/name` can also be a local folder.

    Raises:
        ModelNotFound: nothing at that path, or a Hub id that is neither cached nor downloadable.
        UnsafeModelFile: a file that is corrupt, truncated, of an unknown kind, or needs unpickling of code.
    """
    try:
        path = resolve_file(source)
    except ModelNotFound:
        if is_hub_id(source):
            return wrap(source, _from_hub(source))
        raise
    if path.is_dir():
        return wrap(source, _from_folder(path))
    return wrap(source, *_from_single_file(path))


def _from_folder(folder: Path):
    """A diffusers pipeline folder (model_index.json + components), loaded offline."""
    from diffusers import AutoPipelineForText2Image

    if not (folder / "model_index.json").is_file():
        raise ModelNotFound(f"{folder.name} is a folder without model_index.json, not a diffusers pipeline")
    try:
        return AutoPipelineForText2Image.from_pretrained(folder, dtype=_dtype(), local_files_only=True,
                                                         disable_mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise UnsafeModelFile(f"the diffusers folder {folder.name} could not be loaded: {brief(err)}") from None


def _from_hub(repo_id: str):
    """A Hub repo id, from the Hugging Face cache (downloaded first when online)."""
    from diffusers import AutoPipelineForText2Image
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    offline = constants.HF_HUB_OFFLINE or (not _in_hub_cache(repo_id) and not _hub_reachable())
    kwargs = {"dtype": _dtype(), "local_files_only": offline, "disable_mmap": True}
    try:
        if _dtype() == torch.float16:
            try:
                return AutoPipelineForText2Image.from_pretrained(repo_id, variant="fp16", **kwargs)
            except (OSError, ValueError):
                pass  # no fp16 variant: take the full-precision files
        return AutoPipelineForText2Image.from_pretrained(repo_id, **kwargs)
    except RepositoryNotFoundError:
        raise ModelNotFound(f"there is no model {repo_id!r} on the Hugging Face Hub (or it is gated: "
                            "log in with `hf auth login`)") from None
    except (LocalEntryNotFoundError, OSError) as err:  # messages stay free of server paths
        if offline or isinstance(err, LocalEntryNotFoundError) or "offline" in str(err).lower():
            raise ModelNotFound(
                f"{repo_id} is not in the Hugging Face cache and downloads are off "
                f"(HF_HUB_OFFLINE=1 or no network). Fetch it once where the Hub is reachable: "
                f"`hf download {repo_id}`, then copy the cache here or unset HF_HUB_OFFLINE") from None
        raise ModelNotFound(f"{repo_id} could not be fetched from the Hugging Face Hub: {brief(err)}") from None
    except ValueError as err:
        raise ModelNotFound(f"{repo_id} is not a text-to-image pipeline that diffusers knows ({brief(err)})") from None


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the HF cache holds the repo's model_index.json (then no network is needed)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str)


def _hub_reachable(timeout_s: float = 5.0) -> bool:
    """One quick request to the Hub, so that a machine without network says so in seconds instead
    of after minutes of retries."""
    import httpx
    from huggingface_hub import constants

    try:
        httpx.head(constants.ENDPOINT, timeout=timeout_s)
        return True
    except httpx.HTTPError:
        return False


def file_family(path: Path) -> str:
    """"sd1", "sd2" or "sdxl" for a single-file checkpoint, without holding its weights in memory.

    A `.safetensors` file is judged from its header alone (names and shapes, as meta tensors; the
    header check also catches truncated files); a pickle-based file is read with
    `torch.load(weights_only=True)` (memory-mapped), which is also its safety check.

    Raises:
        UnsafeModelFile: an unreadable, truncated or unsafe file, another suffix, or not SD 1.x/2.x/SDXL.
    """
    suffix = path.suffix.lower()
    if suffix == SAFE_SUFFIX:
        checkpoint = {k: torch.empty(v["shape"], device="meta") for k, v in safetensors_header(path).items()}
    elif suffix in PICKLE_SUFFIXES:
        checkpoint = load_pickle_weights(path)
        while isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
            checkpoint = checkpoint["state_dict"]
    else:
        raise UnsafeModelFile(f"{path.name}: checkpoints must be {SAFE_SUFFIX} or {', '.join(PICKLE_SUFFIXES)}")
    return checkpoint_family(checkpoint, path.name)


def checkpoint_family(checkpoint: dict[str, Any], name: str = "checkpoint") -> str:
    """"sd1", "sd2" or "sdxl" for an original-layout checkpoint, from diffusers' `infer_diffusers_model_type`.

    Raises:
        UnsafeModelFile: not a Stable Diffusion UNet checkpoint, or a kind we keep no config for
            (inpainting, refiner, upscaler, ControlNet, SD3, ...).
    """
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    if not any(k.startswith("model.diffusion_model.") for k in checkpoint):
        raise UnsafeModelFile(f"{name} holds no Stable Diffusion UNet (no model.diffusion_model.* weights); "
                              "LoRAs go in the LoRA list, upscalers in the super-resolution tab")
    kind = infer_diffusers_model_type(checkpoint)
    if kind not in FAMILY_OF_TYPE:
        raise UnsafeModelFile(f"{name} is a {kind!r} checkpoint; single files of SD 1.x, SD 2.x and SDXL base "
                              "are supported (use a diffusers folder or Hub id for others)")
    return FAMILY_OF_TYPE[kind]


def _from_single_file(path: Path):
    """A single-file checkpoint in the original layout, with our local config folder for its family."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from core import sd_configs

    family = file_family(path)  # diffusers reads the weights once, below
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    config = sd_configs.config_folder(family, sd_configs.CONFIGS_DIR)
    try:
        pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, dtype=_dtype(),
                                    disable_mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise UnsafeModelFile(f"{path.name} does not fit the {family} architecture: {brief(err)}") from None
    prediction = _sidecar_prediction_type(path)
    if prediction:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction)
    return pipe, family


def _sidecar_prediction_type(path: Path) -> str | None:
    """The prediction type from an A1111-style sidecar config (`model.yaml` next to `model.safetensors`).

    SD 2.x checkpoints come as v-prediction (768 px, the 2.0/2.1 default of our sd2 config) or
    epsilon (the 512 px "base" models); the sidecar's `parameterization: "v"` line tells them apart.
    No sidecar: None (keep the config's).
    """
    sidecar = path.with_suffix(".yaml")
    if not sidecar.is_file():
        return None
    text = sidecar.read_text(encoding="utf-8", errors="ignore")
    return "v_prediction" if re.search(r"parameterization:\s*[\"']?v[\"']?\s*$", text, re.M) else "epsilon"


def _dtype() -> torch.dtype:
    return default_dtype(default_device())


def _family_of(pipe, name: str, family: str | None) -> str:
    """The family of a loaded pipeline: from single-file detection, else from its text encoders."""
    if family:
        return family
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl"
    encoder = getattr(pipe, "text_encoder", None)
    width = getattr(getattr(encoder, "config", None), "hidden_size", None)
    return {768: "sd1", 1024: "sd2"}.get(width, "other")


def defaults_for(name: str, family: str) -> dict[str, Any]:
    """Steps, guidance scale and sampler that suit a model: by its name (turbo, LCM), else its family."""
    lowered = name.lower()
    for marker in ("turbo", "lcm"):
        if marker in lowered:
            return dict(FAMILY_DEFAULTS[marker])
    return dict(FAMILY_DEFAULTS.get(family, FAMILY_DEFAULTS["sd1"]))


def wrap(name: str, pipe, family: str | None = None) -> DiffusionModel:
    """Make a DiffusionModel of a built diffusers text-to-image pipeline (SD 1.x/2.x/SDXL kind): place it
    on the device, make its image-to-image twin with `from_pipe`, read its family, size and defaults.

    Register it to serve it by name: `models.register(ModelSpec("text_to_image", name, lambda: wrap(name, pipe)))`.
    """
    from diffusers import AutoPipelineForImage2Image

    family = _family_of(pipe, name, family)
    place(pipe)
    if hasattr(pipe, "safety_checker") and pipe.safety_checker is None:
        pipe.register_to_config(requires_safety_checker=False)
    image_to_image = AutoPipelineForImage2Image.from_pipe(pipe)
    native = pipe.unet.config.sample_size * pipe.vae_scale_factor
    if "turbo" in name.lower():
        native = NATIVE_SIDE["turbo"]
    return DiffusionModel(name=name, text_to_image=pipe, image_to_image=image_to_image, family=family,
                          native=native, sizes=(64, 2048), defaults=defaults_for(name, family),
                          scheduler_config=pipe.scheduler.config)


def place(pipe) -> None:
    """Put a pipeline on the default device (see the module docstring); enables VAE slicing."""
    from core import models, zerogpu

    device = default_device()
    if device.type == "cuda" and not zerogpu.available():
        free, _ = torch.cuda.mem_get_info()
        if models.weight_bytes(pipe) > 0.8 * free:
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
    elif device.type != "cpu":
        pipe.to(device)
    else:
        for module in (pipe.unet, pipe.vae):
            module.to(memory_format=torch.channels_last)
    pipe.vae.enable_slicing()


def set_vae_tiling(model: DiffusionModel, width: int, height: int) -> bool:
    """Switch VAE tiling on for images over TILE_VAE_ABOVE px, off otherwise; returns whether it is on."""
    if not model.has_vae:
        return False
    vae = model.text_to_image.vae
    tiled = width * height > TILE_VAE_ABOVE
    vae.enable_tiling() if tiled else vae.disable_tiling()
    return tiled


def decode(model: DiffusionModel, latents: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Decode latents `(N, C, h, w)` to pixels `(N, 3, 8h, 8w)` in [0, 1]; returns (pixels, upcast).

    A half-precision VAE can overflow to NaN (SDXL's VAE in fp16 famously does); then the VAE is
    moved to float32 for good and the decode is redone (upcast = True), never a black image.

    Raises:
        ModelError: the decode gives NaN/inf even in float32.
    """
    vae = model.text_to_image.vae
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    if model.family == "sdxl" and vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        vae.to(torch.float32)  # SDXL's own VAE overflows in fp16 (diffusers upcasts it too); SD 1.x/2.x's do not
    upcast = False
    with torch.inference_mode():
        # The latents stay where the pipeline made them: under model CPU offload the VAE rests on
        # the CPU and its hook moves it to the latents' device for the decode.
        scaled = latents / vae.config.scaling_factor + shift
        pixels = vae.decode(scaled.to(dtype=vae.dtype), return_dict=False)[0]
        if not torch.isfinite(pixels).all() and vae.dtype != torch.float32:
            vae.to(torch.float32)
            upcast = True
            pixels = vae.decode(scaled.float(), return_dict=False)[0]
    if not torch.isfinite(pixels).all():
        raise ModelError(f"{model.name} produced NaN values even in float32; try more steps, another sampler "
                         "or a lower guidance scale")
    return (pixels.float() / 2 + 0.5).clamp(0, 1), upcast


def safety_check(model: DiffusionModel, pixels: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Run the model's own safety checker if it ships one (SD 1.x repos do); returns (pixels, flagged).

    Flagged images come back black, as diffusers makes them; their indices are returned so the UI
    can say so instead of showing an unexplained black square.
    """
    pipe = model.text_to_image
    if getattr(pipe, "safety_checker", None) is None:
        return pixels, []
    checked, flags = pipe.run_safety_checker(pixels.permute(0, 2, 3, 1).cpu().numpy(), pipe.device, pixels.dtype)
    flagged = [i for i, flag in enumerate(flags or []) if flag]
    return torch.from_numpy(checked).permute(0, 3, 1, 2), flagged


def token_warnings(model: DiffusionModel, **texts: str) -> list[str]:
    """Warnings for prompts longer than the text encoder reads (77 CLIP tokens incl. start/end; a
    pipeline's own `max_tokens` when it has one, e.g. 16 for the emoji model).

    The pipelines cut such prompts; we say so, naming the words left out, instead of cutting silently.
    """
    tokenizer = getattr(model.text_to_image, "tokenizer", None)
    limit = getattr(model.text_to_image, "max_tokens", None) or getattr(tokenizer, "model_max_length", None)
    if tokenizer is None or not limit or limit > 10_000:
        return []
    warnings = []
    for label, text in texts.items():
        ids = tokenizer(text, truncation=False, add_special_tokens=True).input_ids
        if len(ids) > limit:
            dropped = tokenizer.decode(ids[limit - 1:-1]).strip()
            words = dropped.split()
            dropped = dropped if len(words) <= 12 else " ".join(words[:12]) + f" … ({len(words) - 12} more words)"
            warnings.append(f"{label.replace('_', ' ')} is {len(ids) - 2} tokens; the text encoder reads "
                            f"{limit - 2}, so this end was left out: \"{dropped}\"")
    return warnings


def folder_family(folder: Path) -> str:
    """The family of a diffusers folder from its JSON files alone: a second text encoder is SDXL,
    a 1024-wide one SD 2.x, else SD 1.x."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
        if "text_encoder_2" in index:
            return "sdxl"
        encoder = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "sd1"
    return "sd2" if encoder.get("hidden_size") == 1024 else "sd1"


def guess_family(source: str) -> str:
    """The family of a model without loading it: known Hub ids, a folder's JSON files
    (`folder_family`) or a single file's header (`file_family`); "sd1" when it cannot tell."""
    if source in HUB_MODELS:
        return HUB_MODELS[source]
    try:
        path = resolve_file(source)
    except ModelNotFound:
        return "sd1"
    if path.is_dir():
        return folder_family(path)
    if path.suffix.lower() != SAFE_SUFFIX:
        return "sd1"
    try:
        return file_family(path)
    except UnsafeModelFile:
        return "sd1"


def suggested(source: str) -> dict[str, Any]:
    """Steps, guidance scale, sampler and side in px that suit `source`, without loading it."""
    family = guess_family(source)
    settings = defaults_for(source, family)
    turbo = "turbo" in source.lower()
    settings["width"] = settings["height"] = NATIVE_SIDE["turbo" if turbo else family]
    return settings


def source_key(source: str) -> str:
    """A cache key for a source: the resolved path plus its modification time, or the repo id."""
    try:
        path = resolve_file(source)
    except ModelNotFound:
        return source
    return f"{path}@{os.stat(path).st_mtime_ns}"
