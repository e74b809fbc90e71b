"""The tabs' picture inputs that hand the event what core reads: an image input whose upload reaches the event
unopened (`picture_input`), the image editor (`editor`), and what an editor's value holds (`picture`: its
background or composite; `painted`: its painted layers as one mask).

Uploads go through uploads.image_source (only files this server received); no model logic.
"""

from __future__ import annotations

import io
from typing import Any

import gradio as gr
from PIL import Image

import core
from demos import uploads


def picture_input(**kwargs: Any) -> gr.Image:
    """A gr.Image (filepath) whose value reaches the event unopened, as a FileData dict or None, also in an
    event that preprocesses its other inputs: pass it through `uploads.image_source`, so that a broken file
    gets core's message rather than Gradio's bare "error"."""
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    component.preprocess = lambda payload: None if payload is None else payload.model_dump()
    return component


def editor(**kwargs: Any) -> gr.ImageEditor:
    """A gr.ImageEditor whose value reaches the event as {"background", "layers", "composite"}: the files
    unopened (FileData dicts), as Gradio 6's page uploads its canvas and as an API call sends them, so that
    core reads them and names what it cannot; PIL images (Gradio's own preprocess) for a value sent as blobs
    under an id. Either way `picture` and `painted` read it."""
    component = gr.ImageEditor(type="pil", format="png", image_mode="RGBA", **kwargs)
    own = component.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is None or payload.id is not None:  # a canvas sent as blobs, under an id
            return own(payload)
        dump = (lambda file: None if file is None else file.model_dump())
        return {"background": dump(payload.background), "layers": [dump(layer) for layer in payload.layers],
                "composite": dump(payload.composite)}

    component.preprocess = preprocess
    return component


def picture(value: dict | None, first: str, *, drawn: bool = False) -> Any:
    """The picture of an editor value: its `first` ("background" or "composite"), else the other one; a PIL
    image from the page, an upload's path over the API. With `drawn` (a sketch), a value holding only
    painted layers gives them laid over white.

    Raises:
        gr.Error: naming `image` and the value's form, when the editor holds no picture (and, with `drawn`,
            nothing painted).
    """
    for key in (first, "composite" if first == "background" else "background"):
        found = value.get(key) if isinstance(value, dict) else None
        if found is not None:
            return found if isinstance(found, Image.Image) else uploads.image_source(found, "image")
    layers = painted(value) if drawn and isinstance(value, dict) else None
    if layers is not None:
        layer = (layers if isinstance(layers, Image.Image) else core.open_image(layers, name="image layers"))
        sheet = Image.new("RGBA", layer.size, "white")
        return Image.alpha_composite(sheet, layer.convert("RGBA")).convert("RGB")
    raise gr.Error("image: the editor holds no picture; upload one into it (over the API, send the editor's "
                   "value: {\"background\": handle_file(path), \"layers\": [], \"composite\": None})",
                   print_exception=False)


def painted(value: dict | None) -> Any:
    """The editor's painted layers as one mask (core reads an RGBA layer's alpha), None when nothing is
    painted (no layer, or only the empty layer the page's editor always sends): the one layer as it is, or
    several laid over each other.

    Raises:
        gr.Error: layers of different sizes.
    """
    sources = [layer if isinstance(layer, Image.Image) else uploads.image_source(layer, "image layers")
               for layer in (value or {}).get("layers") or [] if layer is not None]
    layers = [layer for layer in sources if not _blank(layer)]
    if len(layers) <= 1:
        return layers[0] if layers else None
    opened = [(layer if isinstance(layer, Image.Image) else core.open_image(layer, name="image layers")).convert("RGBA")
              for layer in layers]
    if len({layer.size for layer in opened}) > 1:
        raise gr.Error("image layers: the painted layers have different sizes; paint the mask on one layer",
                       print_exception=False)
    merged = opened[0]
    for layer in opened[1:]:
        merged = Image.alpha_composite(merged, layer)
    return merged


def _blank(layer: Image.Image | str | bytes) -> bool:
    """Whether editor layer `layer` (a PIL image, or an upload's path or bytes from uploads.image_source) has
    nothing painted on it: a picture with alpha, all of it fully transparent, as the page's editor sends its
    layer before any stroke. A layer that cannot be read is not blank (core then names what is wrong with it)."""
    if not isinstance(layer, Image.Image):
        try:
            with Image.open(layer if isinstance(layer, str) else io.BytesIO(layer)) as opened:
                return _blank(opened)
        except (OSError, ValueError):
            return False
    if layer.mode not in ("RGBA", "LA"):
        return False
    return layer.getchannel("A").getextrema()[1] == 0
