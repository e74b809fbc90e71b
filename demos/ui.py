"""What every tab shares: the one wrapper around core calls, the result panel, and the files it serves.

`call` runs a core generator for a Gradio event: a `CoreError` becomes a `gr.Error` showing the
core's own message, anything unexpected becomes a short generic `gr.Error` (the traceback goes to
the server log), and `on_step` drives the Gradio progress bar. `show` turns a `Result` into what
`result_panel` displays. No model logic lives here.
"""

from __future__ import annotations

import atexit
import html
import inspect
import io
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from PIL import Image

from core import CoreError, Result, catalog, read_parameters, save_png
from demos import inputs, serving, uploads

log = logging.getLogger("imagegen-hub")

GENERIC_ERROR = "Something went wrong on the server; the details are in its log. Try other settings or another picture."
GENERATOR = {"concurrency_limit": None}
"""Event options of every generator: Gradio lets each request in at once, and demos.serving decides
(per-session and app limits, fair turns on the device, Stop). Their functions are wrapped by
`serving.guarded`."""
QUIET = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
"""Event options of the page's own helpers (refreshing a list): not API endpoints."""
FOLLOW = {"api_visibility": "private", "show_progress": "hidden", "concurrency_limit": None}
"""Like QUIET, but through the queue, where gr.Warning reaches the page as a toast (outside it, Gradio
only logs it); no concurrency limit, so it never waits behind a picture being made."""
PREVIEW_EVERY_S = 0.5
"""A live preview goes to the page at most twice a second (each is a picture file Gradio writes and sends)."""
PROGRESS_EVERY_S = 0.25
"""The progress bar moves at most four times a second (bench/app_overhead.py measured the cost)."""
KEEP_FILES_S = 3600
"""Default of `keep_files_s()`."""
KEEP_FILES_ENV = "IMAGEGEN_KEEP_FILES_S"
"""The host's retention of served and generated files, in whole seconds >= KEEP_FILES_MIN_S."""
KEEP_FILES_MIN_S = 10

CSS = """
.refresh-button { align-self: flex-end; flex-grow: 0 !important; max-height: 2.6rem; margin-bottom: 2px; }
"""
"""Page styles the tabs rely on; passed to `launch(css=...)` (Gradio 6 takes CSS there)."""

_output_dir: Path | None = None


def call(fn: Callable[..., Result], *args: Any, progress: gr.Progress | None = None,
         unit: str = "steps", **kwargs: Any) -> Result:
    """Run the core function `fn(*args, **kwargs)` for a Gradio event and return its Result; each
    of the result's `parameters["warnings"]` is shown as a gr.Warning toast.

    Inside a streamed event (`serving.guarded(..., preview=...)`) and when `fn` takes `on_preview`,
    its previews go to the page (enlarged for display, captioned PREVIEW_CAPTION, at most every
    PREVIEW_EVERY_S), so that one left in the gallery by Stop is not taken for a result.
    When `progress` is given and `fn` takes `on_step`, each on_step(done, total) moves the
    Gradio progress bar (`unit` names what is counted: "steps", "tiles"). Inside a served event
    (`serving.guarded`), the call waits for its turn on the device and each on_step is also a
    point where it may hand the device to another user's job, or stop with `core.Cancelled`.

    Raises:
        gr.Error: with the core's message (HTML-escaped) for a CoreError; with GENERIC_ERROR for
            any other exception, whose traceback is logged server-side. The server keeps serving.
    """
    takes = inspect.signature(fn).parameters
    takes_on_step = "on_step" in takes
    steps = [_throttled(lambda done, total: progress((done, total), unit=unit))] if progress is not None else []
    job = serving.CURRENT_JOB.get()
    push = serving.PREVIEW.get()
    if push is not None and "on_preview" in takes:  # a streamed event: the first picture of each preview
        kwargs = {**kwargs, "on_preview": _every(PREVIEW_EVERY_S, lambda images: push(_previews(images)))}

    def run(*more_steps: Callable[[int, int], None]) -> Result:
        chained = [*steps, *more_steps] if takes_on_step else []
        return fn(*args, **(kwargs if not chained else {**kwargs, "on_step": _chain(chained)}))

    try:
        if job is None:  # called from Python, not through a served event: no turns, no Stop
            result = run()
        else:
            if progress is not None and job.device.busy():
                progress(None, desc="Waiting for a turn: another request is running")
            result = job.device.run(job, lambda job: run(job.checkpoint))
    except CoreError as err:
        raise gr.Error(html.escape(str(err), quote=False), print_exception=False) from None
    except Exception:
        log.exception("%s failed", getattr(fn, "__name__", fn))
        raise gr.Error(GENERIC_ERROR, print_exception=False) from None
    for warning in getattr(result, "parameters", {}).get("warnings", []):
        gr.Warning(html.escape(warning, quote=False))
    return result


def _chain(steps: list[Callable[[int, int], None]]) -> Callable[[int, int], None]:
    """One `on_step` that calls each of `steps` in turn."""
    def on_step(done: int, total: int) -> None:
        for step in steps:
            step(done, total)
    return on_step


PREVIEW_SIDE = 256
"""Previews smaller than this (a latent is 1/8 of the picture) are enlarged to it for display."""


PREVIEW_CAPTION = "unfinished preview (not a result)"


def _previews(images: list[Image.Image]) -> list[tuple[Image.Image, str]]:
    """The gallery value of a preview: each picture enlarged for display, with PREVIEW_CAPTION."""
    return [(image, PREVIEW_CAPTION) for image in _for_display(images)]


def _for_display(images: list[Image.Image]) -> list[Image.Image]:
    """Preview pictures enlarged (bilinear) so that the longer side is at least PREVIEW_SIDE px."""
    shown = []
    for image in images:
        factor = max(1, PREVIEW_SIDE // max(image.size))
        shown.append(image.resize((image.width * factor, image.height * factor), Image.Resampling.BILINEAR)
                     if factor > 1 else image)
    return shown


clock: Callable[[], float] = time.monotonic
"""The throttles' clock in seconds. Tests replace this name, never `time.monotonic` itself, which the
server's event loop also reads."""


def _gate(seconds: float) -> Callable[[bool], bool]:
    """A clock gate: `due(force)` is True at most once per `seconds` of `clock` (the first call
    included), and always when `force` is True."""
    last = -seconds

    def due(force: bool = False) -> bool:
        nonlocal last
        now = clock()
        if force or now - last >= seconds:
            last = now
            return True
        return False
    return due


def _every(seconds: float, send: Callable[[Any], None]) -> Callable[[Any], None]:
    """`send(value)` at most once per `seconds` (the first value always goes)."""
    due = _gate(seconds)

    def maybe(value: Any) -> None:
        if due():
            send(value)
    return maybe


def _throttled(update: Callable[[int, int], Any]) -> Callable[[int, int], None]:
    """`update(done, total)` at most once per PROGRESS_EVERY_S, and always for the last step: each
    update is a message to the browser, and on a small CPU a message per step slows the work."""
    due = _gate(PROGRESS_EVERY_S)

    def on_step(done: int, total: int) -> None:
        if due(done >= total):
            update(done, total)
    return on_step


def show(result: Result) -> tuple[list[tuple[Image.Image, str]], str, dict[str, Any]]:
    """A Result as the values of `result_panel`: (gallery items, seeds text, parameters).

    Gallery captions give each image's seed when there is one seed per image, else its position.
    """
    images, seeds = result.images, result.seeds
    if len(seeds) == len(images):
        captions = [f"seed {s}" for s in seeds]
    else:
        captions = [f"{i + 1}/{len(images)}" for i in range(len(images))]
    return list(zip(images, captions)), ", ".join(str(s) for s in seeds), result.parameters


def show_files(result: Result, stem: str) -> tuple[list[tuple[str, str]], str, dict[str, Any]]:
    """As `show`, but each picture written as a PNG file with its own parameters (its seed) embedded:
    big pictures are encoded once, at zlib level 1 (core.imaging.io), not again by the gallery."""
    items, seeds, parameters = show(result)
    per_seed = len(result.seeds) == len(result.images)
    return [(png_file(image, {**parameters, **({"seed": result.seeds[i]} if per_seed else {})}, stem), caption)
            for i, (image, caption) in enumerate(items)], seeds, parameters


def face_restoration_controls(how: str) -> tuple[gr.Dropdown, gr.Slider]:
    """A "Face restoration" accordion for the faces and super-resolution tabs: the restorer file
    ("" = none; the models folder's GFPGAN, RestoreFormer, ... files) with a refresh button, and
    its weight; `how` tells, under the file list, what the tab restores. Returns (model, weight)."""
    def listed():
        return gr.Dropdown(choices=[("None", ""), *catalog.face_restorers()])

    with gr.Accordion("Face restoration", open=False):
        with gr.Row():
            model = gr.Dropdown([("None", "")], value="", label="Face restoration model", scale=4,
                                allow_custom_value=True,  # API calls may name a file added since launch
                                info=f"GFPGAN, RestoreFormer, ... files in the models folder; {how}")
            refresh_button(model, listed)
        weight = inputs.slider(0.0, 1.0, value=1.0, step=0.05, label="Restoration weight",
                           info="1 = the restored face only; lower values blend the original back in")
    return model, weight


def refresh_button(target: gr.components.Component, listed: Callable[[], Any]) -> gr.Button:
    """A small "Refresh" button beside a model list: pressing it, or opening the list, fills the list
    with `listed()` (a gr.Dropdown update), so no model folder is scanned while the app starts."""
    button = gr.Button("🔄 Refresh", size="sm", variant="secondary", scale=0, min_width=100,
                       elem_classes="refresh-button")
    gr.on([button.click, target.focus], listed, None, target, **QUIET)
    return button


def run_buttons(label: str) -> tuple[gr.Button, gr.Button]:
    """The tab's primary button (`label`, e.g. "Generate") and a Stop button beside it; wire the
    Stop button with `stops`. Returns (run, stop)."""
    with gr.Row():
        run = gr.Button(label, variant="primary", scale=3)
        stop = gr.Button("Stop", variant="stop", scale=1, min_width=80)
    return run, stop


def stops(button: gr.Button, *events: Any) -> None:
    """Make `button` cancel the running or waiting request of each of `events` (their Dependency
    objects) for this page: the request ends within one step, tile or face (demos.serving)."""
    button.click(None, None, None, cancels=list(events), **QUIET)


def status_line() -> gr.HTML:
    """A slim line above a tab's results where its events show progress and the "Error" badge
    (`show_progress_on`), so a failed request leaves the previous pictures, seeds and files readable;
    the error's message comes as a toast."""
    return gr.HTML("", min_height=36, container=False, elem_classes="status-line")


def result_panel(label: str = "Result") -> tuple[gr.Gallery, gr.Textbox, gr.JSON]:
    """The output components `show` fills: a lossless gallery, the seeds used, the applied parameters."""
    gallery = gr.Gallery(label=label, format="png", columns=3, fit_columns=False, height="auto", interactive=False,
                         object_fit="contain")
    seeds = gr.Textbox(label="Seeds used", interactive=False,
                       info="Put one back into Seed to get the same picture again.")
    with gr.Accordion("Parameters applied", open=False):
        parameters = gr.JSON(label="Parameters")
    return gallery, seeds, parameters


@dataclass
class Send:
    """A "Send to ..." button under a gallery: the picture chosen in `gallery` (by a click, else the
    first) goes into the `receiver` of the tab whose id is `target`, and that tab opens (app.py wires it)."""

    button: gr.Button
    gallery: gr.Gallery
    chosen: gr.State
    target: str


SEND_TARGETS = {"image_to_image": "Send to image to image", "super_resolution": "Send to super-resolution",
                "png_info": "Send to PNG Info"}
"""Tab ids of app.TABS that receive a picture (each tab sets `tab.receiver`), with their button labels."""


def send_buttons(gallery: gr.Gallery, *targets: str) -> list[Send]:
    """A row of send-to buttons (see `Send`) under `gallery`, one per target tab id of SEND_TARGETS;
    the picture clicked in the gallery (else the first) is the one sent, full size."""
    chosen = gr.State(0)
    gallery.select(_chosen_index, None, chosen, **QUIET)
    with gr.Row():
        return [Send(gr.Button(SEND_TARGETS[target], size="sm", variant="secondary"), gallery, chosen, target)
                for target in targets]


def _chosen_index(event: gr.SelectData) -> int:
    return int(event.index) if isinstance(event.index, int) else 0


def picked(items: list | None, index: int) -> str:
    """The file of the gallery item `index` (the last one when the gallery has fewer).

    Raises:
        gr.Error: the gallery is empty.
    """
    if not items:
        raise gr.Error("Nothing to send yet: make a picture first.")
    item = items[min(max(int(index or 0), 0), len(items) - 1)]
    return item[0] if isinstance(item, (tuple, list)) else item


def _opener(target: str) -> Callable[[], gr.Tabs]:
    """An event function that switches the hub's tab row to the tab `target`."""
    return lambda: gr.Tabs(selected=target)


def wire_sends(tabs: dict[str, gr.Blocks], row: gr.Tabs) -> None:
    """Connect every tab's `sends` (a list of Send) to its target tab, then switch `row` to that tab: a
    tab with `fills` (image to image) takes the picture and the settings it carries, as PNG Info's
    "Send to" does (`_filled`); any other takes the picture into its `receiver`. The events are queued,
    so that "nothing to send" shows. A target with neither is a programming error (AttributeError)."""
    for tab in tabs.values():
        for send in getattr(tab, "sends", []):
            target = tabs[send.target]
            slots = getattr(target, "fills", None)
            if slots:
                fill = _filled(slots)
                function, outputs = (lambda items, index, fill=fill: fill(picked(items, index))), list(slots.values())
            else:
                function, outputs = picked, target.receiver
            send.button.click(function, [send.gallery, send.chosen], outputs, **FOLLOW).then(
                _opener(send.target), None, row, **QUIET)


def output_dir() -> Path:
    """This process's folder for generated files, inside the system temp folder (deleted at exit)."""
    global _output_dir
    if _output_dir is None:
        _output_dir = Path(tempfile.mkdtemp(prefix="imagegen-hub-"))
        atexit.register(shutil.rmtree, _output_dir, ignore_errors=True)
    return _output_dir


def keep_files_s() -> int:
    """Seconds a served or generated file is kept: $IMAGEGEN_KEEP_FILES_S, else KEEP_FILES_S (3600).
    Used for both Gradio's cache (app.py: deleted every that many seconds once that old, so a file
    lives up to twice as long) and the files of `new_path`.

    Raises:
        ValueError: the variable is set but is not a whole number >= KEEP_FILES_MIN_S.
    """
    text = os.environ.get(KEEP_FILES_ENV, "").strip()
    if not text:
        return KEEP_FILES_S
    if not text.isdigit() or int(text) < KEEP_FILES_MIN_S:
        raise ValueError(f"${KEEP_FILES_ENV} must be a whole number of seconds >= {KEEP_FILES_MIN_S}, got {text!r}")
    return int(text)


def new_path(suffix: str, stem: str = "imagegen") -> str:
    """A fresh file path `<stem>-<random>.<suffix>` in `output_dir()`; files older than
    `keep_files_s()` are removed first."""
    folder, cutoff = output_dir(), time.time() - keep_files_s()
    for old in folder.iterdir():
        try:
            if old.is_file() and old.stat().st_mtime < cutoff:
                old.unlink()
        except FileNotFoundError:  # another request removed it first
            pass
    return str(folder / f"{stem}-{uuid.uuid4().hex[:12]}{suffix}")


def png_file(image: Image.Image, parameters: dict[str, Any], stem: str = "imagegen") -> str:
    """Write `image` as a lossless PNG with `parameters` embedded (core.save_png); returns its path."""
    return str(save_png(image, new_path(".png", stem), parameters))


# --- "Send to ..." from PNG Info: a picture's settings fill a tab --------------------------------------

FILL_TARGETS = {"text_to_image": "Send to text to image", "image_to_image": "Send to image to image",
                "super_resolution": "Send to super-resolution"}
"""Tab ids of app.TABS that PNG Info fills (each sets `tab.fills`, else only its `receiver` gets the picture)."""
PANEL_KEYS = ("negative_prompt", "model", "scheduler", "steps", "guidance_scale", "width", "height", "seed",
              "batch_size", "batch_count", "upscale")
"""The settings names of demos.diffusion_settings.panel's components, in its order; (LoRA file, weight)
rows follow as lora_1, lora_1_weight, lora_2, ..."""
PICTURE = "image"
"""The fill slot that takes the picture itself (a file path)."""
CLEAR = object()
"""A fill value that empties its slot (fill_values gives it as None), unlike an absent setting (gr.skip())."""
CONTROLNET_SETTINGS = ("model", "preprocessor", "weight", "start", "end", "low_threshold", "high_threshold")
"""The settings of a recorded ControlNet unit that the panel's rows take back (not its picture or sha256)."""


@dataclass
class FillSend:
    """A "Send to ..." button of PNG Info: the settings the picture in `source` carries (and the picture
    itself) fill the `fills` of the tab whose id is `target`, and that tab opens (app.py wires it)."""

    button: gr.Button
    source: gr.components.Component
    target: str


def fill_buttons(source: gr.components.Component, *targets: str) -> list[FillSend]:
    """A row of buttons (see `FillSend`) for `source`, a picture input received with preprocess=False,
    one per target tab id of FILL_TARGETS."""
    with gr.Row():
        return [FillSend(gr.Button(FILL_TARGETS[target], size="sm", variant="secondary"), source, target)
                for target in targets]


def fill_slots(prompt: gr.components.Component, settings: list[gr.components.Component],
               **more: gr.components.Component) -> dict[str, gr.components.Component]:
    """A diffusion tab's `fills`: {settings name: component} for its prompt, the components of
    diffusion_settings.panel (`settings`, in its order) and `more` (e.g. strength=..., image=...)."""
    rows = len(settings) - len(PANEL_KEYS)
    loras = [name for i in range(1, rows // 2 + 1) for name in (f"lora_{i}", f"lora_{i}_weight")]
    if rows < 0 or rows % 2 or len(loras) != rows:
        raise ValueError(f"settings must be panel()'s {len(PANEL_KEYS)} components and LoRA pairs, got {len(settings)}")
    return {"prompt": prompt, **dict(zip((*PANEL_KEYS, *loras), settings)), **more}


def fill_values(settings: dict[str, Any], slots: dict[str, gr.components.Component],
                picture: str | None = None) -> tuple[list[Any], list[str]]:
    """The values that put `settings` (core keyword names, as core.read_parameters gives them) into
    `slots` (see `fill_slots`), in the slots' order: batch size and count 1 (the picture's own seed
    makes it again), upscale as "on"/"off", the Hires. fix off (scale 1) for a picture made without it,
    LoRAs ({"file", "weight"} items) into the LoRA rows and ControlNet units into the ControlNet rows (see
    `_controlnet_rows`) with the other rows cleared, an outpainting's sides, `picture` into the "image" slot. A setting the picture lacks, or whose
    value the component cannot take (out of its range, wrong type), or a width or height the picture's
    model does not take, is gr.skip(): the control keeps its value. A slider's value comes as an update
    that also sets its end back to the widest (the end a model's sides narrowed it to may be shorter).
    Returns (values, what was left out and why, for a warning)."""
    wanted = {**settings, "batch_size": 1, "batch_count": 1, PICTURE: picture}
    if isinstance(settings.get("outpaint"), dict):  # our JSON keeps an outpainting's sides together
        wanted.update({side: value for side, value in settings["outpaint"].items() if side in catalog.OUTPAINT_SIDES})
    if "prompt" in settings and "hires_scale" not in settings:
        wanted["hires_scale"] = 1  # a picture made without the Hires. fix turns it off, as A1111's paste does
    if isinstance(wanted.get("upscale"), bool):
        wanted["upscale"] = "on" if wanted["upscale"] else "off"
    loras = wanted.get("loras")
    rows = sum(1 for name in slots if re.fullmatch(r"lora_\d+", name))
    if isinstance(loras, list) and rows:
        items = [item for item in loras if isinstance(item, dict) and isinstance(item.get("file"), str)]
        for i in range(1, rows + 1):
            item = items[i - 1] if i <= len(items) else {"file": ""}
            wanted[f"lora_{i}"] = item["file"]
            if "weight" in item:
                wanted[f"lora_{i}_weight"] = item["weight"]
        skipped = [f"LoRA {item['file']} (only {rows} rows)" for item in items[rows:]]
    else:
        skipped = []
    skipped += _controlnet_rows(wanted, slots)
    skipped += _off_sides(wanted)
    values = []
    for name, component in slots.items():
        value = wanted.get(name)
        problem = _unfit(component, value) if value is not None else "absent"
        if value is CLEAR:
            values.append(None)
        elif problem is None and isinstance(component, gr.Slider):
            # the slider's end may have been narrowed for the model chosen before (diffusion_settings.follow)
            values.append(gr.Slider(value=value, maximum=max(component.maximum, value)))
        elif problem is None:
            values.append(value)
        else:
            values.append(gr.skip())
            if problem != "absent":
                skipped.append(f"{name} {value!r} ({problem})")
    return values, skipped


def _controlnet_rows(wanted: dict[str, Any], slots: dict[str, gr.components.Component]) -> list[str]:
    """Put a diffusion picture's ControlNet units (core's parameters["controlnets"]) into `wanted` as the
    ControlNet panel's rows take them (controlnet_<n>, controlnet_<n>_<setting>), the other rows cleared, and
    every row's control image emptied (CLEAR): a picture stores none, and another picture's would steer
    this one. Returns the units left out (more than the rows)."""
    rows = sum(1 for name in slots if re.fullmatch(r"controlnet_\d+", name))
    if not rows or "prompt" not in wanted:
        return []
    units = [unit for unit in wanted.get("controlnets") or []
             if isinstance(unit, dict) and isinstance(unit.get("model"), str)]
    for i in range(1, rows + 1):
        unit = units[i - 1] if i <= len(units) else {"model": ""}
        wanted.update({f"controlnet_{i}" if key == "model" else f"controlnet_{i}_{key}": value
                       for key, value in unit.items() if key in CONTROLNET_SETTINGS})
        wanted[f"controlnet_{i}_image"] = CLEAR
    return [f"ControlNet {unit['model']} (only {rows} units)" for unit in units[rows:]]


def fill_notes(settings: dict[str, Any], slots: dict[str, gr.components.Component]) -> list[str]:
    """What a fill of `settings` into `slots` cannot bring back, for the user: the start picture and mask of an
    inpainting, the picture before an outpainting, and the control images of ControlNet units (a picture
    stores none of them)."""
    notes = []
    if "inpaint_area" in slots and ("inpaint_area" in settings or "masked_content" in settings):
        notes.append("This picture was inpainted: its settings are filled in Inpaint, but the picture it started "
                     "from and its mask are not stored in it; put them into Inpaint again.")
    if "left" in slots and ("outpaint" in settings or "left" in settings):
        notes.append("This picture was outpainted: its sides and fill are filled in Outpaint; the picture sent is "
                     "the extended one, not the one it started from.")
    units = settings.get("controlnets") if "prompt" in settings else None
    if isinstance(units, list) and units and any(re.fullmatch(r"controlnet_\d+", name) for name in slots):
        notes.append(f"ControlNet: {len(units)} unit(s) filled without their control images, which a picture does "
                     "not store; give them again (in image to image a unit without one follows the picture).")
    return notes


def _off_sides(wanted: dict[str, Any]) -> list[str]:
    """Take out of `wanted` a width or height its model (when core knows it) does not take; returns
    what was taken out and why."""
    try:
        sides = catalog.diffusion_settings(wanted["model"]).sides if isinstance(wanted.get("model"), str) else None
    except CoreError:
        return []  # an unknown model: the tab says so when the model is filled in
    skipped = []
    for key in ("width", "height"):
        value = wanted.get(key)
        if sides and isinstance(value, int) and not sides[0] <= value <= sides[1]:
            skipped.append(f"{key} {value} ({wanted['model']} takes {sides[0]}..{sides[1]} px)")
            del wanted[key]
    return skipped


def _unfit(component: gr.components.Component, value: Any) -> str | None:
    """Why `component` cannot take `value`, or None when it can."""
    if isinstance(component, (gr.Slider, gr.Number)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "not a number"
        low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
        if (low is not None and value < low) or (high is not None and value > high):
            return f"outside {low:g}..{high:g}"
        return None
    if isinstance(component, (gr.Textbox, gr.Dropdown, gr.Image)):  # dropdowns here take custom values
        return None if isinstance(value, str) else "not text"
    return None


def _filled(slots: dict[str, gr.components.Component]) -> Callable[[Any], Any]:
    """The event function of a FillSend to a tab with `slots`: reads the picture's settings and maps them
    (a list of values, or the one value when there is one slot, as Gradio takes an event's outputs).
    Settings that are not a diffusion model's (a face's, an upscale's: no prompt) fill no diffusion tab."""
    def fill(image: Any) -> Any:
        source = uploads.image_source(image)
        if source is None:
            raise gr.Error("Nothing to send yet: drop a picture first.")
        settings = read_parameters(source)["settings"]
        picture = source if isinstance(source, str) else png_file(Image.open(io.BytesIO(source)), {})
        if "prompt" in slots and "prompt" not in settings:
            why = ("carries the settings of a face or an upscale, not of a diffusion model" if settings
                   else "carries no settings this hub can read")
            gr.Warning(f"This picture {why}; " + ("only the picture itself is sent." if PICTURE in slots
                                                   else "nothing was filled."))
            if PICTURE not in slots:
                return [gr.skip()] * len(slots)
            settings = {}
        values, skipped = fill_values(settings, slots, picture)
        if skipped:
            gr.Warning(html.escape("Not filled: " + "; ".join(skipped), quote=False))
        for note in fill_notes(settings, slots):
            gr.Warning(html.escape(note, quote=False))
        return values if len(values) > 1 else values[0]
    return fill


def wire_fills(tabs: dict[str, gr.Blocks], row: gr.Tabs) -> None:
    """Connect every tab's `fill_sends` (a list of FillSend) to the `fills` of its target tab (else
    {"image": its `receiver`}), then switch `row` to that tab. A target with neither is a
    programming error (AttributeError)."""
    for tab in tabs.values():
        for send in getattr(tab, "fill_sends", []):
            target = tabs[send.target]
            slots = getattr(target, "fills", None) or {PICTURE: target.receiver}
            send.button.click(_filled(slots), [send.source], list(slots.values()), preprocess=False,
                              **FOLLOW).then(_opener(send.target), None, row, **QUIET)
