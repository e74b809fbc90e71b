"""Image to image tab: redraw a picture to match a prompt (SDEdit), or only the part of it a mask covers
(inpaint), a sketch drawn here (sketch to image), or the picture extended past its borders (outpaint).

    python demos/image_to_image.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as `python demos/image_to_image.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr
from PIL import Image, ImageDraw

import core
from core import catalog
from demos import controlnet_panel, editors, host, inputs, limits, serving, ui, uploads
from demos.diffusion_settings import LORA_ROWS, call_args, panel

SKETCHES = {  # start picture (a flat sketch drawn below) -> prompt
    "red disc": "red apple",
    "yellow disc": "grinning face",
    "orange wedge": "slice of pizza",
}


def sketch(name: str, size: int = 64) -> Image.Image:
    """One of the flat example sketches of SKETCHES, RGB `size` x `size` px on white."""
    picture = Image.new("RGB", (size, size), "white")
    draw, box = ImageDraw.Draw(picture), (size // 8, size // 8, size - size // 8, size - size // 8)
    if name == "orange wedge":
        draw.polygon([(size // 2, size - size // 8), (size // 8, size // 8), (size - size // 8, size // 8)], "orange")
    else:
        draw.ellipse(box, fill=name.split()[0])
    return picture


def example_rows(prompts: tuple[str, ...] | None = None) -> list[list[str | float]]:
    """Rows (start picture file, prompt, strength) for gr.Examples; the sketches are written once per process.
    `prompts` (the host's examples) replace SKETCHES' prompts, each paired with the sketches in turn."""
    folder = ui.output_dir() / "examples"
    folder.mkdir(exist_ok=True)
    paths = []
    for name in SKETCHES:
        path = folder / f"{name.replace(' ', '-')}.png"
        if not path.is_file():
            sketch(name).save(path)
        paths.append(str(path))
    pairs = zip(paths, SKETCHES.values()) if prompts is None else (
        (paths[i % len(paths)], prompt) for i, prompt in enumerate(prompts))
    return [[path, prompt, 0.7] for path, prompt in pairs]


SETTINGS = (*ui.PANEL_KEYS, *(f"lora_{i}{end}" for i in range(1, LORA_ROWS + 1) for end in ("", "_weight")))
"""The shared panel's inputs by API name, in its order; the new endpoints take them by name (inputs_kwargs)."""
MODES = {"image": "Generate", "inpaint": "Inpaint", "sketch": "Generate from sketch", "outpaint": "Outpaint"}
"""The tab's modes (sub-tab id -> its run button's label); the button of the mode shown is the one visible."""
LABELS = {"whole": "Whole picture", "masked": "Only masked", "noise": "latent noise",
          "edge": "edge (stretch the border)"}
"""Labels of core's choices where A1111's words differ from core's values (the API takes the values)."""


def labelled(choices: tuple[str, ...], **labels: str) -> list[tuple[str, str]]:
    """(label, value) for each of core's `choices`, every one offered, in core's order; `labels` replace LABELS'."""
    return [({**LABELS, **labels}.get(value, value), value) for value in choices]


PICK_VISIBLE_RUN = """() => { const run = [...document.querySelectorAll('button.i2i-run')]
    .find(button => button.offsetParent !== null); if (run) run.click(); }"""
"""Enter in the prompt presses the run button of the mode shown (each mode has its own endpoint)."""


@controlnet_panel.takes_units
def generate(image: dict | None, prompt: str, strength: float, negative_prompt: str, model: str, scheduler: str,
             steps: int, guidance_scale: float, width: int, height: int, seed: int, batch_size: int,
             batch_count: int, upscale: str, lora_1: str = "", lora_1_weight: float = 1.0, lora_2: str = "",
             lora_2_weight: float = 1.0, lora_3: str = "", lora_3_weight: float = 1.0,
             request: gr.Request = None, progress=gr.Progress(), **control):
    """Redraw a picture to match a prompt: noise it to `strength`, then denoise it toward the prompt.

    Args:
        image: the starting picture (PNG, JPEG, WebP, ...; each side 8..4096 px).
        prompt: what the result should show, e.g. "red apple".
        strength: 0.01..1, how much to change: near 0 keeps the picture, 1 ignores it.
        steps: denoising steps at strength 1, 1..100 (int(strength * steps) are run).
        negative_prompt, model, scheduler, guidance_scale, width, height, seed, batch_size, batch_count,
        upscale, lora_1, lora_1_weight, lora_2, lora_2_weight, lora_3, lora_3_weight: as for text to
            image (the picture is resized to width x height).
        controlnet_1, controlnet_2: ControlNet files or folders of the models folder ("" for none; Stable
            Diffusion models only), each with _image (the control image; none: the picture itself),
            _preprocessor ("canny", "scribble", "none"), _weight (0..2), _start and _end (0..1, fractions
            of the steps) and _low_threshold, _high_threshold (Canny, 1..255).

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    settings = call_args(negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
                         batch_count, upscale, lora_1, lora_1_weight, lora_2, lora_2_weight, lora_3, lora_3_weight)
    return _redraw(core.image_to_image, uploads.image_source(image), prompt, settings, control, progress,
                   strength=strength)


@controlnet_panel.takes_units
def inpaint(image: dict | None, prompt: str, mask: Any = None, strength: float = 0.75, mask_blur: int = 4,
            inpaint_area: str = "whole", inpaint_padding: int = 32, masked_content: str = "original",
            request: gr.Request = None, progress=gr.Progress(), **settings):
    """Redraw only the masked part of a picture; every pixel the blurred mask does not reach is kept exactly.

    Args:
        image: the picture, as the image editor sends it: {"background": picture file, "layers": [painted
            layer files], "composite": ...}; the layers' painted pixels are the mask when `mask` is None.
        prompt: what the masked part should show, e.g. "grinning face".
        mask: a picture of the same size (white = redraw), or None for the painted layers.
        strength: 0.01..1, how much the masked part changes (A1111's "Denoising strength").
        mask_blur: 0..64 px, the softened edge of the mask.
        inpaint_area: "whole" (the whole picture at the working size) or "masked" (only the mask's box, grown
            by inpaint_padding px, redrawn at the working size and pasted back: A1111's "Only masked").
        inpaint_padding: 0..256 px around the mask for "masked".
        masked_content: what the masked part starts from: "original", "fill" (the colours around it) or
            "noise" (A1111's "latent noise").
        negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
        batch_count, upscale, lora_1 ... lora_3_weight, controlnet_1 ...: as for /image_to_image (width x
            height is the working size; the result keeps the picture's size).

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    picture, painted = editors.picture(image, "background"), editors.painted(image)
    if mask is not None and painted is not None:
        raise gr.Error("mask: a mask is painted over the picture and a mask picture is uploaded too; keep one: "
                       "clear the painted strokes (the editor's eraser or trash button) or remove the uploaded mask",
                       print_exception=False)
    mask = uploads.image_source(mask, "mask") if mask is not None else painted
    if mask is None:
        raise gr.Error("mask: paint the part to redraw over the picture, or upload a mask picture (white = redraw)",
                       print_exception=False)
    return _redraw(core.image_to_image, picture, prompt, _settings(settings, masked=True), settings, progress,
                   strength=strength, mask=mask, mask_blur=mask_blur, inpaint_area=inpaint_area,
                   inpaint_padding=inpaint_padding, masked_content=masked_content)


@controlnet_panel.takes_units
def sketch_to_image(image: dict | None, prompt: str, strength: float = 0.8, request: gr.Request = None,
                    progress=gr.Progress(), **settings):
    """Draw a picture from a sketch: the sketch (its strokes over its background, on white) redrawn toward the
    prompt at `strength` (SDEdit); with a scribble ControlNet and no control image, the sketch also steers it.

    Args:
        image: the sketch, as the image editor sends it: {"background": ..., "layers": [...], "composite":
            the drawing}; a plain picture file works as "background", and layers alone are drawn on white.
        prompt: what the sketch shows, e.g. "red apple".
        strength: 0.01..1, how far the result may go from the sketch.
        negative_prompt ... controlnet_1 ...: as for /image_to_image.

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    sketched = editors.picture(image, "composite", drawn=True)
    return _redraw(core.image_to_image, sketched, prompt, _settings(settings), settings, progress, strength=strength)


@controlnet_panel.takes_units
def outpaint(image: dict | None, prompt: str, left: int = 0, right: int = 32, top: int = 0, bottom: int = 0,
             fill: str = "edge", mask_blur: int = 4, strength: float = 1.0, request: gr.Request = None,
             progress=gr.Progress(), **settings):
    """Extend a picture past its borders: the new area is drawn to match the picture and the prompt.

    Args:
        image: the picture to extend.
        prompt: what the whole extended picture should show.
        left, right, top, bottom: px to add on each side (at least one over 0); each side of the extended
            picture at most 4096 px.
        fill: what the new area starts from: "edge" (the border pixels stretched outward) or "noise".
        mask_blur: 0..64 px; the new area reaches 2 x mask_blur px into the picture, so the seam is redrawn.
        strength: 0.01..1 (1: the new area is drawn anew).
        negative_prompt, model, scheduler, steps, guidance_scale, seed, batch_size, batch_count, upscale,
        lora_1 ... lora_3_weight, controlnet_1 ...: as for /image_to_image (width x height is the working
            size; 0 for the extended picture's own, scaled down to fit the model's sides; the result has the
            extended size).

    Returns:
        The pictures of the extended size (with their seeds as captions), the seeds used, and the parameters.
    """
    args = _settings(settings, masked=True)  # width, height: the working size (None: core's working_size)
    return _redraw(core.outpaint, uploads.image_source(image), prompt, args, settings, progress, left=left,
                   right=right, top=top, bottom=bottom, fill=fill, mask_blur=mask_blur, strength=strength)


def _settings(values: dict[str, Any], masked: bool = False) -> dict[str, Any]:
    """The shared panel's values (by their SETTINGS names) as core keyword arguments (call_args; `masked`:
    inpainting or outpainting, where "the model's own" upscale is off)."""
    return call_args(*(values[name] for name in SETTINGS), masked=masked)


def _redraw(fn: Callable[..., core.Result], picture: Any, prompt: str, settings: dict[str, Any],
            control: dict[str, Any], progress: gr.Progress | None, **kwargs: Any):
    """core's `fn(picture, prompt, ...)` with the panel's `settings` (core keyword arguments), the ControlNet
    units of `control` (controlnet_panel.units) and `kwargs`, shown as the tab's outputs."""
    limits.check_text("prompt", prompt)
    return ui.show_files(ui.call(fn, picture, prompt, progress=progress, controlnets=controlnet_panel.units(control),
                                 **kwargs, **settings), "picture")


def _copied(value: dict | None) -> tuple:
    """A new start picture (an upload, a send, an example) also becomes the picture of Outpaint, and the tab
    shows Redraw (run buttons: see `_shown`). Not the Inpaint editor's: a picture set from here leaves it
    without a layer to paint on (Gradio 6.31), so the mask could not be painted."""
    path = uploads.image_source(value) if value else None
    if not isinstance(path, str):
        return (gr.skip(),) * (2 + len(MODES))
    return (path, gr.Tabs(selected="image"), *_shown("image"))


def _shown(mode: str) -> list[gr.Button]:
    """Updates of the run buttons (MODES' order): only that of `mode` is visible."""
    return [gr.Button(visible=name == mode) for name in MODES]


def build() -> gr.Blocks:
    """The image-to-image tab; its events are the API endpoints /image_to_image (`image`, `prompt` required),
    /inpaint (`image`, `prompt`, `mask`), /sketch_to_image and /outpaint (`image`, `prompt`)."""
    choices = host.load()["image_to_image"]
    with gr.Blocks(title="Image to image") as tab:
        gr.Markdown("Start from a picture and a prompt. *Redraw* redraws all of it (noised by *Strength*); "
                    "*Inpaint* only what you paint over it; *Sketch* draws from your drawing; *Outpaint* extends "
                    "the picture past its borders.")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", placeholder="red apple", lines=2)
                with gr.Tabs(selected="image") as modes:
                    with gr.Tab("Redraw", id="image") as image_mode:
                        with gr.Row(equal_height=True):
                            image = gr.Image(label="Start picture", type="filepath", image_mode=None, height=220)
                            strength = inputs.slider(0.05, 1.0, value=0.6, step=0.05, label="Strength",
                                                     info="low keeps the picture, 1 ignores it")
                        gr.Examples(example_rows(choices.examples), [image, prompt, strength],
                                    label="Sketches to redraw")
                    with gr.Tab("Inpaint", id="inpaint") as inpaint_mode:
                        canvas = editors.editor(label="Picture and mask", height=360, sources=("upload", "clipboard"),
                                        brush=gr.Brush(default_size=6, colors=["#ff00ff", "#ffffff", "#000000"],
                                                       color_mode="fixed"),
                                        eraser=gr.Eraser(), layers=False, transforms=())
                        gr.Markdown("Upload the picture, then paint over what to redraw (any colour; the eraser "
                                    "takes paint away).")
                        with gr.Accordion("Upload a mask instead", open=False):
                            mask = editors.picture_input(label="Mask (white = redraw)", height=160)
                        with gr.Row():
                            inpaint_strength = inputs.slider(*catalog.STRENGTH_RANGE, value=0.75, step=0.01,
                                                             label="Denoising strength",
                                                             info="how much the masked part changes")
                            mask_blur = inputs.slider(*catalog.MASK_BLUR_RANGE, value=4, step=1, whole=True,
                                                      label="Mask blur", info="px of softened edge")
                        with gr.Row():
                            area = inputs.radio(labelled(catalog.INPAINT_AREAS), value="whole", label="Inpaint area")
                            padding = inputs.slider(*catalog.INPAINT_PADDING_RANGE, value=32, step=4, whole=True,
                                                    label="Only masked padding (px)")
                        content = inputs.radio(labelled(catalog.MASKED_CONTENTS), value="original",
                                               label="Masked content")
                    with gr.Tab("Sketch", id="sketch") as sketch_mode:
                        sketch = editors.editor(label="Sketch", height=420, canvas_size=(512, 512),
                                        sources=("upload", "clipboard"), layers=False, transforms=(),
                                        brush=gr.Brush(default_size=12, colors=["#000000", "#cc3232", "#f2c21b",
                                                                                "#32a852", "#3270cc", "#8b4513"]))
                        gr.Markdown("Draw in colour on the blank canvas, or over an uploaded picture. With a "
                                    "*scribble* ControlNet below (preprocessor *scribble*, no control image), "
                                    "the sketch also steers the drawing.")
                        sketch_strength = inputs.slider(*catalog.STRENGTH_RANGE, value=0.8, step=0.01,
                                                        label="Sketch strength",
                                                        info="how far the picture may go from the sketch")
                    with gr.Tab("Outpaint", id="outpaint") as outpaint_mode:
                        extend = editors.picture_input(label="Picture to extend", height=220)
                        with gr.Row():
                            # px per side up to the largest side any model takes (core's own limit)
                            sides = [inputs.slider(0, catalog.SD_SIDES[1], value=value, step=catalog.SIDE_STEP,
                                                   whole=True, label=f"{name} (px)")
                                     for name, value in (("Left", 0), ("Right", 32), ("Top", 0), ("Bottom", 0))]
                        with gr.Row():
                            fill = inputs.radio(labelled(catalog.OUTPAINT_FILLS, noise="noise"), value="edge",
                                                label="Fill")
                            seam = inputs.slider(*catalog.MASK_BLUR_RANGE, value=4, step=1, whole=True,
                                                 label="Seam blur (px)",
                                                 info="mask blur; the seam is redrawn 2x this far in")
                            outpaint_strength = inputs.slider(*catalog.STRENGTH_RANGE, value=1.0, step=0.01,
                                                              label="Outpaint strength")
                settings = panel(tab, choices)
                control = controlnet_panel.panel("In this tab a unit without a control image follows the "
                                                 "picture itself (in *Sketch*: the sketch).")
                with gr.Row():
                    runs = {mode: gr.Button(label, variant="primary", scale=3, visible=mode == "image",
                                            elem_classes="i2i-run") for mode, label in MODES.items()}
                    stop = gr.Button("Stop", variant="stop", scale=1, min_width=80)
            with gr.Column():
                status = ui.status_line()
                outputs = ui.result_panel("Pictures")
                sends = ui.send_buttons(outputs[0], "image_to_image", "super_resolution", "png_info")

        # previews stream into the gallery (output 0 of 3) while the model works
        served = {"outputs": list(outputs), "show_progress_on": status, **ui.GENERATOR}
        named = {**dict(zip(SETTINGS, settings)), **control}
        events = [
            # preprocess=False: the upload reaches core unopened, so a broken file gets core's message
            runs["image"].click(serving.guarded(generate, preview=(0, 3)), [image, prompt, strength, *settings],
                                inputs_kwargs=control, api_name="image_to_image", preprocess=False, **served),
            # the editors need Gradio's preprocess (the page sends them as blobs); picture inputs skip it
            runs["inpaint"].click(serving.guarded(inpaint, preview=(0, 3)),
                                  [canvas, prompt, mask, inpaint_strength, mask_blur, area, padding, content],
                                  inputs_kwargs=named, api_name="inpaint", **served),
            runs["sketch"].click(serving.guarded(sketch_to_image, preview=(0, 3)), [sketch, prompt, sketch_strength],
                                 inputs_kwargs=named, api_name="sketch_to_image", **served),
            runs["outpaint"].click(serving.guarded(outpaint, preview=(0, 3)),
                                   [extend, prompt, *sides, fill, seam, outpaint_strength], inputs_kwargs=named,
                                   api_name="outpaint", **served)]
        ui.stops(stop, *events)
        prompt.submit(None, None, None, js=PICK_VISIBLE_RUN, **ui.QUIET)
        for mode, sub_tab in (("image", image_mode), ("inpaint", inpaint_mode), ("sketch", sketch_mode),
                              ("outpaint", outpaint_mode)):
            sub_tab.select(lambda mode=mode: _shown(mode), None, list(runs.values()), **ui.QUIET)
        image.change(_copied, image, [extend, modes, *runs.values()], preprocess=False, **ui.QUIET)
    tab.sends = sends
    tab.receiver = image  # where "Send to image to image" puts a picture
    # PNG Info's "Send to image to image": the settings, and those of the Inpaint and Outpaint sub-tabs
    tab.fills = ui.fill_slots(prompt, settings, strength=strength, image=image, mask_blur=mask_blur,
                              inpaint_area=area, inpaint_padding=padding, masked_content=content,
                              **dict(zip(catalog.OUTPAINT_SIDES, sides)), fill=fill, **control)
    return tab


if __name__ == "__main__":
    build().launch()
