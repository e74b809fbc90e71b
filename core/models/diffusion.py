"""The diffusion model record, and the one place a `model=` choice becomes a loaded model.

`get(model)` takes what the user chose (None for the embedded emoji model, a registered name, a
checkpoint file or diffusers folder in the models folder, or a Hub repo id) and returns a cached
`DiffusionModel`: its text-to-image pipeline, the image-to-image pipeline made from it with
`from_pipe` (the two share every module, so switching tabs loads nothing again), and what the
tabs need to know about it. Stable Diffusion sources are loaded by core.models.stable_diffusion;
the emoji model (pixel-space, 32x32, trained here: weights/emoji-diffusion) here.
Importing this module loads no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from core import catalog
from core.checks import check_name, shown
from core.errors import InvalidInput, ModelNotFound, UnsafeModelFile, brief
from core.models import registry
from core.models.files import resolve_file, safetensors_header
from core.models.registry import FileVersion, ModelKind, ModelSpec
from core.paths import WEIGHTS_DIR

KIND = ModelKind.DIFFUSION
DEFAULT_MODEL = catalog.DEFAULT_DIFFUSION_MODEL


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
        adapters: LoRA file version -> adapter name, for the LoRAs loaded into this model.
    """

    name: str
    text_to_image: Any
    image_to_image: Any
    family: str
    native: int
    sizes: tuple[int, int]
    defaults: dict[str, Any]
    scheduler_config: Any
    adapters: dict[FileVersion, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The name for messages: `name`, or only its last part when it is an absolute path (no server
        path reaches the page)."""
        return Path(self.name).name if Path(self.name).is_absolute() else self.name

    @property
    def has_vae(self) -> bool:
        """Latent-space model (decoded by a VAE) rather than pixel-space (our emoji model)."""
        return getattr(self.text_to_image, "vae", None) is not None

    @property
    def settings(self) -> catalog.DiffusionSettings:
        """What suits this model, for the UI (see core.catalog.diffusion_settings)."""
        return _settings(self.family, self.defaults, self.native, self.sizes)


def load_emoji_folder(folder: Path, name: str = DEFAULT_MODEL) -> DiffusionModel:
    """Load an emoji-model pipeline folder (diffusers layout, as `core.training.train` writes it).

    Returns a DiffusionModel whose two pipelines share every module; native size = the training size,
    accepted sides from half to twice it.

    Raises:
        ModelNotFound: the folder holds no UNet weights.
        UnsafeModelFile: a weights or config file in the folder is corrupt, truncated or of another model
            (the message names the file, not the folder's place on the server).
    """
    from safetensors import SafetensorError

    from core.build.emoji_text_encoder import prepare_text_encoder
    from core.models.devices import default_device, default_dtype
    from core.models.emoji_pipeline import EmojiImg2ImgPipeline, EmojiPipeline

    unet = folder / "unet" / "diffusion_pytorch_model.safetensors"
    if not unet.is_file():
        raise ModelNotFound(f"the emoji model is missing from {folder.name}; run `bash scripts/setup.sh` "
                            "or train it with `python -m core.training.train` (see weights/README.md)")
    prepare_text_encoder(folder)
    for weights in (unet, folder / "text_encoder" / "model.safetensors"):
        try:
            safetensors_header(weights)  # a truncated or garbage file is named here
        except UnsafeModelFile as err:
            raise UnsafeModelFile(f"the model folder {folder.name}: {weights.parent.name}/{err}") from None
    device = default_device()
    try:
        t2i = EmojiPipeline.from_pretrained(folder, dtype=default_dtype(device), disable_mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as err:
        raise UnsafeModelFile(f"the emoji model folder {folder.name} could not be loaded: {brief(err)}") from None
    if device.type != "cpu":
        t2i = t2i.to(device)
    native = t2i.unet.config.sample_size
    image_to_image = EmojiImg2ImgPipeline.from_pipe(t2i, dtype=t2i.unet.dtype)  # from_pipe casts what it shares
    return DiffusionModel(name=name, text_to_image=t2i, image_to_image=image_to_image,
                          family="emoji", native=native, sizes=(native // 2, native * 2),
                          defaults=dict(catalog.EMOJI_SETTINGS), scheduler_config=t2i.scheduler.config)


registry.register(ModelSpec(
    kind=KIND, name=DEFAULT_MODEL, loader=partial(load_emoji_folder, WEIGHTS_DIR / "emoji-diffusion"),
    description="emoji diffusion, 32x32 pixel-space UNet trained here on Noto Emoji (Apache-2.0)"))


def names() -> list[str]:
    """The registered diffusion models, the embedded default first."""
    return registry.names(KIND)


def get(model: str | None) -> DiffusionModel:
    """The loaded (cached) model for `model`: None or "" for the default, a registered name, a
    checkpoint file or diffusers folder (relative to the models folder), or a Hub repo id.

    A path is tried first, so `org/name` can also be a local folder. A file or folder is cached per
    version (FileVersion): replaced in place, it loads again.

    Raises:
        InvalidInput: `model` is not text, or no name (see `_name`).
        ModelNotFound, UnsafeModelFile: see core.models.stable_diffusion.load.
    """
    name = _name(model)
    if name in names():
        return registry.load(KIND, name)
    path = _locate(name)
    if path is None:
        return registry.load_source(KIND, name, partial(_load_sd, name))
    loader = partial(load_emoji_folder, path, name) if _is_emoji_folder(path) else partial(_load_sd, name)
    return registry.load_source(KIND, FileVersion.of(path), loader)


def _locate(name: str) -> Path | None:
    """The file or folder `name` names in the allowed folders, or None for a Hub repo id.

    Raises:
        ModelNotFound: a file name that cannot be used (missing, outside the allowed folders: the
            reason is kept), or a name that is neither registered, a file, nor a Hub id.
    """
    try:
        return resolve_file(name)
    except ModelNotFound:
        if _is_hub_id(name):
            return None
        if Path(name).suffix:
            raise
        raise ModelNotFound(f"unknown model {shown(name)}; choose one of {', '.join(names())}, a checkpoint in "
                            "the models folder, or a Hugging Face repo id like stabilityai/sd-turbo") from None


def settings(model: str | None) -> catalog.DiffusionSettings:
    """What suits `model` (see core.catalog.diffusion_settings): a loaded model answers from itself;
    otherwise the family is read without loading (Hub id table, a folder's JSON, a file's header).

    Raises:
        InvalidInput, ModelNotFound: as `get`, for a name that matches nothing.
    """
    name = _name(model)
    if name in names():
        loaded = registry.peek(KIND, name)
    else:
        path = _locate(name)
        loaded = None if path is None else registry.peek(KIND, FileVersion.of(path))
    if loaded is not None:
        return loaded.settings
    if name == DEFAULT_MODEL:
        return _settings("emoji", catalog.EMOJI_SETTINGS, 32, (16, 64))
    from core.models import stable_diffusion

    family = stable_diffusion.guess_family(name)
    side = catalog.NATIVE_SIDE["turbo" if "turbo" in name.lower() else family]
    return _settings(family, stable_diffusion.defaults_for(name, family), side, catalog.SD_SIDES)


def model_note(model: str | None) -> str | None:
    """What to tell the user about where `model` will come from, found without any network access
    (core.catalog.model_note; the UI says it when the page loads and when the model changes).

    Returns:
        None for the default, a registered name, a file or folder in the allowed folders, a loaded
        model or a Hub id in the Hugging Face cache; for a Hub id not in the cache while downloads
        are on, a note that it will be downloaded on first use.

    Raises:
        InvalidInput: `model` is no name (see `_name`).
        ModelNotFound: a name that matches nothing (as `get`), a Hub id that huggingface_hub refuses
            (e.g. "org/a--b"), or a Hub id not in the cache while downloads are off
            (huggingface_hub.constants.HF_HUB_OFFLINE, set by HF_HUB_OFFLINE=1): the message says how
            to fetch it, as the loader's does.
    """
    name = _name(model)
    if name in names() or _locate(name) is not None:
        return None  # registered, or a file or folder here
    if registry.peek(KIND, name) is not None or in_hub_cache(name):
        return None  # loaded, or cached
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ModelNotFound(not_cached(name))
    return f"{name} is not in the Hugging Face cache yet: it will be downloaded on first use"


def in_hub_cache(repo_id: str) -> bool:
    """Whether the Hugging Face cache (huggingface_hub.constants.HF_HUB_CACHE) holds the repo's
    model_index.json, so that loading it needs no network; reads only the cache folder.

    Raises:
        ModelNotFound: `repo_id` breaks huggingface_hub's rules for repo ids (the message says which).
    """
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        return isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str)
    except HFValidationError as err:
        raise ModelNotFound(f"{shown(repo_id)} is not a valid Hugging Face repo id: {brief(err)}") from None


def not_cached(repo_id: str) -> str:
    """The message for a Hub id that is not in the Hugging Face cache while downloads are off."""
    return (f"{repo_id} is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE=1 or no "
            f"network). Fetch it once where the Hub is reachable: `hf download {repo_id}`, then copy the "
            "cache here or unset HF_HUB_OFFLINE")


def _settings(family: str, defaults: dict[str, Any], native: int, sides: tuple[int, int]) -> catalog.DiffusionSettings:
    samplers = tuple(s for s in catalog.SAMPLERS if family != "emoji" or s not in catalog.KARRAS_SAMPLERS)
    return catalog.DiffusionSettings(family=family, steps=defaults["steps"], guidance_scale=defaults["guidance_scale"],
                                     scheduler=defaults["scheduler"], width=native, height=native, sides=tuple(sides),
                                     samplers=samplers, upscale=family == "emoji")


def _name(model: object) -> str:
    """The model's name, DEFAULT_MODEL for None or "". Raises InvalidInput for what is no name: not text,
    over 1024 characters, or holding control characters or invalid Unicode (core.checks.check_name)."""
    if model is not None and not isinstance(model, str):
        raise InvalidInput(f"model must be a model name, file or Hub id, got {type(model).__name__}")
    return check_name("model", model) or DEFAULT_MODEL


def _is_hub_id(text: str) -> bool:
    from core.models.stable_diffusion import is_hub_id

    return is_hub_id(text)


def _is_emoji_folder(path: Path) -> bool:
    """A pipeline folder written by core.training.train (model_index.json names EmojiPipeline)."""
    index = path / "model_index.json"
    try:
        return index.is_file() and json.loads(index.read_text(encoding="utf-8")).get("_class_name") == "EmojiPipeline"
    except (OSError, ValueError):
        return False


def _load_sd(source: str) -> DiffusionModel:
    from core.models import stable_diffusion

    return stable_diffusion.load(source)


def token_warnings(model: DiffusionModel, **texts: str) -> list[str]:
    """Warnings for prompts longer than the text encoder reads (77 CLIP tokens incl. start/end; a
    pipeline's own `max_tokens` when it has one, e.g. 16 for the emoji model).

    The pipelines cut such prompts; we say so, naming the words left out, instead of cutting silently.
    Stable Diffusion pipelines (core.models.prompts.reads_chunks) cut nothing: they read 75-token chunks.
    """
    from core.models.prompts import reads_chunks

    if reads_chunks(model.family, model.text_to_image):
        return []
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
