"""Uploaded pictures as the tabs receive them: what Gradio sends for an image input, read into
something `core.open_image` takes.

Only files that this server received as uploads are accepted (see `image_source`): an API caller
cannot make the server open one of its own files by sending its path.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import utils as gradio_utils

NOT_AN_UPLOAD = ("{name}: only pictures uploaded to this page are accepted; upload the file instead of "
                 "sending a server path")
"""The refusal of a path that is not an upload (`{name}` is the input's name)."""


def image_source(value: Any, name: str = "image") -> str | bytes | None:
    """The picture behind an image input received with `preprocess=False`, for `core.open_image`.

    Gradio checks a FileData payload that carries its `meta` before the event (the file must lie in
    its upload folder) but lets one without `meta`, or a bare string, through unchecked; so every
    path is checked here the way Gradio checks uploads: links and `..` resolved, it must lie inside
    Gradio's upload folder for this process (`gradio.utils.get_upload_folder()`: $GRADIO_TEMP_DIR,
    else <temp>/gradio; gr.Examples files are copied there too). The file is not opened here, so an
    unreadable upload reaches core and gets core's message.

    Args:
        value: what Gradio passed: None, a FileData dict ({"path", "url", "meta", ...}), or a string.
        name: the input's name, for messages ("image").

    Returns:
        The upload's resolved path, the raw bytes of a `data:` URL (the client sent the picture
        itself; broken base64 gives b"", which core reports as unreadable), or None for no picture.

    Raises:
        gr.Error: a path outside the upload folder, any other URL, or a value of another type; the
            message names the input and never echoes the path.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        path, url = value.get("path"), value.get("url")
        if path:
            return _uploaded(path, name)
        if not url:
            return None
        value = url
    if isinstance(value, str):
        if value.startswith("data:"):
            return _data_url_bytes(value)
        return _uploaded(value, name)
    raise gr.Error(f"{name}: expected an uploaded picture, got {type(value).__name__}")


def is_upload(path: str | os.PathLike) -> bool:
    """True when `path`, with links and `..` resolved, is a file below Gradio's upload folder for this
    process, the check Gradio itself makes before an event (gradio.processing_utils._check_allowed)."""
    try:
        folder = Path(gradio_utils.get_upload_folder()).resolve()
        real = Path(os.path.abspath(os.fspath(path))).resolve()
        return real != folder and gradio_utils.is_in_or_equal(real, folder)
    except (OSError, RuntimeError, ValueError, TypeError):  # NUL bytes, link loops, not a path at all
        return False


def _uploaded(path: Any, name: str) -> str:
    """`path` resolved, when it is an upload; else gr.Error naming the input."""
    if not isinstance(path, (str, os.PathLike)) or not is_upload(path):
        raise gr.Error(NOT_AN_UPLOAD.format(name=name))
    return str(Path(os.path.abspath(os.fspath(path))).resolve())


def _data_url_bytes(url: str) -> bytes:
    """The bytes of a base64 `data:` URL; b"" when it has no data part or the base64 is broken."""
    if "," not in url:
        return b""
    try:
        return base64.b64decode(url.split(",", 1)[1])
    except ValueError:
        return b""
