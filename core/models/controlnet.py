"""ControlNets (Zhang, Rao & Agrawala 2023, arXiv:2302.05543) that people bring, and the pipelines that use them.

A ControlNet is a trainable copy of a Stable Diffusion UNet's encoder that reads a control image (edges, a
scribble, a depth map, ...) and adds its features to the UNet's skip connections. Files live in the models
folder (kind "controlnet", core.models.files), in three forms:
    - a diffusers folder (`config.json` naming ControlNetModel + `diffusion_pytorch_model.safetensors`),
      loaded with `ControlNetModel.from_pretrained(folder, local_files_only=True)`;
    - one `.safetensors` file in the original layout of lllyasviel/ControlNet, which A1111 and ComfyUI read
      (`control_model.input_hint_block.*`, or the same names without `control_model.`), renamed to diffusers'
      names by diffusers' `convert_controlnet_checkpoint` (core.models.controlnet_files.diffusers_names);
    - one `.safetensors` file in diffusers' layout (`controlnet_cond_embedding.*`).
`.pth`/`.ckpt` files of those layouts are read with `torch.load(weights_only=True)`. A single file carries no
config and nothing is asked of the Hub: the config is that of `ControlNetModel.from_unet(the model's UNet)`,
with the hint encoder's channels and the input channels read from the file's shapes; the weights must then
fit it exactly (`load_state_dict(strict=True)`), else UnsafeModelFile says so.

Before anything loads, each ControlNet is matched to the model from its header or config alone: the width of
its cross-attention (768 SD 1.x, 1024 SD 2.x, 2048 SDXL) and SDXL's size conditioning (`add_embedding` /
`label_emb`) must be the model's UNet's. Loaded ControlNets are cached per file version (the registry's
cache, keys `cache_key`), on the model's device and in its UNet's precision.

`prepare` turns a request's units into the pipeline to call: diffusers'
StableDiffusion(XL)ControlNet{,Img2Img,Inpaint}Pipeline made with AutoPipeline's `from_pipe` from the loaded
model (every module shared, none moved or cast), holding the request's ControlNet keyword arguments
(`WithArguments`), so the generators call it exactly as the model's own pipeline; several units become a list
of ControlNets (diffusers' MultiControlNetModel).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from core.catalog import CONTROL_GUIDANCE_RANGE, CONTROLNET_WEIGHT_RANGE, MAX_CONTROLNETS
from core.checks import check_float, check_name, shown
from core.errors import InvalidInput, UnsafeModelFile, brief
from core.imaging import control
from core.imaging.io import open_image
from core.models import controlnet_files, hashes, registry
from core.models.registry import FileVersion, ModelKind

TASKS = ("text_to_image", "image_to_image", "inpaint")
FIELDS = ("model", "image", "preprocessor", "weight", "start", "end", "low_threshold", "high_threshold")
_KNOWN = {(768, False): "SD 1.x", (1024, False): "SD 2.x", (2048, True): "SDXL"}
_LOADED: dict[Path, str] = {}
"""ControlNet path -> its cache key now, so that an older version of a replaced file leaves the cache."""


@dataclass(frozen=True)
class Unit:
    """One ControlNet unit of a request, checked (see parse_units). `image` is None for "the start picture"."""

    model: str
    image: Image.Image | None
    preprocessor: str = "none"
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    low_threshold: int = 100
    high_threshold: int = 200


def parse_units(controlnets: object) -> list[Unit]:
    """The `controlnets` argument of the generators, checked: None or a list of up to MAX_CONTROLNETS dicts
    with the keys of FIELDS ("model" required; the others default as in Unit). Pictures are opened here.

    Raises:
        InvalidInput: another type, too many units, an unknown key, an empty or bad model name, a control image
            that cannot be read, a preprocessor not in core.catalog.PREPROCESSORS, weight outside 0..2, start or
            end outside 0..1 or start not below end, Canny thresholds outside 1..255 or low above high. Each
            message names the unit and the setting, e.g. "controlnets[1].weight must be 0.0..2.0, got 3".
    """
    if controlnets is None:
        return []
    if not isinstance(controlnets, (list, tuple)) or not all(isinstance(u, Mapping) for u in controlnets):
        raise InvalidInput(f"controlnets must be a list of ControlNet units (dicts with model, image, preprocessor, "
                           f"weight, start, end), got {shown(controlnets)}")
    if len(controlnets) > MAX_CONTROLNETS:
        raise InvalidInput(f"controlnets takes at most {MAX_CONTROLNETS} units, got {len(controlnets)}")
    return [_unit(f"controlnets[{i}]", dict(unit)) for i, unit in enumerate(controlnets)]


def _unit(name: str, unit: dict) -> Unit:
    unknown = [key for key in unit if key not in FIELDS]
    if unknown:
        raise InvalidInput(f"{name} has no setting {shown(unknown[0])}; a unit takes {', '.join(FIELDS)}")
    model = check_name(f"{name}.model", unit.get("model"), max_chars=1024)
    if model is None:
        raise InvalidInput(f"{name}.model is empty: choose a ControlNet file or folder in the models folder")
    image = unit.get("image")
    image = None if image is None else open_image(image, name=f"{name}.image")
    low, high = control.check_thresholds(name, unit.get("low_threshold", 100), unit.get("high_threshold", 200))
    start = check_float(f"{name}.start", unit.get("start", 0.0), *CONTROL_GUIDANCE_RANGE)
    end = check_float(f"{name}.end", unit.get("end", 1.0), *CONTROL_GUIDANCE_RANGE)
    if start >= end:
        raise InvalidInput(f"{name}.start ({start:g}) must be below {name}.end ({end:g}): the ControlNet acts "
                           "from start to end, as fractions of the steps")
    preprocessor = control.check_preprocessor(f"{name}.preprocessor", unit.get("preprocessor", "none"))
    weight = check_float(f"{name}.weight", unit.get("weight", 1.0), *CONTROLNET_WEIGHT_RANGE)
    return Unit(model=model, image=image, preprocessor=preprocessor, weight=weight, start=start, end=end,
                low_threshold=low, high_threshold=high)


@dataclass
class Control:
    """What a request runs with its ControlNets.

    Attributes:
        pipe: the ControlNet pipeline to call, or None when no unit has a weight above 0 (the model's own).
            It adds `arguments` to every call (WithArguments).
        arguments: its ControlNet keyword arguments: the control image(s) under "image" for text to image,
            "control_image" otherwise, controlnet_conditioning_scale, control_guidance_start and _end; one
            value each for one ControlNet, lists of one per ControlNet for several (never one per image).
        parameters: the units for Result.parameters["controlnets"] (no picture data).
        images: the control images, one RGB (width, height) picture per unit.
    """

    pipe: Any
    arguments: dict[str, Any]
    parameters: list[dict[str, Any]]
    images: list[Image.Image]


def prepare(m, units: list[Unit], task: str, width: int, height: int, start: Image.Image | None = None,
            crop: tuple[tuple[int, int], tuple[int, int, int, int]] | None = None) -> Control:
    """The pipeline and call arguments for `units` on model `m` (a core.models.diffusion.DiffusionModel).

    Args:
        units: from parse_units; all are checked and preprocessed. A unit of weight 0 is then left out (its
            ControlNet is not run), so weight 0 gives exactly the model's own output; with no unit left,
            `pipe` is None.
        task: "text_to_image", "image_to_image" or "inpaint" (StableDiffusion(XL)ControlNetInpaintPipeline,
            with `image` and `mask_image` as the generator gives them).
        width, height: the generation size in px; control images are made at this size.
        start: the start picture (image to image, inpaint), the control picture of units without an image.
        crop: for an inpainting of only the masked area, ((W, H) of the whole picture, (left, top, right,
            bottom) of the area redrawn): a unit's own image is resized to W x H and cut to that area first.

    Raises:
        InvalidInput: ControlNets on a model without a Stable Diffusion UNet (the emoji model), a ControlNet
            for another family than the model (both are named), a unit without a picture in text to image.
        ModelNotFound: a ControlNet not in the models folder.
        UnsafeModelFile: not a ControlNet, unreadable, truncated, or weights that do not fit the model.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if not units:
        return Control(None, {}, [], [])
    unet = getattr(m.text_to_image, "unet", None)
    if m.family == "emoji" or not m.has_vae or type(unet).__name__ != "UNet2DConditionModel":
        raise InvalidInput(f"{m.label} takes no ControlNet (ControlNets steer Stable Diffusion UNets); choose an "
                           "SD 1.x, SD 2.x or SDXL model, or remove the ControlNet units")
    paths = [controlnet_files.locate(unit.model) for unit in units]
    for unit, path in zip(units, paths):
        _check_fits(m, unit.model, controlnet_files.shape_of(path))
    images = [_control_image(f"controlnets[{i}]", unit, width, height, start, crop) for i, unit in enumerate(units)]
    parameters = [_parameters(unit, path) for unit, path in zip(units, paths)]
    active = [i for i, unit in enumerate(units) if unit.weight > 0]
    if not active:
        return Control(None, {}, parameters, images)
    nets = [load(units[i].model, m) for i in active]
    arguments = _arguments(task, [units[i] for i in active], [images[i] for i in active])
    return Control(_pipeline(m, task, nets, arguments), arguments, parameters, images)


def _control_image(name: str, unit: Unit, width: int, height: int, start: Image.Image | None,
                   crop: tuple[tuple[int, int], tuple[int, int, int, int]] | None) -> Image.Image:
    picture = unit.image if unit.image is not None else start
    if unit.image is not None and crop is not None:
        size, box = crop
        picture = unit.image.resize(size, Image.LANCZOS).crop(box)
    if picture is None:
        raise InvalidInput(f"{name}.image is missing: text to image has no start picture, so give each ControlNet "
                           "unit a control image")
    return control.control_image(picture, unit.preprocessor, width, height, low_threshold=unit.low_threshold,
                                 high_threshold=unit.high_threshold)


def _parameters(unit: Unit, path: Path) -> dict[str, Any]:
    """A unit as Result.parameters records it: no picture, the file's sha256 (single files only)."""
    record: dict[str, Any] = {"model": unit.model, "preprocessor": unit.preprocessor, "weight": unit.weight,
                              "start": unit.start, "end": unit.end}
    if unit.preprocessor == "canny":
        record |= {"low_threshold": unit.low_threshold, "high_threshold": unit.high_threshold}
    if path.is_file():
        record["sha256"] = hashes.file_sha256(path)
    return record


def _arguments(task: str, units: list[Unit], images: list[Image.Image]) -> dict[str, Any]:
    """Call arguments: one value each for one ControlNet, lists of one per ControlNet for several."""
    one = len(units) == 1
    values = {"image" if task == "text_to_image" else "control_image": images,
              "controlnet_conditioning_scale": [u.weight for u in units],
              "control_guidance_start": [u.start for u in units], "control_guidance_end": [u.end for u in units]}
    return {key: value[0] if one else value for key, value in values.items()}


class WithArguments:
    """Mixed into a ControlNet pipeline: every call gets `control_arguments` (the request's ControlNet keyword
    arguments), so it is called as the model's own pipeline is. (The generators cut list arguments to the
    images of each call; these lists are per ControlNet.)"""

    control_arguments: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **(self.control_arguments | kwargs))


PIPELINES = ("StableDiffusionControlNetPipeline", "StableDiffusionControlNetImg2ImgPipeline",
             "StableDiffusionControlNetInpaintPipeline", "StableDiffusionXLControlNetPipeline",
             "StableDiffusionXLControlNetImg2ImgPipeline", "StableDiffusionXLControlNetInpaintPipeline")
"""diffusers' ControlNet pipelines that AutoPipeline picks for SD 1.x/2.x and SDXL; each is also a class of this
module, with WithArguments mixed in (module `__getattr__`)."""


def __getattr__(name: str) -> type:
    """The classes of PIPELINES with WithArguments, made on first use (importing diffusers' pipelines takes
    seconds) and found by name as pickle finds classes (ZeroGPU pickles the pipeline to its worker)."""
    if name not in PIPELINES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _with_arguments(name)


@functools.cache
def _with_arguments(name: str) -> type:
    import diffusers

    base = getattr(diffusers, name)
    return type(name, (WithArguments, base), {"__module__": __name__, "__qualname__": name, "__doc__": base.__doc__})


def _pipeline(m, task: str, nets: list, arguments: dict[str, Any]) -> Any:
    """diffusers' ControlNet pipeline for `task` holding `arguments`, made from the model's pipeline with
    AutoPipeline's from_pipe: modules shared, and left on their device and in their precision (the pipeline
    classes' own from_pipe casts every module to its `dtype` argument, float32 by default)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    auto = {"text_to_image": AutoPipelineForText2Image, "image_to_image": AutoPipelineForImage2Image,
            "inpaint": AutoPipelineForInpainting}[task]
    unet = m.text_to_image.unet
    for net in nets:
        if net.dtype != unet.dtype:  # the model was moved to float32 after NaN values: its ControlNets follow
            net.to(unet.dtype)
    try:
        pipe = auto.from_pipe(m.text_to_image, controlnet=nets[0] if len(nets) == 1 else list(nets))
    except (ValueError, KeyError, TypeError) as err:  # a family without ControlNet pipelines in diffusers
        raise InvalidInput(f"{m.label} has no ControlNet pipeline in diffusers ({brief(err)}); choose an SD 1.x, "
                           "SD 2.x or SDXL model") from None
    if type(pipe).__name__ not in PIPELINES:
        raise InvalidInput(f"{m.label} has no ControlNet pipeline here ({type(pipe).__name__}); choose an SD 1.x, "
                           "SD 2.x or SDXL model")
    pipe.__class__ = _with_arguments(type(pipe).__name__)  # the same object and state, one method more
    pipe.control_arguments = arguments
    return pipe


# --- what a ControlNet was made for ----------------------------------------------------------------------

def _describe(width: int | None, xl: bool, family: str | None = None) -> str:
    from core.models.stable_diffusion import FAMILY_LABELS

    label = FAMILY_LABELS.get(family or "") or _KNOWN.get((width, xl))
    detail = f"{width}-wide cross-attention" + (", SDXL's size conditioning" if xl else "")
    return f"{label} ({detail})" if label else f"a model with {detail}"


def _check_fits(m, name: str, shape: tuple[int | None, bool]) -> None:
    config = m.text_to_image.unet.config
    own = (config.cross_attention_dim, config.addition_embed_type == "text_time")
    if (shape[0] is not None and shape[0] != own[0]) or shape[1] != own[1]:
        wanted = _describe(*own, m.family)
        raise InvalidInput(f"ControlNet {Path(name).name} is for {_describe(*shape)}, but the model {m.label} is "
                           f"{wanted}; choose a ControlNet made for {wanted.split(' (')[0]}")


# --- loading ---------------------------------------------------------------------------------------------

def load(name: str, m) -> Any:
    """The ControlNetModel of file or folder `name` for model `m`, cached per file version, on the model's
    device (its pipeline's execution device; channels-last on the CPU) in its UNet's precision.

    Raises:
        ModelNotFound, UnsafeModelFile: as `prepare`.
    """
    path = controlnet_files.locate(name)
    unet, pipe = m.text_to_image.unet, m.text_to_image
    key = cache_key(path, unet)
    old = _LOADED.get(path)
    if old is not None and old != key:
        registry.forget(ModelKind.CONTROLNET, old)  # the same path, replaced in place or built for another UNet
    _LOADED[path] = key
    return registry.load_source(ModelKind.CONTROLNET, key, lambda: _load(path, unet, pipe._execution_device))


def cache_key(path: Path, unet) -> str:
    """The registry key of ControlNet `path` for `unet`'s architecture: its version (weights file and config of
    a folder) and a digest of the UNet config it is built on, tab-separated (cached under ModelKind.CONTROLNET)."""
    parts = [path / "config.json", path / "diffusion_pytorch_model.safetensors"] if path.is_dir() else [path]
    versions = [FileVersion.of(p) for p in parts if p.exists()]
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}  # not its source's name or version
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return "\t".join(["controlnet", str(path), *(f"{v.size}:{v.mtime_ns}" for v in versions), digest])


def _load(path: Path, unet, device) -> Any:
    import torch
    from diffusers import ControlNetModel

    if path.is_dir():
        try:
            net = ControlNetModel.from_pretrained(path, local_files_only=True, dtype=unet.dtype, disable_mmap=True)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
            raise UnsafeModelFile(f"the ControlNet folder {path.name} could not be loaded: {brief(err)}") from None
        _check_blocks(path.name, net.config, unet.config)
    else:
        state = controlnet_files.diffusers_names(controlnet_files.read(path), unet.config["layers_per_block"])
        hint = controlnet_files.hint_config(path.name, state)
        with torch.device("meta"):  # no memory, no random init: the weights are assigned below
            config = dict(ControlNetModel.from_unet(unet, load_weights_from_unet=False, **hint["from_unet"]).config)
            net = ControlNetModel.from_config(config | hint["config"])
        problem = controlnet_files.misfit(net.state_dict(), state)
        if problem:
            raise UnsafeModelFile(f"{path.name} does not fit the model's UNet architecture ({problem}); a "
                                  "ControlNet of another build works as a diffusers folder (config.json and weights)")
        net.load_state_dict(state, strict=True, assign=True)
    if net.dtype != unet.dtype:
        net.to(dtype=unet.dtype)
    net.to(device).eval()
    if device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    return net


def _check_blocks(name: str, config, unet_config) -> None:
    """A folder's ControlNet must give residuals of the UNet's shapes: the same block channels and layers."""
    for key in ("block_out_channels", "layers_per_block"):
        if list(_listed(config[key])) != list(_listed(unet_config[key])):
            raise UnsafeModelFile(f"the ControlNet folder {name} does not fit the model's UNet: its {key} is "
                                  f"{config[key]}, the UNet's {unet_config[key]}")


def _listed(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
