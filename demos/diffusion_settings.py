"""The diffusion settings both diffusion tabs share: model, sampler, steps, guidance, size, seed,
batches, LoRAs, upscale; the model list's refresh button; controls that follow the chosen model.

A control left at "the model's own" (steps 0, size 0, guidance -1, sampler and upscale "the
model's own") takes the chosen model's setting, and its label says which; a value the user set is
sent as it is, never replaced, even when it equals some model's own. API calls that leave a setting
out get the model's own the same way; upscale also takes true and false, as core does.
No model logic: choices, defaults and ranges come from core.catalog; the model the list opens on
and the extra models it offers are the host's (demos.host).
"""

from __future__ import annotations

import math

import gradio as gr

from core import CoreError, catalog
from demos import host, inputs, limits, ui

LORA_ROWS = 3
OWN = ""
"""The value of a list control that means "the model's own"."""
OWN_GUIDANCE = -1.0
"""The guidance value that means "the model's own" (0 is a real choice: Turbo models run without)."""
UPSCALE_CHOICES = ("on", "off")
UPSCALE_LABEL = "Upscale x4"


def _labels(s: catalog.DiffusionSettings) -> dict[str, str]:
    """The texts that name a model's own settings beside the controls."""
    return {"steps": f"0 = the model's own ({s.steps})",
            "guidance": f"-1 = the model's own ({s.guidance_scale:g}); 0..1 turns guidance off",
            "size": f"0 = the model's native {s.width} px; {s.sides[0]}..{s.sides[1]}, multiples of {catalog.SIDE_STEP}",
            "sampler": f"the model's own ({s.scheduler})",
            "upscale": f"the model's own ({'on; in/outpaint: off' if s.upscale else 'off'})"}


def panel(tab: gr.Blocks, choices: host.TabChoices | None = None) -> list[gr.components.Component]:
    """Build the settings inside `tab` (the Blocks being built) and wire their events. The model list
    opens on `choices.default_model` and also offers `choices.models` (None: the embedded model and
    the catalog's list), and the "model's own" labels are that model's from the start. When the page
    loads and whenever the model changes, ranges, samplers and labels follow the chosen model (the
    API keeps the widest ranges and every sampler, so any model can be called; core checks each
    model's own). Returns the inputs in
    `call_args` order: negative prompt, model, sampler, steps, guidance, width, height, seed,
    batch size, batch count, upscale, then (LoRA file, weight) x LORA_ROWS."""
    choices = choices or host.TabChoices(catalog.DEFAULT_DIFFUSION_MODEL)
    first = _first_settings(choices.default_model)
    limit = limits.current()
    text = _labels(first)
    negative = inputs.textbox(label="Negative prompt", value="", placeholder="what to steer away from (optional)")
    with gr.Row():
        model = gr.Dropdown(host.listed([catalog.DEFAULT_DIFFUSION_MODEL, *catalog.HUB_MODELS], choices),
                            value=choices.default_model, label="Model", scale=4, allow_custom_value=True,
                            info="embedded emoji model, checkpoints in models/, or a Hub id (org/name)")
        ui.refresh_button(model, lambda: gr.Dropdown(choices=host.listed(catalog.diffusion_models(), choices)))
    with gr.Row():
        sampler = gr.Dropdown([(text["sampler"], OWN), *catalog.SAMPLERS], value=OWN, label="Sampler",
                              allow_custom_value=True)  # core names what it refuses, with the sampler list
        upscale = _upscale_control([(text["upscale"], OWN), *UPSCALE_CHOICES], value=OWN, label=UPSCALE_LABEL,
                                   info="with the default upscaler (realesr-animevideov3)")
    with gr.Row():
        steps = inputs.slider(0, min(catalog.STEPS_RANGE[1], limit.steps), value=0, step=1, label="Steps",
                              limit="steps", whole=True, note="0 = the model's own", info=text["steps"])
        guidance = inputs.slider(OWN_GUIDANCE, catalog.GUIDANCE_RANGE[1], value=OWN_GUIDANCE, step=0.5,
                             label="Guidance scale (CFG)", info=text["guidance"])
    with gr.Row():
        width = inputs.slider(0, _side_max(catalog.SD_SIDES[1]), value=0, step=catalog.SIDE_STEP, label="Width (px)", info=text["size"])
        height = inputs.slider(0, _side_max(catalog.SD_SIDES[1]), value=0, step=catalog.SIDE_STEP, label="Height (px)",
                           info=text["size"])
    with gr.Row():
        seed = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed", info="-1 = random")
        batch = inputs.slider(1, min(catalog.MAX_BATCH, limit.images), value=1, step=1, label="Batch size",
                              limit="images")
        count = inputs.slider(1, min(catalog.MAX_BATCH_COUNT, limit.images), value=1, step=1, label="Batch count",
                              limit="images")
    loras: list[gr.components.Component] = []
    with gr.Accordion("LoRA (Stable Diffusion models)", open=False):
        for i in range(LORA_ROWS):
            with gr.Row():
                lora = gr.Dropdown([""], value="", label=f"LoRA {i + 1}", scale=3, allow_custom_value=True)
                lora.focus(lambda: gr.Dropdown(choices=["", *catalog.loras()]), None, lora, **ui.QUIET)
                loras += [lora, inputs.slider(*catalog.LORA_WEIGHT_RANGE, value=1.0, step=0.05, label="Weight", scale=2)]

    followers = [sampler, upscale, steps, guidance, width, height]
    model.change(follow, [model, sampler, width, height], followers, **ui.FOLLOW)
    tab.load(follow, [model, sampler, width, height], followers, **ui.FOLLOW)
    return [negative, model, sampler, steps, guidance, width, height, seed, batch, count, upscale, *loras]


def _first_settings(model: str) -> catalog.DiffusionSettings:
    """The settings the labels show before the page loads: the embedded model's (no file read, no
    torch) or the host's default model's (its family from the Hub id table, a folder's JSON or a
    file's header; this loads torch at build, which such a host needs at the first request anyway).
    A name core cannot place falls back to the embedded model's; the page's load event then warns."""
    if model == catalog.DEFAULT_DIFFUSION_MODEL:
        return catalog.diffusion_settings(None)
    try:
        return catalog.diffusion_settings(model)
    except CoreError:
        return catalog.diffusion_settings(None)


def follow(name: str, chosen_sampler: str, chosen_width: int, chosen_height: int) -> tuple:
    """Updates of (sampler, upscale, steps, guidance, width, height) for the chosen model: its ranges,
    sampler list and "model's own" labels. Values stay as set: a sampler or size the model refuses is
    kept (the sampler marked "not for this model") and a gr.Warning says so; core then refuses the request
    with its own message if it is sent unchanged. A model core cannot place (unknown) gets a gr.Warning
    with core's message and no updates (gr.skip()). A Hub id not in the Hugging Face cache while downloads
    are off gets a gr.Warning with core's message, and one still to be downloaded a gr.Info
    (core.catalog.model_note); both still get the updates of their family (e.g. Turbo: 1 step)."""
    try:
        s = catalog.diffusion_settings(name)
    except CoreError as err:
        gr.Warning(str(err))
        return [gr.skip()] * 6
    try:
        note = catalog.model_note(name)
    except CoreError as err:
        gr.Warning(str(err))
    else:
        if note:
            gr.Info(note)
    text = _labels(s)
    samplers = [(text["sampler"], OWN), *s.samplers]
    if chosen_sampler and chosen_sampler not in s.samplers:  # kept, marked, and said: never dropped
        samplers.append((f"{chosen_sampler} (not for this model)", chosen_sampler))
        gr.Warning(f"{name} cannot run the sampler {chosen_sampler}; it stays chosen until you pick another "
                   "(the list shows what this model runs)")
    for side, value in (("width", chosen_width), ("height", chosen_height)):
        if value and not s.sides[0] <= value <= s.sides[1]:
            gr.Warning(f"{name} takes a {side} of {s.sides[0]}..{s.sides[1]} px, and {value} px is set: "
                       f"set it again, or to 0 for the model's native {s.width} px")
    width_max, height_max = (max(_side_max(s.sides[1]), value or 0) for value in (chosen_width, chosen_height))
    return (gr.Dropdown(choices=samplers),
            gr.Dropdown(choices=[(text["upscale"], OWN), *UPSCALE_CHOICES]),
            gr.Slider(info=text["steps"]), gr.Slider(info=text["guidance"]),
            gr.Slider(maximum=width_max, info=text["size"]), gr.Slider(maximum=height_max, info=text["size"]))


def _upscale_control(choices: list, **kwargs) -> gr.Dropdown:
    """The "Upscale x4" list (the model's own, "on", "off"). Through the API it also takes true and
    false, as core's `upscale` does; any other value is refused by the control's name (see `_upscale`)."""
    component = gr.Dropdown(choices, **kwargs)
    own = component.preprocess
    component.preprocess = lambda payload: own(_upscale_choice(payload))
    return component


def _upscale_choice(value: object) -> object:
    """"on" / "off" for True / False, OWN for None (no value given); a listed value as it is.

    Raises:
        gr.Error: any other value, named with the choices (never taken as "the model's own").
    """
    if value is None or value == OWN:
        return OWN
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and value in UPSCALE_CHOICES:
        return value
    shown = repr(value)
    shown = shown if len(shown) <= limits.SHOWN_CHARS else shown[:limits.SHOWN_CHARS - 1] + "…"
    raise gr.Error(f'upscale ({UPSCALE_LABEL}) must be "on", "off", true, false or "" (the model\'s own), got {shown}',
                   print_exception=False)


def _own_guidance(value: object) -> object:
    """None (the model's own) for OWN_GUIDANCE (-1); any other value as sent (core checks it and names
    what it refuses, e.g. -2).

    Raises:
        gr.Error: no value at all (None): the page always sends one, and -1 asks for the model's own.
    """
    if value is None:
        raise gr.Error("guidance_scale (Guidance scale (CFG)) must be a number in -1..30 (-1 for the model's own), "
                       "got None", print_exception=False)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == OWN_GUIDANCE:
        return None
    return value


def _side_max(natural: int) -> int:
    """The end of a size slider: the model's largest side, or the side of a square of the host's
    pixels limit when that is smaller (a multiple of SIDE_STEP)."""
    square = math.isqrt(limits.current().pixels) // catalog.SIDE_STEP * catalog.SIDE_STEP
    return max(catalog.SIDE_STEP, min(natural, square))


def call_args(negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, batch_size,
              batch_count, upscale, *lora_rows, masked: bool = False) -> dict:
    """The panel's values as core keyword arguments: "the model's own" values become None (core then
    takes the model's; upscale becomes the model's own True or False, and False when `masked`: inpainting
    and outpainting keep the picture's own pixels outside the mask, which an x4 upscale would redraw),
    LoRA rows become [(file, weight), ...]; every other value is passed as set, never replaced by a
    model's default.

    Raises:
        gr.Error: a value is over one of the host's limits (demos.limits), or upscale is none of its
            choices; named in the message.
    """
    limits.check_text("negative prompt", negative_prompt)
    limits.check("steps", steps, "steps")
    if all(isinstance(n, (int, float)) for n in (batch_size, batch_count)):
        limits.check("batch size x batch count", batch_size * batch_count, "images")
    pairs = [(lora_rows[i], lora_rows[i + 1]) for i in range(0, len(lora_rows), 2) if lora_rows[i]]
    try:
        own = catalog.diffusion_settings(model)
    except CoreError:
        own = None  # core's own call reports what is wrong with the model
    if own is not None:
        limits.check_size(width, height, (own.width, own.height))
    upscale = _upscale_choice(upscale)  # also here: image to image takes its values unprocessed
    upscale_on = upscale == "on" if upscale != OWN else bool(own and own.upscale and not masked)
    return {"negative_prompt": negative_prompt, "model": model, "scheduler": scheduler or None,
            "steps": steps or None, "guidance_scale": _own_guidance(guidance_scale), "width": width or None,
            "height": height or None, "seed": seed, "batch_size": batch_size, "batch_count": batch_count,
            "upscale": upscale_on, "loras": pairs}
