"""Run an image-to-image net tile by tile and blend the tiles seamlessly, with flat peak memory.

Tiles overlap by `overlap` input pixels; inside each overlap, neighbouring tiles are cross-faded
with linear ramps (each tile's weight falls towards its inner edges, where the net saw zero
padding). Weights are separable and normalised per axis, so they sum to exactly 1 everywhere and
no weight map is kept. Output rows are finished band by band as soon as no later tile row can touch
them, so only one band of float output is held, not the whole enlarged picture.
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image

from core.imaging.io import to_pil


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets covering 0..length with as few tiles of side `tile` as share >= `overlap` px.

    The starts are spread evenly, so every neighbouring pair shares about the same number of pixels
    (at least `overlap`); a length <= tile gives one tile at 0.
    """
    if length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))  # ceil
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tiles(width: int, height: int, tile: int, overlap: int) -> int:
    """How many tiles `run_tiled` runs over a `width` x `height` picture (input px)."""
    return len(starts(width, tile, overlap)) * len(starts(height, tile, overlap))


def fit_tile(length: int, tile: int, overlap: int) -> int:
    """The smallest tile side, at most `tile`, that covers `length` px with as few tiles as `tile` does.

    A 512-px side with 256-px tiles and 16 px of overlap needs 3 tiles; at 256 px they would share
    128 px each and run the net over 768 px, at 182 px over 546. All in input px.
    """
    if length <= tile:
        return length
    count = len(starts(length, tile, overlap))
    return min(tile, -(-(length + (count - 1) * overlap) // count))


def _weights(offsets: list[int], side: int, length: int, ramp: int, scale: int) -> list[torch.Tensor]:
    """Per-tile 1D blend weights in output pixels, normalised so that they sum to 1 at every pixel.

    `side` is the tile side and `ramp` the overlap, both in input pixels; the ramp of a tile edge
    that touches the picture border is dropped (nothing to blend with there).
    """
    out_side, out_ramp = min(side, length) * scale, ramp * scale
    pos = torch.arange(out_side, dtype=torch.float32) + 0.5  # (out_side,) pixel centres
    raw = []
    for start in offsets:
        w = torch.ones(out_side)
        if out_ramp and start > 0:
            w = torch.minimum(w, pos / out_ramp)
        if out_ramp and start + side < length:
            w = torch.minimum(w, pos.flip(0) / out_ramp)
        raw.append(w)
    total = torch.zeros(length * scale)
    for start, w in zip(offsets, raw):
        total[start * scale:start * scale + out_side] += w
    return [w / total[start * scale:start * scale + out_side] for start, w in zip(offsets, raw)]


def run_tiled(net: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *, scale: int, tile: int,
              overlap: int, on_tile: Callable[[], None] | None = None,
              encode: Callable[[torch.Tensor], Image.Image] | None = None) -> Image.Image:
    """Apply `net` to `image` tile by tile and return the blended output as a PIL image.

    Args:
        net: maps float `(1, C, h, w)` in [0, 1] to `(1, C, h*scale, w*scale)` in [0, 1] (any device).
        image: float32 `(1, C, H, W)` in [0, 1] on the CPU, C = 1 or 3.
        scale: the net's output/input side ratio (a whole number >= 1).
        tile: the largest tile side in input pixels; each axis uses the smallest side that needs no
            more tiles (`fit_tile`). overlap: shared pixels between neighbours (< tile / 2).
        on_tile: called after each tile (progress; the host may stop the work there by raising,
            which goes out unchanged: no further tile runs).
        encode: turns a finished float band `(1, C, h, W*scale)` into a PIL image; the default
            (core.imaging.io.to_pil) gives 8-bit L or RGB, core.imaging.io.to_pil16 16-bit greyscale.

    Returns:
        A PIL image, of the mode `encode` gives, of (W * scale, H * scale) px.
    """
    _, _, height, width = image.shape
    encode = encode or (lambda band: to_pil(band)[0])
    tile_x, tile_y = fit_tile(width, tile, overlap), fit_tile(height, tile, overlap)
    xs, ys = starts(width, tile_x, overlap), starts(height, tile_y, overlap)
    wx = _weights(xs, tile_x, width, overlap, scale)
    wy = _weights(ys, tile_y, height, overlap, scale)
    canvas = None  # made from the first finished band, in its mode
    band, band_top = None, 0  # float rows [band_top, band_top + band rows) of the output, not yet final

    def finish(rows: torch.Tensor, top: int) -> None:
        nonlocal canvas
        done = encode(rows)
        canvas = canvas or Image.new(done.mode, (width * scale, height * scale))
        canvas.paste(done, (0, top))

    for row, (y, weight_y) in enumerate(zip(ys, wy)):
        top, bottom = y * scale, y * scale + weight_y.numel()
        if band is not None and top > band_top:  # rows above `top` are final: no later tile reaches them
            finish(band[:, :, :top - band_top], band_top)
            band, band_top = band[:, :, top - band_top:], top
        grow = bottom - band_top - (0 if band is None else band.shape[2])
        extra = torch.zeros(1, image.shape[1], grow, width * scale)
        band = extra if band is None else torch.cat([band, extra], dim=2)
        for x, weight_x in zip(xs, wx):
            piece = image[:, :, y:y + tile_y, x:x + tile_x]
            out = net(piece).float().cpu()  # (1, C, h*scale, w*scale)
            blend = weight_y[:, None] * weight_x[None, :]  # (h*scale, w*scale)
            left = x * scale
            band[:, :, top - band_top:bottom - band_top, left:left + weight_x.numel()] += out * blend
            if on_tile is not None:
                on_tile()
    finish(band, band_top)
    return canvas
