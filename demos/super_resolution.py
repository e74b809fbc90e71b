"""Super-resolution tab: enlarge a picture with a learned upscaler (Real-ESRGAN family), tile by tile.

    python demos/super_resolution.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/super_resolution.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr
from PIL import Image

import core
from core import catalog
from demos import host, inputs, serving, ui, uploads

TILE_MAX, TILE_STEP = 2048, 64  # core accepts tiles of 64..2048 input px; 0 here means "automatic"
EXAMPLES = Path(__file__).resolve().parent / "examples"
"""Small photos to try (scikit-image's astronaut and chelsea, BSD-3-Clause; see examples/README.md)."""
PREVIEW_SIDE = 1536
"""The before/after slider shows at most this many px a side; the PNG download is full size."""


def upscale(image: dict | None, model: str, scale: float, tile: int, overlap: int, face_restoration: str = "",
            face_weight: float = 1.0, request: gr.Request = None, progress=gr.Progress()):
    """Enlarge a picture with a learned upscaler, tile by tile.

    Args:
        image: the picture to enlarge (PNG, JPEG, WebP, GIF, ...; each side 8..4096 px; transparency
            kept; 16-bit greyscale stays 16-bit in the PNG).
        model: a registered upscaler name, e.g. "realesr-animevideov3-x4" (fast) or "RealESRGAN_x4plus"
            (photos), or an upscaler file in the models folder.
        scale: output/input side ratio, 1..8 (e.g. 2.5); 0 means the model's own. Factors above the
            model's take two passes.
        tile: tile side in input px, 64..2048; 0 picks one automatically.
        overlap: px shared by neighbouring tiles, 0..tile/4, blended to hide seams.
        face_restoration: a face-restoration file in the models folder (GFPGAN, RestoreFormer, ...);
            each face found in the upscaled picture is redrawn and blended back; "" for none.
        face_weight: 0..1, how much of the restored face to keep.

    Returns:
        (before, after) for the comparison slider (bicubic vs the model, at most PREVIEW_SIDE px a
        side), the full-size lossless PNG to download (parameters embedded), and the parameters.
    """
    source = uploads.image_source(image)
    unit = "tiles, then faces" if face_restoration else "tiles"
    result = ui.call(core.upscale, source, progress=progress, unit=unit, model=model, scale=scale or None,
                     tile=tile or None, overlap=overlap, face_restoration=face_restoration or None,
                     face_weight=face_weight)
    after = result.images[0]
    path = ui.png_file(after, result.parameters, stem=f"upscaled-x{result.parameters['scale']:g}")
    return comparison(source, after), path, result.parameters


def comparison(source, after: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The input enlarged with bicubic and the model's output, both fitted in PREVIEW_SIDE px (8-bit)."""
    after = core.to_8bit(after)
    fitted = after.copy()
    fitted.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    before = core.to_8bit(core.open_image(source, grey=True)).resize(fitted.size, Image.Resampling.BICUBIC)
    return before, fitted


def build() -> gr.Blocks:
    """The super-resolution tab; its event is the API endpoint /upscale (only `image` is required)."""
    choices = host.load()["super_resolution"]
    with gr.Blocks(title="Super-resolution") as tab:
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Low-res picture", type="filepath", image_mode=None, height=320)
                with gr.Row():
                    model = gr.Dropdown(host.listed(list(catalog.BUNDLED_UPSCALERS), choices),
                                        value=choices.default_model,
                                        label="Model", info="scale and architecture in brackets", scale=4,
                                        allow_custom_value=True)  # API calls may name a file added since launch
                    ui.refresh_button(model, lambda: gr.Dropdown(choices=host.listed(catalog.upscalers(), choices)))
                scale = inputs.slider(0, catalog.MAX_SCALE, value=0, step=0.5, label="Scale",
                                  info="0 = the model's own; else 1..8: above the model's, two passes; "
                                       "below, a Lanczos resize")
                with gr.Accordion("Advanced", open=False):
                    tile = inputs.slider(0, TILE_MAX, value=0, step=TILE_STEP, label="Tile (input px)",
                                     info="0 = automatic; smaller tiles use less memory")
                    overlap = inputs.slider(0, TILE_MAX // 4, value=16, step=1, label="Overlap (px)",
                                        info="at most a quarter of the tile")
                restorer, weight = ui.face_restoration_controls(
                    "faces are found (upright, facing the camera), each redrawn at 512 px and blended back")
                go, stop = ui.run_buttons("Upscale")
                gr.Examples([[str(path)] for path in sorted(EXAMPLES.glob("*.png"))], [image], label="Photos to try")
                with gr.Accordion("About the models", open=False):
                    gr.Markdown("\n".join(f"- **{name}**: {description}"
                                          for name, description in catalog.upscaler_descriptions().items()))
            with gr.Column():
                status = ui.status_line()
                result = gr.ImageSlider(label="Bicubic | upscaled (preview, at most 1536 px a side)", type="pil",
                                        format="png", max_height=600, buttons=["fullscreen"])
                download = gr.File(label="Download the full-size PNG (parameters embedded)")
                with gr.Accordion("Parameters applied", open=False):
                    parameters = gr.JSON(label="Parameters")

        # preprocess=False: the upload reaches core unopened, so a broken file gets core's message
        event = go.click(serving.guarded(upscale), [image, model, scale, tile, overlap, restorer, weight],
                         [result, download, parameters], api_name="upscale", preprocess=False,
                         show_progress_on=status, **ui.GENERATOR)
        ui.stops(stop, event)
    tab.receiver = image  # where other tabs' "Send to super-resolution" puts a picture
    return tab


if __name__ == "__main__":
    build().launch()
