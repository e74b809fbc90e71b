"""Image to image tab: redraw a picture to match a prompt (SDEdit on the emoji diffusion model).

    python demos/image_to_image.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/image_to_image.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr
from PIL import Image, ImageDraw

import core
from demos import host, inputs, limits, serving, ui, uploads
from demos.diffusion_settings import call_args, panel

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


def generate(image: dict | None, prompt: str, strength: float, negative_prompt: str, model: str, scheduler: str,
             steps: int, guidance_scale: float, width: int, height: int, seed: int, batch_size: int,
             batch_count: int, upscale: str, lora_1: str = "", lora_1_weight: float = 1.0, lora_2: str = "",
             lora_2_weight: float = 1.0, lora_3: str = "", lora_3_weight: float = 1.0,
             request: gr.Request = None, progress=gr.Progress()):
    """Redraw a picture to match a prompt: noise it to `strength`, then denoise it toward the prompt.

    Args:
        image: the starting picture (PNG, JPEG, WebP, ...; each side 8..4096 px).
        prompt: what the result should show, e.g. "red apple".
        strength: 0.01..1, how much to change: near 0 keeps the picture, 1 ignores it.
        steps: denoising steps at strength 1, 1..100 (int(strength * steps) are run).
        negative_prompt, model, scheduler, guidance_scale, width, height, seed, batch_size, batch_count,
        upscale, lora_1, lora_1_weight, lora_2, lora_2_weight, lora_3, lora_3_weight: as for text to
            image (the picture is resized to width x height).

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    limits.check_text("prompt", prompt)
    settings = call_args(negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
                         batch_count, upscale, lora_1, lora_1_weight, lora_2, lora_2_weight, lora_3, lora_3_weight)
    return ui.show_files(ui.call(core.image_to_image, uploads.image_source(image), prompt, progress=progress,
                                 strength=strength, **settings), "picture")


def build() -> gr.Blocks:
    """The image-to-image tab; its event is the API endpoint /image_to_image (`image` and `prompt` required)."""
    choices = host.load()["image_to_image"]
    with gr.Blocks(title="Image to image") as tab:
        gr.Markdown("Start from a picture and a prompt. The picture is resized to the output size and "
                    "noised by *Strength*; the model then redraws it toward the prompt.")
        with gr.Row():
            with gr.Column():
                with gr.Row(equal_height=True):
                    image = gr.Image(label="Start picture", type="filepath", image_mode=None, height=220)
                    with gr.Column():
                        prompt = gr.Textbox(label="Prompt", placeholder="red apple", lines=2)
                        strength = inputs.slider(0.05, 1.0, value=0.6, step=0.05, label="Strength",
                                             info="low keeps the picture, 1 ignores it")
                settings = panel(tab, choices)
                go, stop = ui.run_buttons("Generate")
                gr.Examples(example_rows(choices.examples), [image, prompt, strength], label="Sketches to redraw")
            with gr.Column():
                status = ui.status_line()
                outputs = ui.result_panel("Pictures")
                sends = ui.send_buttons(outputs[0], "image_to_image", "super_resolution", "png_info")

        # preprocess=False: the upload reaches core unopened, so a broken file gets core's message
        # previews stream into the gallery (output 0 of 3) while the model works
        event = gr.on([go.click, prompt.submit], serving.guarded(generate, preview=(0, 3)),
                      [image, prompt, strength, *settings],
                      list(outputs), api_name="image_to_image", preprocess=False, show_progress_on=status,
                      **ui.GENERATOR)
        ui.stops(stop, event)
    tab.sends = sends
    tab.receiver = image  # where "Send to image to image" puts a picture
    tab.fills = ui.fill_slots(prompt, settings, strength=strength, image=image)  # PNG Info's "Send to ..."
    return tab


if __name__ == "__main__":
    build().launch()
