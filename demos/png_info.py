"""PNG Info tab: the generation parameters a picture carries (ours, AUTOMATIC1111's, ComfyUI's).

    python demos/png_info.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/png_info.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

import core
from demos import ui, uploads


def read_parameters(image: dict | str | None) -> tuple[str, dict | None, dict | None, dict | None]:
    """Read the generation parameters and the provenance marks embedded in a picture.

    Args:
        image: a PNG (text chunks tEXt, zTXt or iTXt, as this hub, AUTOMATIC1111, Forge or ComfyUI
            write them), or a JPEG/WebP with AUTOMATIC1111's EXIF UserComment.

    Returns:
        (AUTOMATIC1111's "parameters" text, "" for none; this hub's JSON of every applied parameter, or
        None; ComfyUI's raw {"prompt", "workflow"} texts, or None; the provenance marks, or None when
        the picture has none: {"xmp", "watermark", "content_credentials"} as core.read_provenance
        gives them). A picture with no or malformed metadata gives ("", None, None, None), not an error,
        and a gr.Info says so (another when only ComfyUI's chunks were found).
    """
    source = uploads.image_source(image)
    if source is None:
        return "", None, None, None
    found = core.read_parameters(source)
    text = found["text"] if found["a1111"] is not None else ""  # our older PNGs held JSON there: shown as ours
    marks = core.read_provenance(source)
    shown = marks if marks["xmp"] or marks["content_credentials"] or (marks["watermark"] or {}).get("found") else None
    if not (text or found["imagegen"] or found["comfyui"] or shown):
        gr.Info("This picture carries no generation parameters (of this hub, AUTOMATIC1111, Forge or ComfyUI) "
                "and no provenance mark; or it is not a picture these can be read from.")
    elif found["comfyui"] and not (text or found["imagegen"]):
        gr.Info("A ComfyUI picture: its prompt and workflow are under \"ComfyUI prompt and workflow\".")
    return text or "", found["imagegen"], found["comfyui"], shown


def build() -> gr.Blocks:
    """The PNG Info tab; its event is the API endpoint /read_parameters (only `image` is required). Its
    "Send to ..." buttons fill text to image or image to image with the picture's settings (and the
    picture), or send the picture to super-resolution (`ui.wire_fills`)."""
    with gr.Blocks(title="PNG Info") as tab:
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Picture", type="filepath", image_mode=None, height=320)
                gr.Markdown("Drop a PNG from this hub, AUTOMATIC1111, Forge or ComfyUI (or a JPEG/WebP from "
                            "AUTOMATIC1111) to see the settings it was made with.")
            with gr.Column():
                text = gr.Textbox(label="Parameters (AUTOMATIC1111)", lines=6, interactive=False)
                with gr.Accordion("All parameters (imagegen-hub JSON)", open=True):
                    ours = gr.JSON(label="imagegen-hub")
                with gr.Accordion("ComfyUI prompt and workflow (raw)", open=False):
                    comfyui = gr.JSON(label="ComfyUI")
                with gr.Accordion("Provenance: XMP, invisible watermark, Content Credentials (C2PA)", open=True):
                    gr.Markdown("This hub marks what it generates: see *Provenance* in the README. A manifest "
                                "of this hub reads *Valid* with an untrusted signer: its key is self-signed.")
                    marks = gr.JSON(label="Provenance")
                fill_sends = ui.fill_buttons(image, "text_to_image", "image_to_image", "super_resolution")

        # preprocess=False: the upload reaches core unopened (uploads.image_source checks it is one)
        image.change(read_parameters, [image], [text, ours, comfyui, marks], api_name="read_parameters",
                     preprocess=False)
    tab.receiver = image  # where other tabs' "Send to PNG Info" puts a picture
    tab.fill_sends = fill_sends  # "Send to text to image", ...: the picture's settings fill that tab (app.py wires them)
    return tab


if __name__ == "__main__":
    build().launch()
