"""The diffusion settings both diffusion tabs share: model, sampler, steps, guidance, size, seed,
batches, LoRAs, upscale; the model list's refresh button; controls that follow the chosen model.

No model logic: the choices and the suggested values come from core.diffusion.
"""

from __future__ import annotations

import gradio as gr

from core import diffusion
from core.errors import CoreError
from core.lora import WEIGHT_RANGE
from core.model_files import scan
from core.schedulers import SCHEDULERS
from core.seeds import MAX_SEED

LORA_ROWS = 3
UNTOUCHED = diffusion.suggested_settings(diffusion.DEFAULT_MODEL)  # scheduler, steps, guidance, size, upscale
"""The panel's first values (the emoji model's). With another model, a control still at its first
value takes that model's own setting: an API call that names only a model gets it at its native
size, steps, guidance and sampler, as the page does when the model is picked."""
SIDE_RANGE, SIDE_STEP = (16, 2048), 8
"""Width/height sliders span every model; core checks each model's own range (emoji 16..64,
Stable Diffusion 64..2048) and rounds sides that are not a multiple of 8."""


def panel() -> list[gr.components.Component]:
    """Build the settings inside the current Blocks and wire their events; returns the inputs in
    `call_args` order: negative prompt, model, sampler, steps, guidance, width, height, seed,
    batch size, batch count, upscale, then (LoRA file, weight) x LORA_ROWS."""
    negative = gr.Textbox(label="Negative prompt", value="", placeholder="what to steer away from (optional)")
    with gr.Row():
        model = gr.Dropdown(diffusion.choices(), value=diffusion.DEFAULT_MODEL, label="Model", scale=4,
                            allow_custom_value=True,
                            info="embedded emoji model, checkpoints in models/, or a Hub id (org/name)")
        refresh = gr.Button("Refresh list", scale=0, min_width=110, size="sm")
        sampler = gr.Dropdown(list(SCHEDULERS), value=UNTOUCHED["scheduler"], label="Sampler", scale=2)
    with gr.Row():
        steps = gr.Slider(*diffusion.STEPS_RANGE, value=UNTOUCHED["steps"], step=1, label="Steps")
        guidance = gr.Slider(*diffusion.GUIDANCE_RANGE, value=UNTOUCHED["guidance_scale"], step=0.1,
                             label="Guidance scale (CFG)", info="1 or less turns guidance off")
    with gr.Row():
        width = gr.Slider(*SIDE_RANGE, value=UNTOUCHED["width"], step=SIDE_STEP, label="Width (px)")
        height = gr.Slider(*SIDE_RANGE, value=UNTOUCHED["height"], step=SIDE_STEP, label="Height (px)")
    with gr.Row():
        seed = gr.Number(value=-1, precision=0, minimum=-1, maximum=MAX_SEED, label="Seed", info="-1 = random")
        batch = gr.Slider(1, diffusion.MAX_BATCH, value=1, step=1, label="Batch size")
        count = gr.Slider(1, diffusion.MAX_BATCH_COUNT, value=1, step=1, label="Batch count")
    upscale = gr.Checkbox(value=UNTOUCHED["upscale"], label="Upscale x4",
                          info="x4 with the default upscaler (realesr-animevideov3)")
    loras: list[gr.components.Component] = []
    with gr.Accordion("LoRA (Stable Diffusion models)", open=False):
        for i in range(LORA_ROWS):
            with gr.Row():
                loras.append(gr.Dropdown(["", *scan("lora")], value="", label=f"LoRA {i + 1}", scale=3,
                                         allow_custom_value=True))
                loras.append(gr.Slider(*WEIGHT_RANGE, value=1.0, step=0.05, label="Weight", scale=2))

    def follow(name: str):
        s = diffusion.suggested_settings(name)
        return (gr.update(value=s["scheduler"]), gr.update(value=s["steps"]), gr.update(value=s["guidance_scale"]),
                gr.update(value=s["width"]), gr.update(value=s["height"]), gr.update(value=s["upscale"]))

    def refreshed(name: str):
        lora_update = gr.update(choices=["", *scan("lora")])
        return gr.update(choices=diffusion.choices(), value=name), *[lora_update] * LORA_ROWS

    model.input(follow, model, [sampler, steps, guidance, width, height, upscale], api_name=False, queue=False)
    refresh.click(refreshed, model, [model, *loras[::2]], api_name=False, queue=False)
    return [negative, model, sampler, steps, guidance, width, height, seed, batch, count, upscale, *loras]


def call_args(negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
              batch_count, upscale, *lora_rows) -> dict:
    """The panel's values as core keyword arguments (LoRA rows become [(file, weight), ...]); with a
    model other than the emoji one, controls still at their UNTOUCHED values take the model's own."""
    pairs = [(lora_rows[i], lora_rows[i + 1]) for i in range(0, len(lora_rows), 2) if lora_rows[i]]
    args = {"negative_prompt": negative_prompt, "model": model, "scheduler": scheduler, "steps": steps,
            "guidance_scale": guidance_scale, "width": width, "height": height, "seed": seed,
            "batch_size": batch_size, "batch_count": batch_count, "upscale": upscale, "loras": pairs}
    untouched = [key for key, first in UNTOUCHED.items() if args[key] == first]
    if untouched and isinstance(model, str) and model not in ("", diffusion.DEFAULT_MODEL):
        try:
            own = diffusion.suggested_settings(model)
        except CoreError:
            return args  # core's own call reports what is wrong with the model
        args.update({key: own[key] for key in untouched})
    return args
