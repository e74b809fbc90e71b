"""Uploaded pictures as the tabs receive them: what Gradio sends for an image input, read into
something `core.open_image` takes.

Only files that this server received as uploads are accepted (see `image_source`).
"""

from __future__ import annotations

import base64
from typing import Any


def image_source(value: Any) -> str | bytes | None:
    """The picture behind an image input received with `preprocess=False`, for `core.open_image`.

    Gradio checks the upload before the event (it must lie in its upload folder) but does not open
    it, so an unreadable file reaches core and gets core's message. Returns a path, raw bytes (for a
    `data:` URL), or None when there is no picture.
    """
    if isinstance(value, dict):
        if value.get("path"):
            return value["path"]
        url = value.get("url") or ""
        if url.startswith("data:") and "," in url:
            try:
                return base64.b64decode(url.split(",", 1)[1])
            except ValueError:  # broken base64: empty bytes, which core reports as unreadable
                return b""
        return None
    return value
