"""Text to image tab: a prompt in, pictures out (default: our 32x32 emoji diffusion model).

    python demos/text_to_image.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/text_to_image.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

import core
from core import diffusion, models
from core.schedulers import SCHEDULERS
from core.seeds import MAX_SEED
from demos import ui

# The sliders offer exactly what core.diffusion accepts; sides are the emoji model's (16..64 px in
# steps of 8, native 32), known to core only once the model is loaded.
STEPS_RANGE, GUIDANCE_RANGE = diffusion.STEPS_RANGE, diffusion.GUIDANCE_RANGE
SIDE_RANGE, SIDE_STEP, SIDE_DEFAULT = (16, 64), 8, 32
EXAMPLES = ["red apple", "grinning face", "rocket", "japan flag", "slice of pizza", "sun with face"]
"""Unicode emoji names, as in data/emoji/metadata.jsonl: the words the emoji model was trained on."""


def settings_panel() -> list[gr.components.Component]:
    """The diffusion settings shared with the image-to-image tab, in `generate`'s argument order:
    negative prompt, model, sampler, steps, guidance scale, width, height, seed, batch size, upscale."""
    negative = gr.Textbox(label="Negative prompt", value="", placeholder="what to steer away from (optional)")
    with gr.Row():
        model = gr.Dropdown(models.names("text_to_image"), value=diffusion.DEFAULT_MODEL, label="Model")
        sampler = gr.Dropdown(list(SCHEDULERS), value=diffusion.DEFAULT_SCHEDULER, label="Sampler")
    with gr.Row():
        steps = gr.Slider(*STEPS_RANGE, value=diffusion.DEFAULT_STEPS, step=1, label="Steps")
        guidance = gr.Slider(*GUIDANCE_RANGE, value=diffusion.DEFAULT_GUIDANCE, step=0.1, label="Guidance scale",
                             info="1 turns guidance off; the emoji model is best at 3-6")
    with gr.Row():
        width = gr.Slider(*SIDE_RANGE, value=SIDE_DEFAULT, step=SIDE_STEP, label="Width (px)")
        height = gr.Slider(*SIDE_RANGE, value=SIDE_DEFAULT, step=SIDE_STEP, label="Height (px)")
    with gr.Row():
        seed = gr.Number(value=-1, precision=0, minimum=-1, maximum=MAX_SEED, label="Seed", info="-1 = random")
        batch = gr.Slider(1, diffusion.MAX_BATCH, value=1, step=1, label="Batch size")
    upscale = gr.Checkbox(value=True, label="Upscale x4", info="32 px becomes 128 px (realesr-animevideov3)")
    return [negative, model, sampler, steps, guidance, width, height, seed, batch, upscale]


def generate(prompt: str, negative_prompt: str, model: str, scheduler: str, steps: int, guidance_scale: float,
             width: int, height: int, seed: int, batch_size: int, upscale: bool, progress=gr.Progress()):
    """Draw pictures from a text prompt with a diffusion model (default: a 32x32 emoji model).

    Args:
        prompt: what to draw; the emoji model knows Unicode emoji names, e.g. "red apple", "rocket".
        negative_prompt: what to steer away from ("" for nothing).
        model: a registered text-to-image model name.
        scheduler: the sampler, e.g. "DDIM", "Euler a", "DPM++ 2M".
        steps: denoising steps, 1..100.
        guidance_scale: classifier-free guidance, 1..20 (1 = off).
        width: output width in px, 16..64, a multiple of 8.
        height: output height in px, 16..64, a multiple of 8.
        seed: -1 for random, else 0..4294967295; image i uses seed + i.
        batch_size: number of pictures, 1..16.
        upscale: enlarge each picture x4 with the default upscaler.

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    result = ui.call(core.text_to_image, prompt, progress=progress, negative_prompt=negative_prompt, model=model,
                     scheduler=scheduler, steps=steps, guidance_scale=guidance_scale, width=width,
                     height=height, seed=seed, batch_size=batch_size, upscale=upscale)
    return ui.show(result)


def build() -> gr.Blocks:
    """The text-to-image tab; its event is the API endpoint /text_to_image (only `prompt` is required)."""
    with gr.Blocks(title="Text to image") as tab:
        gr.Markdown("Describe an emoji by its name. The embedded model was trained here on the 1,911 "
                    "Unicode emoji at 32x32 px; *Upscale x4* makes them 128 px.")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", placeholder="red apple", lines=2)
                settings = settings_panel()
                go = gr.Button("Generate", variant="primary")
                gr.Examples([[text] for text in EXAMPLES], [prompt], label="Emoji names to try")
            with gr.Column():
                outputs = ui.result_panel("Pictures")

        gr.on([go.click, prompt.submit], generate, [prompt, *settings], list(outputs),
              api_name="text_to_image", **ui.ONE_AT_A_TIME)
    return tab


if __name__ == "__main__":
    build().launch()
