"""Pixels convert here and nowhere else: open and check images, PIL <-> tensor, save PNG/GIF.

Value ranges: PIL images are 0..255 uint8; tensors are float `(N, C, H, W)` in [0, 1] unless a
function says [-1, 1]. Generators never divide by 255 themselves.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from core.errors import InvalidInput
from core.imaging import credentials, watermark
from core.imaging.parameters import VERSION, png_info

Image.MAX_IMAGE_PIXELS = 16384 * 16384  # refuse decompression bombs beyond our largest output
FAST_PNG_ABOVE_PX = 1000 * 1000
READ_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "PPM", "AVIF")
"""The file formats open_image reads (Pillow's ids). Pillow knows some forty more; the rarely used ones
are where its decoder bugs were found, and EPS would run Ghostscript, so an upload is tried as these only."""
_DECODER_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError,
                   KeyError, ZeroDivisionError, OverflowError, struct.error, zlib.error)
"""What Pillow's decoders raise on a broken or hostile file (cf. Pillow's Tests/test_file_*.py fuzz cases)."""
_TEXT_CHUNK_ERROR = re.compile(r"MAX_TEXT_(CHUNK|MEMORY)")
"""Pillow's ValueError for PNG text or ICC chunks beyond PngImagePlugin.MAX_TEXT_CHUNK / MAX_TEXT_MEMORY."""


def open_image(image: Any, *, name: str = "image", min_side: int = 8, max_side: int = 4096,
               grey: bool = False) -> Image.Image:
    """Check a user's picture and return it as an RGB or RGBA PIL image, EXIF rotation applied.

    Args:
        image: a PIL image, a path (str or Path) to an image file, raw bytes, or a uint8 numpy
            array `(H, W)` or `(H, W, C)`, C = 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA). Files
            are read as one of READ_FORMATS (PNG, JPEG, WebP, GIF, BMP, TIFF, PPM, AVIF) whatever
            their name says.
        name: the argument's name, used in error messages.
        min_side, max_side: allowed side lengths in pixels (inclusive).
        grey: keep greyscale pictures grey: "L" for 8-bit, "LA" with transparency, "I;16"
            (0..65535) for 16-bit ones.

    Returns:
        A loaded PIL image of mode "RGB" or "RGBA" (RGBA only when the input has transparency),
        or with `grey`, "L" / "LA" / "I;16". CMYK and palette pictures are converted. `info["notes"]`
        lists what the caller should tell the user: an animated picture gives its first frame
        only; a 16-bit colour PNG is read at 8 bits per channel (Pillow keeps 16 bits only for
        greyscale).

    Raises:
        InvalidInput: no image; a file that is not a picture, or is truncated or corrupt; a
            decompression bomb (a header declaring more than Image.MAX_IMAGE_PIXELS, checked before
            decoding); PNG text or ICC chunks beyond Pillow's limits (PngImagePlugin.MAX_TEXT_CHUNK
            each, MAX_TEXT_MEMORY together); a side outside min_side..max_side. Each message names
            `name` and says what to change.
    """
    if image is None:
        raise InvalidInput(f"no {name} given: upload a picture (PNG, JPEG, WebP, ...)")
    img = None
    try:
        img = _open(image, name)
        _check_sides(img.size, name, min_side, max_side)  # from the header: before pixels are decoded
        notes = []
        if getattr(img, "is_animated", False):
            notes.append(f"{name} is animated ({img.n_frames} frames); only its first frame is used")
            img.seek(0)
        if img.mode in ("RGB", "RGBA") and any(";16" in str(getattr(t, "args", "")) for t in getattr(img, "tile", None) or []):
            notes.append(f"{name} has 16 bits per colour channel; it is read at 8 bits (16 bits are kept "
                         "for greyscale pictures only)")
        img = ImageOps.exif_transpose(img)
        img.load()
        img = _to_mode(img, grey)
    except InvalidInput:
        _close(img, image)
        raise
    except Image.DecompressionBombError as err:  # no details beyond the size: they could show server paths
        _close(img, image)
        declared = re.search(r"\((\d+) pixels\)", str(err))
        size = f" ({int(declared.group(1)):,} px declared)" if declared else ""
        raise InvalidInput(f"{name} has far too many pixels{size}, as a decompression bomb would; each side "
                           f"must be at most {max_side} px: upload a smaller picture") from None
    except MemoryError:
        _close(img, image)
        raise InvalidInput(f"{name} does not fit in memory once decoded; upload a smaller picture") from None
    except _DECODER_ERRORS as err:  # no details: they would show server paths
        _close(img, image)
        if isinstance(err, ValueError) and _TEXT_CHUNK_ERROR.search(str(err)):
            raise InvalidInput(f"{name} carries PNG metadata (text or ICC profile chunks) over "
                               f"{PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB each or "
                               f"{PngImagePlugin.MAX_TEXT_MEMORY // 2**20} MB together; save the picture again "
                               "without its metadata") from None
        raise InvalidInput(f"{name} is not a readable picture (not an image file, or truncated or corrupt); "
                           "upload a PNG, JPEG or WebP file") from None
    img.info["notes"] = notes
    return img


def _open(image: Any, name: str) -> Image.Image:
    """`image` (see open_image) as a PIL image, not decoded yet when it comes from a file."""
    if isinstance(image, (str, os.PathLike)):
        return Image.open(Path(image), formats=_read_formats())
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(image), formats=_read_formats())
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]  # (H, W, 1) -> (H, W)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
            raise InvalidInput(f"{name} array must be uint8 (H, W) or (H, W, C) with C = 1..4 channels, "
                               f"got {image.dtype} {image.shape}")
        return Image.fromarray(image)
    if isinstance(image, Image.Image):
        return image
    raise InvalidInput(f"{name} must be a picture, got {type(image).__name__}")


def _read_formats() -> list[str]:
    """READ_FORMATS that this Pillow reads (AVIF needs libavif); the plugins load on the first call."""
    Image.init()  # Image.open loads only the commonest plugins before trying the formats it is given
    return [f for f in READ_FORMATS if f in Image.OPEN]


def _to_mode(img: Image.Image, grey: bool) -> Image.Image:
    """A decoded picture in the mode open_image returns (see there)."""
    if img.mode in ("La", "RGBa"):  # premultiplied alpha: Pillow converts these to their plain twin only
        img = img.convert(img.mode[:-1] + "A")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if img.mode.startswith("I"):  # 16-bit (I;16, I;16B) or 32-bit integer greyscale
        img = Image.fromarray(np.asarray(img, dtype=np.float32).clip(0, 65535).astype(np.uint16))  # I;16
        img = img if grey else to_8bit(img)
    if grey and img.mode == "LA":
        return img  # grey with transparency stays so
    if not (grey and img.mode in ("L", "I;16") and not has_alpha):
        img = img.convert("RGBA" if has_alpha else "RGB")
    return img


def _close(img: Image.Image | None, given: Any) -> None:
    """Close the file handle of a picture that open_image opened itself (never the caller's image)."""
    if img is not None and img is not given:
        img.close()


def _check_sides(size: tuple[int, int], name: str, min_side: int, max_side: int) -> None:
    width, height = size
    if min(width, height) < min_side:
        raise InvalidInput(f"{name} is {width}x{height} px; each side must be at least {min_side} px")
    if max(width, height) > max_side:
        raise InvalidInput(f"{name} is {width}x{height} px; each side must be at most {max_side} px")


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """An RGB copy of `image` with any transparency composited over `background` (0..255 each)."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, background + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def to_tensor(image: Image.Image):
    """PIL image (RGB, or L / I;16 for one channel) -> float32 tensor `(1, C, H, W)` in [0, 1]."""
    import torch

    array = np.asarray(image, dtype=np.float32) / (65535.0 if image.mode == "I;16" else 255.0)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor) -> list[Image.Image]:
    """Float tensor `(N, C, H, W)` in [0, 1] (C = 1 or 3, any device/dtype) -> N PIL images (L or RGB).

    Values outside [0, 1] are clipped; rounding is to the nearest 8-bit level.
    """
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().cpu().permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in array]


def to_8bit(image: Image.Image) -> Image.Image:
    """`image` with 8 bits per channel: 16-bit greyscale (I;16) is scaled to L (0..65535 -> 0..255);
    other modes are returned as they are."""
    if image.mode != "I;16":
        return image
    return Image.fromarray((np.asarray(image, dtype=np.float32) / 257.0).round().astype(np.uint8))


def to_pil16(tensor) -> list[Image.Image]:
    """Float tensor `(N, C, H, W)` in [0, 1] -> N 16-bit greyscale PIL images (mode I;16, 0..65535);
    C > 1 channels are averaged."""
    array = tensor.detach().float().mean(1).clamp(0, 1).mul(65535).round().cpu().numpy().astype(np.uint16)
    return [Image.fromarray(a) for a in array]


def png_bytes(image: Image.Image, parameters: dict[str, Any] | None = None, *, title: str = "image.png") -> bytes:
    """Encode `image` as lossless PNG with `parameters` embedded: AUTOMATIC1111's text under "parameters",
    our JSON under "imagegen" (core.imaging.parameters; read back with core.read_parameters), the XMP
    packet, and for a generated picture the invisible watermark and a signed C2PA manifest named `title`
    (core.imaging.credentials)."""
    buffer = io.BytesIO()
    image, options = _png_options(image, parameters)
    image.save(buffer, **options)
    data, _ = credentials.sign_png(buffer.getvalue(), parameters, VERSION, title)
    return data


def save_png(image: Image.Image, path: str | Path, parameters: dict[str, Any] | None = None) -> Path:
    """Write `image` as PNG at `path` with `parameters` embedded (as png_bytes); returns the path. A
    picture that gets no C2PA manifest is streamed to the file rather than built in memory first."""
    path = Path(path)
    if credentials.signs(parameters):
        path.write_bytes(png_bytes(image, parameters, title=path.name))
        return path
    image, options = _png_options(image, parameters)
    image.save(path, **options)
    return path


def _png_options(image: Image.Image, parameters: dict[str, Any] | None) -> tuple[Image.Image, dict[str, Any]]:
    """The picture to write (with the invisible watermark where core.imaging.watermark.mark puts one: a
    generated picture, each side >= 256 px, unless IMAGEGEN_WATERMARK=0) and the Pillow save options:
    PNG, the parameters as text chunks (core.imaging.parameters.png_info), and zlib level 1 instead of
    Pillow's 6 for pictures over FAST_PNG_ABOVE_PX, a megapixel (a 4096x4096 upscaled photo: 3.5x
    faster for a 25 % bigger file; a 1024x1024 face: 0.13 s instead of 0.72 s, 2-core AMD EPYC;
    the pixels are the same, PNG being lossless)."""
    image, note = watermark.mark(image, parameters)
    info = png_info(parameters, image.size, watermark=note)
    level = 1 if image.width * image.height > FAST_PNG_ABOVE_PX else 6
    return image, {"format": "PNG", "pnginfo": info, "compress_level": level}


def save_gif(frames: Sequence[Image.Image], path: str | Path, *, frame_ms: int = 100, loop: bool = True) -> Path:
    """Write `frames` (same size) as an animated GIF with `frame_ms` milliseconds per frame (GIF counts
    in 10 ms units), playing forever when `loop`, else once (no NETSCAPE loop block)."""
    if not frames:
        raise InvalidInput("an animation needs at least one frame")
    path = Path(path)
    first, *rest = [f.convert("RGB") for f in frames]
    looping = {"loop": 0} if loop else {}
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=frame_ms, **looping)
    return path
