"""Diffusion models from where people keep them: Hub repo ids, diffusers folders, single-file checkpoints.

Every source ends as a `DiffusionModel`: a text-to-image pipeline, the image-to-image pipeline
made from it with `from_pipe` (the two share every module), and what the tabs need to know about
it (family, native size, defaults). Pipelines are diffusers' own, chosen from the model's type by
`AutoPipelineForText2Image` (Hub ids and folders) or from the checkpoint's keys (single files).

Single files (`.safetensors`, or `.ckpt`/`.pt`/`.pth` read with `torch.load(weights_only=True)`)
load offline: the family (SD 1.x, SD 2.x, SDXL) is read from the keys by diffusers'
`infer_diffusers_model_type`, and the matching config folder in `weights/sd-configs/`
(core.build.sd_configs) is given to `from_single_file`, so nothing is asked of the Hub.

Placement: CUDA in fp16 (model CPU offload when the weights would not fit in free GPU memory), MPS
in fp16, the CPU in fp32 with channels-last UNet and VAE. VAE slicing is always on (one image
decoded at a time); VAE tiling is switched on per call for images over 1024x1024 px.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from core.catalog import FAMILY_DEFAULTS, HUB_MODELS, NATIVE_SIDE
from core.errors import ModelNotFound, UnsafeModelFile, brief
from core.models.devices import default_device, default_dtype
from core.models.diffusion import DiffusionModel, in_hub_cache, not_cached
from core.models.files import (
    PICKLE_SUFFIXES,
    SAFE_SUFFIX,
    load_pickle_weights,
    resolve_file,
    safetensors_header,
)
from core.paths import REPO_DIR

FAMILY_OF_TYPE = {"v1": "sd1", "v2": "sd2", "xl_base": "sdxl"}
INPAINTING_TYPES = {"inpainting": "sd1", "inpainting_v2": "sd2", "xl_inpaint": "sdxl"}
"""diffusers' types of inpainting checkpoints (a UNet of 9 input channels: latents, mask, masked picture),
loaded on their family's config with `in_channels` 9 (see _inpainting_config)."""
"""diffusers' single-file model types -> our config folders (core.build.sd_configs)."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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

    offline = constants.HF_HUB_OFFLINE or (not in_hub_cache(repo_id) and not _hub_reachable())
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
            raise ModelNotFound(not_cached(repo_id)) from None
        raise ModelNotFound(f"{repo_id} could not be fetched from the Hugging Face Hub: {brief(err)}") from None
    except ValueError as err:
        raise ModelNotFound(f"{repo_id} is not a text-to-image pipeline that diffusers knows ({brief(err)})") from None


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
    return file_kind(path)[0]


def file_kind(path: Path) -> tuple[str, bool]:
    """(family, whether it is an inpainting checkpoint) of a single-file checkpoint, read as file_family."""
    suffix = path.suffix.lower()
    if suffix == SAFE_SUFFIX:
        checkpoint = {k: torch.empty(v["shape"], device="meta") for k, v in safetensors_header(path).items()}
    elif suffix in PICKLE_SUFFIXES:
        checkpoint = load_pickle_weights(path)
        while isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
            checkpoint = checkpoint["state_dict"]
    else:
        raise UnsafeModelFile(f"{path.name}: checkpoints must be {SAFE_SUFFIX} or {', '.join(PICKLE_SUFFIXES)}")
    return checkpoint_kind(checkpoint, path.name)


def checkpoint_family(checkpoint: dict[str, Any], name: str = "checkpoint") -> str:
    """"sd1", "sd2" or "sdxl" for an original-layout checkpoint (see checkpoint_kind)."""
    return checkpoint_kind(checkpoint, name)[0]


def checkpoint_kind(checkpoint: dict[str, Any], name: str = "checkpoint") -> tuple[str, bool]:
    """(family "sd1" | "sd2" | "sdxl", inpainting) for an original-layout checkpoint, from diffusers'
    `infer_diffusers_model_type`; inpainting checkpoints (INPAINTING_TYPES) count as their family.

    Raises:
        UnsafeModelFile: not a Stable Diffusion UNet checkpoint (or its UNet's shapes are damaged), a kind
            we keep no config for (refiner, upscaler, ControlNet, SD3, ...), or a partial checkpoint: no
            text encoder or VAE (see `_check_complete`).
    """
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    if not any(k.startswith("model.diffusion_model.") for k in checkpoint):
        raise UnsafeModelFile(f"{name} holds no Stable Diffusion UNet (no model.diffusion_model.* weights); "
                              "LoRAs go in the LoRA list, upscalers in the super-resolution tab")
    try:
        kind = infer_diffusers_model_type(checkpoint)
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:  # odd shapes
        raise UnsafeModelFile(f"{name} holds UNet weights of shapes no Stable Diffusion checkpoint has "
                              f"({brief(err)}); it is damaged or of another model") from None
    family = FAMILY_OF_TYPE.get(kind) or INPAINTING_TYPES.get(kind)
    if family is None:
        raise UnsafeModelFile(f"{name} is a {kind!r} checkpoint; single files of SD 1.x, SD 2.x and SDXL base "
                              "(and their inpainting models) are supported (use a diffusers folder or Hub id for others)")
    _check_complete(checkpoint, family, name)
    return family, kind in INPAINTING_TYPES


_VAE = ("VAE", ("first_stage_model.", "vae."))
PARTS = {  # family -> (part, the key prefixes that hold it) besides the UNet, as diffusers reads single files
    "sd1": (("text encoder", ("cond_stage_model.",)), _VAE),
    "sd2": (("text encoder", ("cond_stage_model.",)), _VAE),
    "sdxl": (("first text encoder", ("conditioner.embedders.0.",)),
             ("second text encoder", ("conditioner.embedders.1.",)), _VAE),
}
FAMILY_LABELS = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}


def _check_complete(checkpoint: dict[str, Any], family: str, name: str) -> None:
    """Refuse, with UnsafeModelFile naming the file and the missing parts, a single file without its text
    encoder or VAE (e.g. a UNet-only file from ComfyUI's diffusion_models/), for which diffusers raises a
    SingleFileComponentError that suggests code to write."""
    parts = PARTS[family]
    missing = [f"{part} ({keys[0]}*)" for part, keys in parts if not any(k.startswith(keys) for k in checkpoint)]
    if missing:
        *others, last = [part for part, _ in parts]
        full = f"a full {FAMILY_LABELS[family]} checkpoint with the UNet, {', '.join(others)} and {last} is needed"
        only = len(missing) == len(parts)
        have = "only the UNet (model.diffusion_model.*)" if only else "no " + ", no ".join(missing)
        fix = ("use the full checkpoint (most trainers export one beside the UNet-only file), or a diffusers "
               "folder or Hub id of the model")
        raise UnsafeModelFile(f"{name} has {have}: {full}; {fix}")


def _from_single_file(path: Path):
    """A single-file checkpoint in the original layout, with our local config folder for its family."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    from core.build import sd_configs

    family, inpainting = file_kind(path)  # diffusers reads the weights once, below
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    config = sd_configs.config_folder(family, sd_configs.CONFIGS_DIR)
    if inpainting:
        config = _inpainting_config(config)
    try:
        pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, dtype=_dtype(),
                                    disable_mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError, IndexError, TypeError, SingleFileComponentError) as err:
        raise UnsafeModelFile(f"{path.name} does not fit the {family} architecture: {brief(err)}") from None
    prediction = _sidecar_prediction_type(path)
    if prediction:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction)
    return pipe, family


def _inpainting_config(config: Path) -> Path:
    """A copy of the family's config folder `config` whose UNet takes 9 input channels (an inpainting
    checkpoint's: 4 latent, 1 mask, 4 masked-picture latent), kept in the repository's .cache/ (else a
    temporary folder, for a read-only checkout) and made again only when missing."""
    import hashlib
    import shutil
    import tempfile

    source = hashlib.sha256(str(config.resolve()).encode() + (config / "unet" / "config.json").read_bytes())
    for root in (REPO_DIR / ".cache" / "sd-configs-inpainting", Path(tempfile.gettempdir()) / "imagegen-sd-configs"):
        folder = root / f"{config.name}-{source.hexdigest()[:12]}"  # one per source folder and its UNet config
        unet = folder / "unet" / "config.json"
        try:
            if not unet.is_file() or json.loads(unet.read_text(encoding="utf-8")).get("in_channels") != 9:
                shutil.copytree(config, folder, dirs_exist_ok=True)
                settings = json.loads(unet.read_text(encoding="utf-8"))
                unet.write_text(json.dumps({**settings, "in_channels": 9}, indent=2), encoding="utf-8")
            return folder
        except OSError:
            continue
    raise ModelNotFound("no writable folder for the inpainting config (.cache/ or the temporary folder)")


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

    Register it to serve it by name: `registry.register(ModelSpec(ModelKind.DIFFUSION, name, lambda: wrap(name, pipe)))`.
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
    from core.models import registry, zerogpu

    device = default_device()
    if device.type == "cuda" and not zerogpu.available():
        free, _ = torch.cuda.mem_get_info()
        if registry.weight_bytes(pipe) > 0.8 * free:
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
    elif device.type != "cpu":
        pipe.to(device)
    else:
        for module in (pipe.unet, pipe.vae):
            module.to(memory_format=torch.channels_last)
    pipe.vae.enable_slicing()


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
