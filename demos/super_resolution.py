"""Super-resolution tab: enlarge a picture with a learned upscaler (Real-ESRGAN family), tile by tile.

    python demos/super_resolution.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/super_resolution.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

import core
from core import models, super_resolution
from demos import ui

MAX_SCALE = 8
TILE_MAX, TILE_STEP = 2048, 64  # core accepts tiles of 64..2048 input px; 0 here means "automatic"


def upscale(image: dict | None, model: str, scale: int, tile: int, overlap: int, progress=gr.Progress()):
    """Enlarge a picture with a learned upscaler, tile by tile.

    Args:
        image: the picture to enlarge (PNG, JPEG, WebP, ...; each side 8..4096 px; transparency kept).
        model: a registered upscaler name, e.g. "realesr-animevideov3-x4" (fast) or "RealESRGAN_x4plus" (photos).
        scale: output/input side ratio, 1..8; 0 means the model's own.
        tile: tile side in input px, 64..2048; 0 picks one automatically.
        overlap: px shared by neighbouring tiles, 0..tile/4, blended to hide seams.

    Returns:
        The enlarged picture, the same as a PNG file to download (parameters embedded), and the
        parameters applied.
    """
    result = ui.call(core.upscale, ui.image_source(image), progress=progress, unit="tiles", model=model,
                     scale=scale or None, tile=tile or None, overlap=overlap)
    path = ui.png_file(result.images[0], result.parameters, stem=f"upscaled-x{result.parameters['scale']}")
    return path, path, result.parameters


def build() -> gr.Blocks:
    """The super-resolution tab; its event is the API endpoint /upscale (only `image` is required)."""
    with gr.Blocks(title="Super-resolution") as tab:
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Low-res picture", type="filepath", image_mode=None, height=320)
                model = gr.Dropdown(models.names(super_resolution.KIND), value=super_resolution.DEFAULT_MODEL,
                                    label="Model")
                scale = gr.Slider(0, MAX_SCALE, value=0, step=1, label="Scale",
                                  info="0 = the model's own (x4 for the default); others add a Lanczos resize")
                with gr.Accordion("Advanced", open=False):
                    tile = gr.Slider(0, TILE_MAX, value=0, step=TILE_STEP, label="Tile (input px)",
                                     info="0 = automatic; smaller tiles use less memory")
                    overlap = gr.Slider(0, TILE_MAX // 4, value=16, step=1, label="Overlap (px)",
                                        info="at most a quarter of the tile")
                go = gr.Button("Upscale", variant="primary")
                with gr.Accordion("About the models", open=False):
                    gr.Markdown("\n".join(f"- **{name}**: {models.spec(super_resolution.KIND, name).description}"
                                          for name in models.names(super_resolution.KIND)))
            with gr.Column():
                result = gr.Image(label="Upscaled", type="filepath", format="png", height=480)
                download = gr.File(label="Download PNG")
                with gr.Accordion("Parameters applied", open=False):
                    parameters = gr.JSON(label="Parameters")

        # preprocess=False: the upload reaches core unopened, so a broken file gets core's message
        go.click(upscale, [image, model, scale, tile, overlap], [result, download, parameters],
                 api_name="upscale", preprocess=False, **ui.ONE_AT_A_TIME)
    return tab


if __name__ == "__main__":
    build().launch()
