"""An invisible watermark in every generated picture: the DWT-DCT ("dwtDct") method of PyPI
`invisible-watermark`, the one diffusers embeds in SDXL's outputs, re-implemented here in numpy + OpenCV.

Why not the library: invisible-watermark 0.2.0's wheel requires `opencv-python` (and `torch`), while this
project installs `opencv-python-headless`; both own the `cv2` folder, so having both installed leaves
whichever came last and uninstalling one breaks the other, and requirements.txt (the Spaces path) cannot
say `--no-deps` for one line. The method is small (below), needs no PyWavelets for its one-level Haar
transform, and writes bits the library's decoder can read when told our channel
(`WatermarkDecoder("bits", 48).decode(bgr, "dwtDct", scales=[36, 0, 0])`), and reads the library's
mark: bench/watermark_compat.py, log bench/results/watermark_compat.log (median 1.0 of the bits both ways).

The method: the picture's Y channel (YUV; the library's default, U, did not survive a JPEG at quality 90) gets a one-level Haar DWT; its low band is cut in 4x4 blocks,
block n carries bit n % 48 of MESSAGE; in each block the coefficient of largest magnitude (not the first)
is quantised to (|v| // 36 + 0.25 + 0.5 * bit) * 36, sign kept. Reading takes the same coefficient's
remainder (> 18 is a 1), averages the votes of every block of a bit, and compares with MESSAGE.

What is marked (core.save_png / png_bytes, so every PNG the hub writes): the pictures our generators make
(text to image, image to image, faces), each side >= MIN_SIDE px. Not marked: pictures under MIN_SIDE
(the 32-px emoji: too few blocks to survive a JPEG), super-resolution of a user's picture (their picture,
not a generated one), and nothing when the host sets IMAGEGEN_WATERMARK=0. The XMP packet says which.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from core.errors import InvalidInput
from core.imaging import provenance

MESSAGE = b"imageg"
"""The 48-bit message (the first 6 bytes of "imagegen"), as many bits as diffusers' SDXL mark."""
BITS = np.unpackbits(np.frombuffer(MESSAGE, dtype=np.uint8))
SCALE = 36.0  # invisible-watermark's default step for dwtDct
BLOCK = 4
CHANNEL = 0  # Y: JPEG keeps luma at full resolution (U at scale 36 read 0.56 after JPEG q90: chance)
MIN_SIDE = 256
"""Pictures with a side under this many px are not marked (invisible-watermark refuses under 256x256)."""
THRESHOLD = 0.8
"""detect() says found when this share of the 48 bits or more match (chance: 0.5 +- 0.07)."""
ENV = "IMAGEGEN_WATERMARK"
RESCALES = (1.0, 2.0, 1.5, 4.0)
"""detect() also reads the picture enlarged by these factors, so a copy shrunk to 1/2, 2/3 or 1/4 realigns."""


def enabled() -> bool:
    """Whether the host leaves the watermark on (IMAGEGEN_WATERMARK unset or anything but 0/false/off/no)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def mark(image: Image.Image, parameters: dict[str, Any] | None) -> tuple[Image.Image, str | None]:
    """`image` with the watermark when it is a generated picture we mark, and what was done, for the
    XMP packet ("dwtDct 48 bits", or why not); (image, None) when there are no parameters."""
    if not parameters:
        return image, None
    if not enabled():
        return image, f"off ({ENV}=0)"
    if provenance.is_upscale(parameters):  # core.upscale: the user's picture enlarged
        return image, "none: super-resolution of a given picture"
    if min(image.size) < MIN_SIDE:
        return image, f"none: under {MIN_SIDE} px"
    if image.mode not in ("RGB", "RGBA"):
        return image, f"none: mode {image.mode}"
    return embed(image), f"dwtDct {len(BITS)} bits"


def embed(image: Image.Image) -> Image.Image:
    """`image` (RGB or RGBA, each side >= MIN_SIDE px) with MESSAGE embedded; alpha is kept as it is.

    Raises:
        InvalidInput: another mode, or a side under MIN_SIDE px.
    """
    if image.mode not in ("RGB", "RGBA") or min(image.size) < MIN_SIDE:
        raise InvalidInput(f"the watermark needs an RGB(A) picture of at least {MIN_SIDE} px a side, "
                           f"got {image.mode} {image.width}x{image.height}")
    import cv2  # here, not at import: building the app loads no heavy library (tests/test_app.py)

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    h, w = (s // BLOCK * BLOCK for s in yuv.shape[:2])
    u = yuv[:h, :w, CHANNEL]
    low = _haar_low(u)
    blocks = _blocks(low)
    at = np.arange(len(blocks))
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    value = blocks[at, pos]
    bits = BITS[at % len(BITS)]
    wanted = np.where(value >= 0, 1.0, -1.0) * ((np.abs(value) // SCALE) + 0.25 + 0.5 * bits) * SCALE
    delta = np.zeros_like(blocks)
    delta[at, pos] = wanted - value
    change = _unblocks(delta, low.shape) / 2  # Haar: a low-band change of d moves each of its 4 pixels by d/2
    for dy in (0, 1):
        for dx in (0, 1):
            u[dy::2, dx::2] += change
    out = np.clip(np.rint(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)), 0, 255).astype(np.uint8)
    marked = Image.fromarray(out)
    if image.mode == "RGBA":
        marked.putalpha(image.getchannel("A"))
    return marked


def detect(image: Image.Image) -> tuple[bool, float]:
    """Whether `image` carries our watermark: (found, bit accuracy), the accuracy being the best share of
    the 48 bits read right at its own size and enlarged by RESCALES, in that order until found (0.5 is
    chance); found when it is >= THRESHOLD. A picture too small to hold the mark gives (False, 0.0)."""
    rgb = image.convert("RGB")
    best = 0.0
    for factor in RESCALES:
        size = (round(rgb.width * factor), round(rgb.height * factor))
        if min(size) < MIN_SIDE // 2 or max(size) > 8192:
            continue
        scaled = rgb if factor == 1.0 else rgb.resize(size, Image.Resampling.BICUBIC)
        best = max(best, _accuracy(np.asarray(scaled, dtype=np.float32)))
        if best >= THRESHOLD:
            break  # found: the other scales are not read
    return best >= THRESHOLD, best


def _accuracy(rgb: np.ndarray) -> float:
    import cv2

    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    h, w = (s // BLOCK * BLOCK for s in yuv.shape[:2])
    blocks = _blocks(_haar_low(yuv[:h, :w, CHANNEL]))
    at = np.arange(len(blocks))
    value = np.abs(blocks[at, np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1])
    votes = (value % SCALE > 0.5 * SCALE).astype(np.float64)
    n = len(BITS)
    if len(votes) < n:
        return 0.0
    mean = np.bincount(at % n, weights=votes, minlength=n) / np.bincount(at % n, minlength=n)
    return float(np.mean((mean * 255 > 127) == BITS.astype(bool)))


def _haar_low(x: np.ndarray) -> np.ndarray:
    """One-level Haar low band of `x` (float `(H, W)`, H and W even), as pywt.dwt2(x, "haar")[0]."""
    return (x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]) / 2


def _blocks(low: np.ndarray) -> np.ndarray:
    """`low` `(H, W)` -> its BLOCK x BLOCK tiles, row by row, as `(n, BLOCK * BLOCK)`."""
    rows, cols = low.shape[0] // BLOCK, low.shape[1] // BLOCK
    tiles = low[:rows * BLOCK, :cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
    return tiles.reshape(rows * cols, BLOCK * BLOCK).copy()


def _unblocks(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The inverse of _blocks, into zeros of `shape` (what no tile covers stays 0)."""
    rows, cols = shape[0] // BLOCK, shape[1] // BLOCK
    out = np.zeros(shape, dtype=blocks.dtype)
    out[:rows * BLOCK, :cols * BLOCK] = (blocks.reshape(rows, cols, BLOCK, BLOCK).transpose(0, 2, 1, 3)
                                         .reshape(rows * BLOCK, cols * BLOCK))
    return out
