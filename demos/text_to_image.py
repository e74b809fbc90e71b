"""Text to image tab: a prompt in, pictures out (default: our 32x32 emoji model; or Stable Diffusion).

    python demos/text_to_image.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/text_to_image.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

import core
from demos import host, inputs, limits, serving, ui
from demos.diffusion_settings import call_args, panel

EXAMPLES = ["red apple", "grinning face", "rocket", "japan flag", "slice of pizza", "sun with face"]
"""Unicode emoji names, as in data/emoji/metadata.jsonl: the words the emoji model was trained on.
The host's examples ([text_to_image] examples, $IMAGEGEN_EXAMPLES_TEXT_TO_IMAGE) replace them."""


def generate(prompt: str, negative_prompt: str, model: str, scheduler: str, steps: int, guidance_scale: float,
             width: int, height: int, seed: int, batch_size: int, batch_count: int, upscale: str,
             lora_1: str = "", lora_1_weight: float = 1.0, lora_2: str = "", lora_2_weight: float = 1.0,
             lora_3: str = "", lora_3_weight: float = 1.0, request: gr.Request = None,
             progress=gr.Progress()):
    """Draw pictures from a text prompt with a diffusion model (default: a 32x32 emoji model).

    Args:
        prompt: what to draw; the emoji model knows Unicode emoji names, e.g. "red apple", "rocket".
        negative_prompt: what to steer away from ("" for nothing).
        model: the embedded emoji model, a checkpoint or diffusers folder in the models folder, or a
            Hugging Face repo id such as "stabilityai/sd-turbo".
        scheduler: the sampler, e.g. "DDIM", "Euler a", "DPM++ 2M Karras"; "" for the model's own.
        steps: denoising steps, 1..100; 0 for the model's own (e.g. 25, or 1 for Turbo models).
        guidance_scale: classifier-free guidance, 0..30 (1 or less = off); -1 for the model's own.
        width: output width in px (emoji 16..64, Stable Diffusion 64..2048), rounded to a multiple
            of 8; 0 for the model's native size.
        height: output height in px, as width.
        seed: -1 for random, else 0..4294967295; image i uses seed + i.
        batch_size: pictures per pass, 1..16.
        batch_count: passes in a row, 1..16.
        upscale: "on" or "off" (or true / false) to enlarge each picture x4 with the default upscaler;
            "" for the model's own (on for the 32-px emoji model, off for Stable Diffusion).
        lora_1, lora_2, lora_3: LoRA files in the models folder ("" for none).
        lora_1_weight, lora_2_weight, lora_3_weight: their weights, -4..4.

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    limits.check_text("prompt", prompt)
    settings = call_args(negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
                         batch_count, upscale, lora_1, lora_1_weight, lora_2, lora_2_weight, lora_3, lora_3_weight)
    return ui.show_files(ui.call(core.text_to_image, prompt, progress=progress, **settings), "picture")


def build() -> gr.Blocks:
    """The text-to-image tab; its event is the API endpoint /text_to_image (only `prompt` is required)."""
    choices = host.load()["text_to_image"]
    with gr.Blocks(title="Text to image") as tab:
        gr.Markdown("Describe an emoji by its name. The embedded model was trained here on the 1,911 "
                    "Unicode emoji at 32x32 px; *Upscale x4* makes them 128 px. Choose a Stable Diffusion "
                    "checkpoint or Hub id under *Model* for real pictures.")
        with gr.Row():
            with gr.Column():
                prompt = inputs.textbox(label="Prompt", placeholder="red apple", lines=2)  # non-text: core refuses
                settings = panel(tab, choices)
                go, stop = ui.run_buttons("Generate")
                gr.Examples([[text] for text in choices.examples or EXAMPLES], [prompt],
                            label="Prompts to try" if choices.examples else "Emoji names to try")
            with gr.Column():
                status = ui.status_line()
                outputs = ui.result_panel("Pictures")
                sends = ui.send_buttons(outputs[0], "image_to_image", "super_resolution", "png_info")

        # previews stream into the gallery (output 0 of 3) while the model works
        event = gr.on([go.click, prompt.submit], serving.guarded(generate, preview=(0, 3)), [prompt, *settings],
                      list(outputs),
                      api_name="text_to_image", show_progress_on=status, **ui.GENERATOR)
        ui.stops(stop, event)
    tab.sends = sends
    tab.fills = ui.fill_slots(prompt, settings)  # what PNG Info's "Send to text to image" fills
    return tab


if __name__ == "__main__":
    build().launch()
