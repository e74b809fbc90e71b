"""The ControlNet accordion both diffusion tabs share: up to UNITS units, each a ControlNet of the models
folder, a preprocessor (canny, scribble, none), weight, start and end, Canny thresholds and a control image.

An event takes the accordion's inputs by name (`inputs_kwargs=` the dict `panel` returns): its function has
`**control` and the `takes_units` decorator, which names each input, with its default, in the function's
signature, where Gradio reads the API's parameter names and which of them a client may leave out.
`units(control)` turns the values into core's `controlnets` argument. No model logic: the lists and ranges
come from core.catalog; core checks and runs the units.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import gradio as gr

from core import catalog
from demos import editors, inputs, ui, uploads

UNITS = min(2, catalog.MAX_CONTROLNETS)
"""ControlNet units the page offers (core takes up to catalog.MAX_CONTROLNETS)."""
FOLDER = "models/ControlNet/"
"""Where the accordion tells people to put ControlNet files (any folder of the models folder works:
core.models.files reads a file's kind from its tensors; pickles by their folder's name, e.g. ControlNet/)."""
WHERE = (f"No ControlNet files yet: put ControlNet `.safetensors` files or diffusers ControlNet folders (SD 1.x "
         f"or SDXL) in `{FOLDER}` (the models folder: `$IMAGEGEN_MODELS_DIR`, default `models/`), then press Refresh.")
DEFAULTS = {"model": "", "image": None, "preprocessor": "none", "weight": 1.0, "start": 0.0, "end": 1.0,
            "low_threshold": catalog.CANNY_THRESHOLDS[0], "high_threshold": catalog.CANNY_THRESHOLDS[1]}
"""A unit's settings (the keys of core's ControlNet unit) and their defaults, in the accordion's order."""


def names(unit: int) -> dict[str, str]:
    """{unit setting: API parameter name} of unit `unit` (1-based): controlnet_1, controlnet_1_image, ..."""
    return {key: f"controlnet_{unit}" if key == "model" else f"controlnet_{unit}_{key}" for key in DEFAULTS}


PARAMETERS = {name: DEFAULTS[key] for unit in range(1, UNITS + 1) for key, name in names(unit).items()}
"""Every unit input's API name and default, in the accordion's order."""


def _listed() -> gr.Dropdown:
    """The ControlNet list of the models folder (read when the list is opened or refreshed); its note says
    where to put the files when there are none."""
    found = catalog.controlnets()
    return gr.Dropdown(choices=[("None", ""), *found],
                       info=WHERE if not found else "ControlNet files and folders of the models folder")


def panel(image_note: str) -> dict[str, gr.components.Component]:
    """The "ControlNet" accordion (closed), inside the Blocks being built; `image_note` says what a unit
    without a control image is steered by. Returns {API parameter name: component} (PARAMETERS' order)."""
    built: dict[str, gr.components.Component] = {}
    with gr.Accordion("ControlNet (Stable Diffusion models)", open=False):
        gr.Markdown("Hold an outline, an edge map or a sketch while the prompt changes the rest. ControlNet files "
                    f"go in `{FOLDER}`. *Canny* draws the control image's edges, *scribble* takes dark strokes "
                    f"on a light ground as the sketch, *none* takes the picture as it is. {image_note}")
        for unit in range(1, UNITS + 1):
            name = names(unit)
            with gr.Group():
                with gr.Row():
                    model = gr.Dropdown([("None", "")], value="", label=f"ControlNet {unit}", scale=4,
                                        allow_custom_value=True,  # API calls may name a file added since launch
                                        info="ControlNet files and folders of the models folder")
                    ui.refresh_button(model, _listed)
                    preprocessor = inputs.radio(list(catalog.PREPROCESSORS), value=DEFAULTS["preprocessor"],
                                                label=f"Preprocessor {unit}", scale=3)
                with gr.Row():
                    weight = inputs.slider(*catalog.CONTROLNET_WEIGHT_RANGE, value=DEFAULTS["weight"], step=0.05,
                                           label=f"Control weight {unit}")
                    start = inputs.slider(*catalog.CONTROL_GUIDANCE_RANGE, value=DEFAULTS["start"], step=0.05,
                                          label=f"Guidance start {unit}", info="fraction of the steps")
                    end = inputs.slider(*catalog.CONTROL_GUIDANCE_RANGE, value=DEFAULTS["end"], step=0.05,
                                        label=f"Guidance end {unit}", info="fraction of the steps")
                with gr.Row(equal_height=True):
                    image = editors.picture_input(label=f"Control image {unit}", height=160, scale=1)
                    with gr.Column(scale=1):
                        shown = DEFAULTS["preprocessor"] == "canny"  # the thresholds show for Canny only
                        low = inputs.slider(*catalog.CANNY_THRESHOLD_RANGE, value=DEFAULTS["low_threshold"], step=1,
                                            whole=True, label=f"Canny low threshold {unit}", visible=shown)
                        high = inputs.slider(*catalog.CANNY_THRESHOLD_RANGE, value=DEFAULTS["high_threshold"],
                                             step=1, whole=True, label=f"Canny high threshold {unit}", visible=shown)
            preprocessor.change(_thresholds, preprocessor, [low, high], **ui.QUIET)
            built.update({name["model"]: model, name["image"]: image, name["preprocessor"]: preprocessor,
                          name["weight"]: weight, name["start"]: start, name["end"]: end,
                          name["low_threshold"]: low, name["high_threshold"]: high})
    return built


def _thresholds(preprocessor: str) -> tuple[gr.Slider, gr.Slider]:
    """Updates of a unit's two Canny thresholds: shown only while its preprocessor is "canny"."""
    return gr.Slider(visible=preprocessor == "canny"), gr.Slider(visible=preprocessor == "canny")


def takes_units(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` (whose last parameter is `**control`, or `**settings` holding more named inputs) with a signature
    that also names each unit input of PARAMETERS as a keyword-only parameter with its default: Gradio reads
    the API's parameter names from it, and a client may leave out any input whose parameter defaults to None
    (the control images)."""
    signature = inspect.signature(fn)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    rest = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
             for name, default in PARAMETERS.items()]
    fn.__signature__ = signature.replace(parameters=[*kept, *added, *rest])  # **: the other named inputs
    return fn


def units(control: dict[str, Any]) -> list[dict[str, Any]] | None:
    """core's `controlnets` from the accordion's values (keyword arguments named as in PARAMETERS; a missing one
    takes its default): one unit per chosen ControlNet, in order; None when none is chosen. A control image is
    passed as the upload (uploads.image_source, named "controlnet_<n>_image"), or None for the tab's own picture.

    Raises:
        gr.Error: a control image that is not an upload to this page, or one given to a unit without a
            ControlNet (it would steer nothing).
    """
    chosen = []
    for unit in range(1, UNITS + 1):
        values = {key: control.get(name, DEFAULTS[key]) for key, name in names(unit).items()}
        if not values["model"]:
            if values["image"] is not None:
                raise gr.Error(f"{names(unit)['image']}: a control image is given but ControlNet {unit} is None, so "
                               f"it would steer nothing; choose a ControlNet for unit {unit} (Refresh lists the "
                               f"models folder's), or remove the image", print_exception=False)
            continue
        values["image"] = uploads.image_source(values["image"], names(unit)["image"])
        chosen.append(values)
    return chosen or None
