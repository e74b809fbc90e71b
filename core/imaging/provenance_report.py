"""What a picture says of its origin, as the PNG Info tab shows it: the XMP digital source type, the
invisible watermark and the C2PA manifest (core.imaging.provenance, .watermark, .credentials)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from core.errors import InvalidInput
from core.imaging import credentials, watermark
from core.imaging.parameters import MAX_FILE, read_parameters

MAX_WATERMARK_SIDE = 8192
"""Pictures with a longer side are not searched for the watermark (decoding them costs too much)."""


def read_provenance(image: Any) -> dict[str, Any]:
    """Read the three provenance marks of a picture.

    Args:
        image: a path (str or Path) or the file's bytes (any format core.open_image reads), or a PIL
            image (then the C2PA manifest, which needs the file's bytes, is not read).

    Returns:
        {"xmp": {"source_type", "generator", ...} or None (provenance.read_xmp),
         "watermark": {"found": bool, "bit_accuracy": 0..1 (0.5 is chance; found at >= 0.8)} or None
            when the picture is too small (under 128 px) or too large (over MAX_WATERMARK_SIDE) to
            search, or cannot be decoded,
         "content_credentials": credentials.read_manifest's report or None}.
        Never raises.
    """
    from core.imaging.io import open_image

    data = _file_bytes(image)
    xmp = read_parameters(data if data is not None else image).get("provenance")
    try:
        picture = image if isinstance(image, Image.Image) else open_image(data, max_side=MAX_WATERMARK_SIDE)
        found, accuracy = watermark.detect(picture)
        mark = {"found": found, "bit_accuracy": round(accuracy, 3)} if accuracy > 0 else None
    except (InvalidInput, ValueError, OSError):
        mark = None
    return {"xmp": xmp, "watermark": mark,
            "content_credentials": credentials.read_manifest(data) if data is not None else None}


def _file_bytes(image: Any) -> bytes | None:
    """The bytes of a path or bytes input (None for a PIL image, a missing file or one over MAX_FILE)."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        try:
            return path.read_bytes() if path.stat().st_size <= MAX_FILE else None
        except OSError:
            return None
    if isinstance(image, (bytes, bytearray, memoryview)) and len(image) <= MAX_FILE:
        return bytes(image)
    return None
