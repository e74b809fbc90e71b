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
from core import CoreError, catalog
from demos import controlnet_panel, host, inputs, limits, serving, ui
from demos.diffusion_settings import call_args, panel

HIRES_KEYS = ("hires_scale", "hires_upscaler", "hires_strength", "hires_steps")
"""The Hires. fix inputs' settings names, in `hires_panel`'s order (after the shared panel's)."""
EXAMPLES = ["red apple", "grinning face", "rocket", "japan flag", "slice of pizza", "sun with face"]
"""Unicode emoji names, as in data/emoji/metadata.jsonl: the words the emoji model was trained on.
The host's examples ([text_to_image] examples, $IMAGEGEN_EXAMPLES_TEXT_TO_IMAGE) replace them."""


@controlnet_panel.takes_units
def generate(prompt: str, negative_prompt: str, model: str, scheduler: str, steps: int, guidance_scale: float,
             width: int, height: int, seed: int, batch_size: int, batch_count: int, upscale: str,
             lora_1: str = "", lora_1_weight: float = 1.0, lora_2: str = "", lora_2_weight: float = 1.0,
             lora_3: str = "", lora_3_weight: float = 1.0, hires_scale: float = 1.0,
             hires_upscaler: str = catalog.LANCZOS, hires_strength: float = 0.5, hires_steps: int = 0,
             request: gr.Request = None, progress=gr.Progress(), **control):
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
        hires_scale: AUTOMATIC1111's Hires. fix, 1..4 (1 = off): each picture is drawn at width x height,
            enlarged this many times (sides rounded to multiples of 8), then redrawn at that size with
            the same prompt and seed.
        hires_upscaler: what enlarges it: "Lanczos" (a plain resize) or an upscaler of the
            super-resolution list, e.g. "realesr-animevideov3-x4".
        hires_strength: 0.01..1, how much the redraw changes (A1111's "Denoising strength").
        hires_steps: the steps the redraw runs, 0..100 (0 = the same as `steps`).
        controlnet_1, controlnet_2: ControlNet files or folders of the models folder ("" for none; Stable
            Diffusion models only), each with _image (the control image, needed here), _preprocessor ("canny",
            "scribble", "none"), _weight (0..2), _start and _end (0..1, fractions of the steps) and
            _low_threshold, _high_threshold (Canny, 1..255).

    Returns:
        The pictures (with their seeds as captions), the seeds used, and the parameters applied.
    """
    limits.check_text("prompt", prompt)
    settings = call_args(negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
                         batch_count, upscale, lora_1, lora_1_weight, lora_2, lora_2_weight, lora_3, lora_3_weight)
    limits.check("hires steps", hires_steps, "steps")
    _check_hires_pixels(settings, hires_scale)
    return ui.show_files(ui.call(core.text_to_image, prompt, progress=progress, hires_scale=hires_scale,
                                 hires_upscaler=hires_upscaler, hires_strength=hires_strength, hires_steps=hires_steps,
                                 controlnets=controlnet_panel.units(control), **settings), "picture")


def _check_hires_pixels(settings: dict, scale: object) -> None:
    """Refuse a Hires. fix whose enlarged picture is over the host's pixels limit (the first pass's size is
    checked by call_args); values core refuses anyway (not numbers, an unknown model) are left to it.

    Raises:
        gr.Error: naming the hires size, the limit and its environment variable.
    """
    if not limits.finite_number(scale) or scale <= 1:
        return
    try:
        own = catalog.diffusion_settings(settings["model"])
    except CoreError:
        return
    sides = (settings["width"] or own.width, settings["height"] or own.height)
    if not all(limits.finite_number(side) for side in sides):
        return
    width, height = catalog.hires_size(sides, scale)
    limit = limits.current().pixels
    if width * height > limit:
        raise gr.Error(f"Hires. fix would make {width} x {height} px, over this demo's limit of {limit} pixels "
                       f"({limits.ENV['pixels']}): lower Upscale by (hires_scale) or the size.", print_exception=False)


def hires_panel() -> list[gr.components.Component]:
    """The "Hires. fix" accordion (closed): upscale by (1 = off), upscaler, denoising strength, hires
    steps. Ranges and the upscaler list (read when opened) from core.catalog.
    Returns the inputs in `generate`'s order."""
    limit = limits.current()
    with gr.Accordion("Hires. fix", open=False):
        gr.Markdown("Draw at the size above, enlarge, then redraw at the larger size with the same prompt and "
                    "seed (AUTOMATIC1111's *Hires. fix*).")
        with gr.Row():
            scale = inputs.slider(*catalog.HIRES_SCALE_RANGE, value=1.0, step=catalog.HIRES_SCALE_STEP,
                                  label="Upscale by", info="1 = off")
            upscaler = gr.Dropdown([catalog.LANCZOS, *catalog.BUNDLED_UPSCALERS], value=catalog.LANCZOS,
                                   label="Hires upscaler", scale=2, allow_custom_value=True,
                                   info="Lanczos resizes; the others are the super-resolution models")
            ui.refresh_button(upscaler, lambda: gr.Dropdown(choices=[catalog.LANCZOS, *catalog.upscalers()]))
        with gr.Row():
            strength = inputs.slider(*catalog.HIRES_STRENGTH_RANGE, value=catalog.HIRES_DEFAULTS["hires_strength"],
                                     step=0.01, label="Denoising strength", info="how much the redraw changes")
            steps = inputs.slider(0, min(catalog.HIRES_STEPS_RANGE[1], limit.steps), value=0, step=1,
                                  label="Hires steps", limit="steps", whole=True, note="0 = the same as Steps",
                                  info="steps the redraw runs; 0 = the same as Steps")
    return [scale, upscaler, strength, steps]


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
                fix = hires_panel()
                control = controlnet_panel.panel("Here each unit needs its control image.")
                go, stop = ui.run_buttons("Generate")
                gr.Examples([[text] for text in choices.examples or EXAMPLES], [prompt],
                            label="Prompts to try" if choices.examples else "Emoji names to try")
            with gr.Column():
                status = ui.status_line()
                outputs = ui.result_panel("Pictures")
                sends = ui.send_buttons(outputs[0], "image_to_image", "super_resolution", "png_info")

        # previews stream into the gallery (output 0 of 3) while the model works
        event = gr.on([go.click, prompt.submit], serving.guarded(generate, preview=(0, 3)),
                      [prompt, *settings, *fix], list(outputs), inputs_kwargs=control,
                      api_name="text_to_image", show_progress_on=status, **ui.GENERATOR)
        ui.stops(stop, event)
    tab.sends = sends
    tab.fills = ui.fill_slots(prompt, settings, **dict(zip(HIRES_KEYS, fix)), **control)  # PNG Info's "Send to"
    return tab


if __name__ == "__main__":
    build().launch()
