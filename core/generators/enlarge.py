"""Enlarging a picture with an upscaler: passes, tiles, alpha, halving the tile when memory runs out,
and checking what the net made (NaN, infinity, a flat picture: redone in float32 or refused).

The one step that the super-resolution tab (`core.upscale`) and the "Upscale x4" option of the
diffusion and faces tabs share; none of them calls another's public function.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image

from core.errors import InvalidInput, OutOfMemory
from core.generators.progress import Progress
from core.imaging.io import to_pil, to_pil16, to_tensor
from core.imaging.tiling import fit_tile, run_tiled, tiles
from core.models import upscalers
from core.models.output_checks import bad_values, lost_contrast, redo_in_float32
from core.models.upscalers import Upscaler

DEFAULT_MAX_OUTPUT_SIDE = 16384
_MEMORY_ERRORS = ("out of memory", "can't allocate memory")


@dataclass(frozen=True)
class Enlarged:
    """What `enlarge` made and how.

    Attributes:
        image: the picture, of `size` px, in the input's mode (RGB, RGBA, L, LA or I;16).
        tile: the largest tile side the net actually ran on, in input px (after fitting the tiles
            to the picture and any halving on out-of-memory).
        tile_limit: the largest tile side allowed in the end (the asked one, or half of it per OOM).
        overlap: input px shared by neighbouring tiles.
        passes: net passes (two for x8 from a x4 net).
        tiles: net calls made (every pass and plane, and any made again after halving the tile).
        alpha: "none", "opaque" (kept as 255) or "upscaled" (run through the net as grey).
        warnings: what the user should know, e.g. that the net was run again in float32.
    """

    image: Image.Image
    tile: int
    tile_limit: int
    overlap: int
    passes: int
    tiles: int
    alpha: str
    warnings: list[str] = field(default_factory=list)


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


def check_output_size(size: tuple[int, int], scale: float, up: Upscaler) -> list[tuple[int, int]]:
    """The passes for enlarging `size` by `scale` (see `plan_passes`), checked before any work.

    Raises:
        InvalidInput: an output side over `max_output_side()` (or an intermediate pass over twice it).
    """
    inputs = plan_passes(size, scale, up.scale)
    out = (round(size[0] * scale), round(size[1] * scale))
    largest = max(max(w, h) * up.scale for w, h in inputs)
    limit = max_output_side()
    if max(out) > limit or largest > 2 * limit:
        raise InvalidInput(f"the output would be {out[0]}x{out[1]} px; each side must be at most {limit} px "
                           "(IMAGEGEN_MAX_OUTPUT_SIDE): choose a smaller scale or a smaller image")
    return inputs


def count_tiles(size: tuple[int, int], up: Upscaler, *, scale: float, tile: int | None = None, overlap: int = 16,
                planes: int = 1) -> int:
    """Net calls `enlarge` makes for a picture of `size` (width, height) px with `planes` planes (1 for
    RGB or grey, 2 with transparency that is not opaque), before any halving of the tile."""
    tile = upscalers.default_tile(up) if tile is None else tile
    return sum(tiles(w, h, tile, overlap) for w, h in plan_passes(size, scale, up.scale)) * planes


def enlarge(picture: Image.Image, up: Upscaler, *, scale: float, tile: int | None = None, overlap: int = 16,
            on_tile: Callable[[int, int], None] | None = None) -> Enlarged:
    """Enlarge `picture` `scale` times with `up`, tile by tile, and check what the net made.

    Args:
        picture: RGB, RGBA, L, LA or I;16 (16-bit grey), as core.imaging.io.open_image gives it.
        up: a loaded upscaler (core.models.upscalers.get_upscaler).
        scale: output/input side ratio, > 0; above the net's own it takes more passes, and the
            result is resized to round(W * scale) x round(H * scale) exactly (Lanczos).
        tile: largest tile side in input px; None picks one from free memory
            (core.models.upscalers.default_tile). Halved (down to 64) on out-of-memory.
        overlap: input px shared by neighbouring tiles, at most tile / 4 (cut down when the tile is halved).
        on_tile: called as on_tile(done, total) after each net call; whatever it raises (core.Cancelled)
            stops the work at once and goes out unchanged. `done` counts every net call made; `total`
            grows when work is redone (the tiles still to do at half the side after an out-of-memory,
            a plane run again in float32).

    Returns:
        `Enlarged` with the picture, what was applied, and warnings (a redo in float32).

    Raises:
        InvalidInput: the output would be too large (see `check_output_size`).
        OutOfMemory: even 64-px tiles do not fit on the upscaler's device.
        ModelError: the net gave NaN or infinite values, or one flat colour for a picture with
            contrast, even in float32 (a half-precision net is first moved to float32 for good and
            the tile or plane redone).
    """
    # 1. plan: passes, planes (colour, grey, alpha), tile
    width, height = picture.size
    inputs = check_output_size((width, height), scale, up)
    size = (round(width * scale), round(height * scale))
    tile = upscalers.default_tile(up) if tile is None else tile
    mode = picture.mode
    alpha = picture.getchannel("A") if mode in ("RGBA", "LA") else None
    alpha_mode = "none" if alpha is None else "opaque" if alpha.getextrema() == (255, 255) else "upscaled"
    planes = [picture.convert("RGB") if mode in ("RGB", "RGBA") else picture.getchannel("L") if mode == "LA"
              else picture]
    if alpha_mode == "upscaled":
        planes.append(alpha)

    # 2. run the net plane by plane, pass by pass, tile by tile, halving the tile on out-of-memory
    progress = Progress(on_tile, count_tiles((width, height), up, scale=scale, tile=tile, overlap=overlap,
                                             planes=len(planes)))
    warnings: list[str] = []
    while True:
        try:
            outputs = [_plane(up, plane, inputs, tile, overlap, progress, warnings) for plane in planes]
            break
        except _NetOutOfMemory:
            if tile <= 64:
                raise OutOfMemory(f"upscaling {width}x{height} px does not fit in {up.model.device} memory even "
                                  "with 64-px tiles; use a smaller image or free memory") from None
            if up.model.device.type == "cuda":
                torch.cuda.empty_cache()
            tile = max(64, tile // 2)
            overlap = min(overlap, tile // 4)
            progress.total = progress.done + count_tiles((width, height), up, scale=scale, tile=tile,
                                                         overlap=overlap, planes=len(planes))

    # 3. back to one PIL image of the wanted size and the input's kind
    result = outputs[0]
    if result.size != size:
        result = result.resize(size, Image.Resampling.LANCZOS)
    if alpha_mode != "none":
        grown = outputs[1].resize(size, Image.Resampling.LANCZOS) if alpha_mode == "upscaled" else Image.new("L", size, 255)
        result = Image.merge(mode, (*result.split(), grown))
    used = max(fit_tile(side, tile, overlap) for w, h in inputs for side in (w, h))
    return Enlarged(result, used, tile, overlap, len(inputs), progress.done, alpha_mode, warnings)


def x4(images: list[Image.Image], on_tile: Callable[[int, int], None] | None = None
       ) -> tuple[list[Image.Image], list[str]]:
    """Each RGB picture enlarged x4 with the default upscaler (what the tabs' "Upscale x4" does).

    `on_tile(done, total)` counts the tiles of all the pictures (see `enlarge`; `x4_tiles` gives the
    total beforehand). Returns (the pictures, warnings).

    Raises:
        ModelNotFound: the embedded upscaler was never built. OutOfMemory, ModelError: see `enlarge`.
    """
    up = upscalers.get_upscaler(None)
    counts = [count_tiles(image.size, up, scale=4) for image in images]
    progress = Progress(on_tile, sum(counts))
    done, warnings = [], []
    for image, count in zip(images, counts):
        out = enlarge(image.convert("RGB"), up, scale=4, on_tile=progress.part(count))
        done.append(out.image)
        warnings += [w for w in out.warnings if w not in warnings]
    return done, warnings


def x4_tiles(size: tuple[int, int]) -> int:
    """Tiles `x4` runs for one RGB picture of `size` (width, height) px (loads the default upscaler)."""
    return count_tiles(size, upscalers.get_upscaler(None), scale=4)


class _NetOutOfMemory(Exception):
    """The net ran out of memory on a tile. Raised only around the net call, so nothing that on_tile
    raises (a RuntimeError of the host's included) is ever taken for it."""


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and any(m in str(err) for m in _MEMORY_ERRORS))


def _plane(up: Upscaler, plane: Image.Image, inputs: list[tuple[int, int]], tile: int, overlap: int,
           progress: Progress, warnings: list[str]) -> Image.Image:
    """One plane (RGB, L or I;16) through every pass, checked: a tile with NaN or infinite values is
    redone in float32 (a half-precision net), and so is the whole plane when it comes out as one flat
    colour though it had contrast (core.models.output_checks). Adds any such redo to `warnings`."""
    what = f"the upscaler {up.name}"

    def net(x: torch.Tensor) -> torch.Tensor:
        def call() -> torch.Tensor:
            try:
                return up(x)
            except (torch.OutOfMemoryError, RuntimeError) as err:
                if _is_oom(err):
                    raise _NetOutOfMemory from None
                raise
        y, warning = redo_in_float32(call, bad_values, up.to_float32, what=what, advice=_ADVICE)
        if warning:
            warnings.append(warning)
        return y

    def upcast() -> str | None:
        was = up.to_float32()
        if was:
            progress.add(sum(tiles(w, h, tile, overlap) for w, h in inputs))
        return was

    out, warning = redo_in_float32(lambda: _passes(up, plane, inputs, tile, overlap, net, progress.step),
                                   lambda out: "one flat colour" if lost_contrast(out, plane) else None,
                                   upcast, what=what, advice=_ADVICE)
    if warning:
        warnings.append(warning)
    return out


_ADVICE = "its weights may be damaged or not meant for this: try another upscaler"


def _passes(up: Upscaler, plane: Image.Image, inputs: list[tuple[int, int]], tile: int, overlap: int,
            net: Callable[[torch.Tensor], torch.Tensor], step: Callable[[], None]) -> Image.Image:
    """Run `net` (one call of `up`) over one plane (RGB, L or I;16) once per entry of `inputs` (see
    plan_passes), resizing between passes; a grey plane goes through the net as grey RGB and comes back grey."""
    mode = plane.mode
    encode = (lambda band: to_pil16(band)[0]) if mode == "I;16" else (
        lambda band: to_pil(band.mean(1, keepdim=True))[0]) if mode == "L" else None
    for size in inputs:
        if plane.size != size:
            plane = plane.resize(size, Image.Resampling.LANCZOS)
        pixels = to_tensor(plane)
        pixels = pixels.expand(1, 3, *pixels.shape[2:]).contiguous() if pixels.shape[1] == 1 else pixels
        plane = run_tiled(net, pixels, scale=up.scale, tile=tile, overlap=overlap, on_tile=step, encode=encode)
    return plane
