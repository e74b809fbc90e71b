"""Hostile inputs against the live app (app.py in its own process, see conftest.py), every endpoint it applies to.

Pictures and most numbers go through gradio_client, as an API user's script would; what gradio_client
cannot send (NaN, infinities, 400-digit numbers, lone surrogates, bytes that are no UTF-8) and every
text field go as raw JSON through the queue's join and data routes, as the page does. Each case runs
inside the `guard` fixture: afterwards the server is alive (a faces request works), no file outside its
cache and output folders changed, and no pickle's payload ran.
"""

from __future__ import annotations

import json

import pytest
from cases import (
    BAD_FACE_INPUTS,
    BAD_TEXTS,
    DCGAN_FACE_MODEL,
    FACE_ENDPOINTS,
    FAST_SD,
    MODEL_FILE_CASES,
    MORE_SEEDS_TEXTS,
    PICTURES,
    STYLE_FACE_MODEL,
    TINY_SD,
    picture_bytes,
)
from gradio_client import handle_file

pytestmark = [pytest.mark.usefixtures("guard"), pytest.mark.slow]


PREPROCESSED = ("/text_to_image", "/generate_faces", "/interpolate_faces")
"""The events whose inputs Gradio preprocesses (the others have preprocess=False)."""

FAST = {  # endpoint -> the inputs of a small, valid request (the image is added by `sample`)
    "/text_to_image": {"prompt": "red apple", "steps": 1, "upscale": "off"},
    "/image_to_image": {"prompt": "red apple", "steps": 1, "upscale": "off"},
    "/generate_faces": {"count": 1, "seed": 5, "upscale": False, "model": DCGAN_FACE_MODEL},
    "/interpolate_faces": {"seed_a": 1, "seed_b": 2, "frames": 2, "upscale": False, "more_seeds": "",
                           "model": DCGAN_FACE_MODEL, "size": 0},
    "/upscale": {},
}
SD_WITH_LORA = {"model": TINY_SD, "lora_1": "Lora/style.safetensors", "width": 64, "height": 64}
PICTURE_DATA = picture_bytes()


@pytest.fixture(scope="module")
def api(client) -> dict[str, list[dict]]:
    """Endpoint -> its parameters as the API page lists them (name, default), in order."""
    return {name: endpoint["parameters"]
            for name, endpoint in client.view_api(return_format="dict", print_info=False)["named_endpoints"].items()}


@pytest.fixture(scope="module")
def sample(live_app, tmp_path_factory) -> dict:
    """A small valid picture: its path (for gradio_client) and its upload (FileData, for raw calls)."""
    from PIL import Image

    path = tmp_path_factory.mktemp("sample") / "sample.png"
    Image.new("RGB", (16, 16), (200, 40, 40)).save(path)
    return {"path": str(path), "upload": live_app.upload(path)}


def inputs(api, sample, endpoint: str, values: dict, *, raw: bool) -> dict:
    """The inputs of a small valid request to `endpoint` with `values` set (by parameter name)."""
    chosen = dict(FAST[endpoint])
    if endpoint in ("/image_to_image", "/upscale"):
        chosen["image"] = sample["upload"] if raw else handle_file(sample["path"])
    chosen.update(values)
    return chosen


def spelled(api, endpoint: str, parameter: str) -> tuple[str, ...]:
    """The ways a message may name `parameter` of `endpoint`: as the API does, in words ("batch size"),
    or by its label on the page ("Number of faces")."""
    labels = [p.get("label") or "" for p in api[endpoint] if p["parameter_name"] == parameter]
    return parameter, parameter.replace("_", " "), *[label for label in labels if label]


WHAT_TO_CHANGE = ("must be", "limit")
"""A numeric refusal says the range ("steps must be 1..100") or the host's limit (demos/limits.py)."""


def positional(api, endpoint: str, chosen: dict) -> list:
    """`chosen` (by name) as the full list of inputs, defaults for the rest, for a raw queue call."""
    return [chosen.get(p["parameter_name"], p["parameter_default"]) for p in api[endpoint]]


def raw_json(api, endpoint: str, chosen: dict, raw_values: dict[str, str]) -> str:
    """The JSON text of the inputs, with `raw_values` (name -> JSON text, e.g. "NaN") spliced in as they are."""
    marked = {**chosen, **{name: f"@@{name}@@" for name in raw_values}}
    text = json.dumps(positional(api, endpoint, marked))
    for name, value in raw_values.items():
        text = text.replace(f'"@@{name}@@"', value)
    return text


# --- pictures ------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["/upscale", "/image_to_image"])
@pytest.mark.parametrize("picture", PICTURES)
def test_hostile_pictures(live_app, client, api, sample, tmp_path, picture, endpoint):
    path = tmp_path / picture
    path.write_bytes(PICTURE_DATA[picture])
    chosen = inputs(api, sample, endpoint, {"image": handle_file(str(path))}, raw=False)
    words = PICTURES[picture]
    if words is None:
        outputs = client.predict(**chosen, api_name=endpoint)
        assert outputs and outputs[-1]  # the parameters applied
        return
    live_app.refused(lambda: client.predict(**chosen, api_name=endpoint), *words)


def test_a_body_that_is_no_utf8_is_refused(live_app, api, sample):
    text = raw_json(api, "/text_to_image", inputs(api, sample, "/text_to_image", {}, raw=True),
                    {"prompt": '"red \udc80apple"'})
    answer = live_app.queue("/text_to_image", data_json=text.encode("utf-8", "surrogateescape"))
    live_app.raw_refused(answer, ("prompt", "UTF-8", "utf-8", "body"))  # Gradio: "error parsing the body"


# --- numbers -------------------------------------------------------------------------------------

DIFFUSION_NUMBERS = ["steps", "guidance_scale", "width", "height", "seed", "batch_size", "batch_count", "lora_1_weight"]
NUMERIC = {
    "/text_to_image": DIFFUSION_NUMBERS,
    "/image_to_image": ["strength", *DIFFUSION_NUMBERS],
    "/generate_faces": ["count", "seed", "truncation_psi", "face_weight"],
    "/interpolate_faces": ["seed_a", "seed_b", "frames", "truncation_psi", "face_weight"],
    "/upscale": ["scale", "tile", "overlap", "face_weight"],
}
NONE_MEANS_DEFAULT = {"steps", "width", "height", "scale", "tile"}
"""The tabs take None (like 0) for the model's own or an automatic value here."""
CLIENT_VALUES = {"text": "5", "none": None}
RAW_VALUES = {"nan": "NaN"}
EXTRA_VALUES = {"huge": 10**30, "negative": -7, "true": True, "list": [1], "inf": "Infinity", "-inf": "-Infinity",
                "400-digits": "9" * 400}
"""Tried on the first numeric parameter of each endpoint only; the last three as raw JSON."""
RAW_LABELS = {*RAW_VALUES, "inf", "-inf", "400-digits"}


NUMBER_CASES = [
    pytest.param(endpoint, parameter, label, value, id=f"{endpoint[1:]}-{parameter}-{label}")
    for endpoint, parameters in NUMERIC.items()
    for parameter in parameters
    for label, value in {**CLIENT_VALUES, **RAW_VALUES,
                         **(EXTRA_VALUES if parameter == parameters[0] else {})}.items()
    if not (value is None and parameter in NONE_MEANS_DEFAULT)
]


@pytest.mark.parametrize("endpoint, parameter, label, value", NUMBER_CASES)
def test_bad_numbers(live_app, client, api, sample, endpoint, parameter, label, value):
    names = (*spelled(api, endpoint, parameter), *(("weight of LoRA",) if parameter == "lora_1_weight" else ()))
    extra = SD_WITH_LORA if parameter == "lora_1_weight" else {}
    if label in RAW_LABELS:
        chosen = inputs(api, sample, endpoint, extra, raw=True)
        answer = live_app.queue(endpoint, data_json=raw_json(api, endpoint, chosen, {parameter: value}))
        live_app.raw_refused(answer, names, WHAT_TO_CHANGE)
        return
    chosen = inputs(api, sample, endpoint, {**extra, parameter: value}, raw=False)
    live_app.refused(lambda: client.predict(**chosen, api_name=endpoint), names, WHAT_TO_CHANGE)


# --- the faces tab's own inputs ------------------------------------------------------------------

FACE_CASES = [
    pytest.param(f"/{endpoint}", parameter, label, value, id=f"{endpoint}-{parameter}-{label}")
    for parameter, values in BAD_FACE_INPUTS.items() for endpoint in FACE_ENDPOINTS[parameter]
    for label, value in values.items()
]
MIXING = {"model": STYLE_FACE_MODEL, "mix_seed": 3, "mix_layers": "coarse"}
"""Style mixing needs the style model (the DCGAN refuses any mixing)."""


@pytest.mark.parametrize("endpoint, parameter, label, value", FACE_CASES)
def test_bad_face_inputs(live_app, api, sample, endpoint, parameter, label, value):
    """Sent raw, as the page does (NaN included): the refusal names the input, by its name or its label."""
    extra = MIXING if parameter.startswith("mix_") else {}
    chosen = inputs(api, sample, endpoint, extra, raw=True)
    answer = live_app.queue(endpoint, data_json=raw_json(api, endpoint, chosen, {parameter: json.dumps(value)
                                                                              if label != "nan" else "NaN"}))
    live_app.raw_refused(answer, spelled(api, endpoint, parameter))


@pytest.mark.parametrize("label", MORE_SEEDS_TEXTS)
def test_bad_more_seeds(live_app, client, api, sample, label):
    chosen = inputs(api, sample, "/interpolate_faces", {"more_seeds": MORE_SEEDS_TEXTS[label], "frames": 20},
                    raw=False)
    live_app.refused(lambda: client.predict(**chosen, api_name="/interpolate_faces"), ("More seeds", "seeds"),
                     ("whole numbers", "at most 16"))


def test_a_dcgan_refuses_style_mixing_by_name(live_app, client, api, sample):
    chosen = inputs(api, sample, "/generate_faces", {"mix_seed": 3, "mix_layers": "coarse"}, raw=False)
    live_app.refused(lambda: client.predict(**chosen, api_name="/generate_faces"), "style mixing", "style-based")


# --- text ----------------------------------------------------------------------------------------

TEXT_FIELDS = {
    "/text_to_image": ["prompt", "negative_prompt", "model", "scheduler", "lora_1"],
    "/image_to_image": ["prompt", "negative_prompt", "model", "scheduler", "lora_1"],
    "/generate_faces": ["face_restoration"],
    "/interpolate_faces": ["face_restoration"],
    "/upscale": ["model", "face_restoration"],
}
SPELLINGS = {"scheduler": ("scheduler", "sampler"), "lora_1": ("lora_1", "LoRA"),
             "face_restoration": ("face_restoration", "face restoration")}


TEXT_CASES = [
    pytest.param(endpoint, field, text, word, id=f"{endpoint[1:]}-{field}-{label}")
    for endpoint, fields in TEXT_FIELDS.items() for field in fields for label, (text, word) in BAD_TEXTS.items()
]


@pytest.mark.parametrize("endpoint, field, text, word", TEXT_CASES)
def test_bad_text(live_app, api, sample, endpoint, field, text, word):
    extra = {"model": TINY_SD, "width": 64, "height": 64} if field == "lora_1" else {}
    chosen = inputs(api, sample, endpoint, {**extra, field: text}, raw=True)
    answer = live_app.queue(endpoint, positional(api, endpoint, chosen))  # json.dumps writes "\ud800" as is
    live_app.raw_refused(answer, (*spelled(api, endpoint, field), *SPELLINGS.get(field, ())), word)


# --- model files ---------------------------------------------------------------------------------

ROLE_REQUESTS = {  # role -> (endpoint, the inputs that name the file)
    "model": ("/text_to_image", lambda name: {**FAST_SD, "model": name}),
    "lora": ("/text_to_image", lambda name: {**FAST_SD, "lora_1": name}),
    "upscaler": ("/upscale", lambda name: {"model": name}),
    "face_restoration": ("/generate_faces", lambda name: {"face_restoration": name}),
}
LIVE_LIES = ("lie-header-beyond-file", "lie-overlapping", "lie-dtype-size")
"""The lying headers tried here (all six run against core in test_core_inputs.py)."""
MODEL_FILE_PARAMS = [pytest.param(case, role, id=case) for case, role in MODEL_FILE_CASES
                     if not case.startswith("lie-") or case.startswith(LIVE_LIES)]


@pytest.mark.parametrize("case, role", MODEL_FILE_PARAMS)
def test_hostile_model_files(live_app, client, api, sample, case, role):
    endpoint, named = ROLE_REQUESTS[role]
    name = live_app.names[case]
    chosen = inputs(api, sample, endpoint, named(name), raw=False)
    live_app.refused(lambda: client.predict(**chosen, api_name=endpoint), name.rsplit("/", 1)[-1])
