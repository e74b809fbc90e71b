"""Pixels convert here and nowhere else: open and check images, PIL <-> tensor, save PNG/GIF.

Value ranges: PIL images are 0..255 uint8; tensors are float `(N, C, H, W)` in [0, 1] unless a
function says [-1, 1]. Generators never divide by 255 themselves.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from core.errors import InvalidInput

Image.MAX_IMAGE_PIXELS = 16384 * 16384  # refuse decompression bombs beyond our largest output


def open_image(image: Any, *, name: str = "image", min_side: int = 8, max_side: int = 4096) -> Image.Image:
    """Check a user's picture and return it as an RGB or RGBA PIL image, EXIF rotation applied.

    Args:
        image: a PIL image, a path (str or Path) to an image file, raw bytes, or a uint8 numpy
            array `(H, W)`, `(H, W, 3)` or `(H, W, 4)`.
        name: the argument's name, used in error messages.
        min_side, max_side: allowed side lengths in pixels (inclusive).

    Returns:
        A loaded PIL image of mode "RGB" or "RGBA" (RGBA only when the input has transparency);
        animated inputs give their first frame.

    Raises:
        InvalidInput: no image, a file that is not an image, or a side outside min_side..max_side.
    """
    if image is None:
        raise InvalidInput(f"no {name} given: upload a picture (PNG, JPEG, WebP, ...)")
    try:
        if isinstance(image, (str, os.PathLike)):
            img = Image.open(Path(image))
        elif isinstance(image, (bytes, bytearray)):
            img = Image.open(io.BytesIO(image))
        elif isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim not in (2, 3):
                raise InvalidInput(f"{name} array must be uint8 (H, W[, C]), got {image.dtype} {image.shape}")
            img = Image.fromarray(image)
        elif isinstance(image, Image.Image):
            img = image
        else:
            raise InvalidInput(f"{name} must be a picture, got {type(image).__name__}")
        img.seek(0) if getattr(img, "is_animated", False) else None
        img = ImageOps.exif_transpose(img)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError):  # no details: they would show server paths
        raise InvalidInput(f"{name} is not a readable picture; upload a PNG, JPEG or WebP file") from None
    except Image.DecompressionBombError:
        raise InvalidInput(f"{name} has too many pixels; the limit is {max_side}x{max_side}") from None
    width, height = img.size
    if min(width, height) < min_side:
        raise InvalidInput(f"{name} is {width}x{height} px; each side must be at least {min_side} px")
    if max(width, height) > max_side:
        raise InvalidInput(f"{name} is {width}x{height} px; each side must be at most {max_side} px")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if img.mode == "I;16" or img.mode == "I":
        img = Image.fromarray((np.asarray(img, dtype=np.float32) / 257.0).clip(0, 255).astype(np.uint8))
    return img.convert("RGBA" if has_alpha else "RGB")


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """An RGB copy of `image` with any transparency composited over `background` (0..255 each)."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, background + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def to_tensor(image: Image.Image):
    """PIL image (RGB, or L for one channel) -> float32 tensor `(1, C, H, W)` in [0, 1]."""
    import torch

    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor) -> list[Image.Image]:
    """Float tensor `(N, C, H, W)` in [0, 1] (C = 1 or 3, any device/dtype) -> N PIL images (L or RGB).

    Values outside [0, 1] are clipped; rounding is to the nearest 8-bit level.
    """
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().cpu().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in array]


def png_bytes(image: Image.Image, parameters: dict[str, Any] | None = None) -> bytes:
    """Encode `image` as lossless PNG, with `parameters` as JSON in a "parameters" text chunk."""
    info = PngImagePlugin.PngInfo()
    if parameters:
        info.add_text("parameters", json.dumps(parameters, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_png(image: Image.Image, path: str | Path, parameters: dict[str, Any] | None = None) -> Path:
    """Write `image` as PNG at `path` with `parameters` embedded (see png_bytes); returns the path."""
    path = Path(path)
    path.write_bytes(png_bytes(image, parameters))
    return path


def save_gif(frames: Sequence[Image.Image], path: str | Path, *, frame_ms: int = 100) -> Path:
    """Write `frames` (same size) as a looping animated GIF with `frame_ms` milliseconds per frame."""
    if not frames:
        raise InvalidInput("an animation needs at least one frame")
    path = Path(path)
    first, *rest = [f.convert("RGB") for f in frames]
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=frame_ms, loop=0)
    return path
