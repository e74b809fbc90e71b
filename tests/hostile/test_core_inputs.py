"""Hostile inputs against core directly: every kind of issue 12's suite, on the embedded and tiny models.

Each case must end in a `core.CoreError` whose message names the parameter and says what to change, in
one bounded line (no traceback, no library text of 100,000 characters), or, for the few inputs that are
fine (a picture of 8 x 2048 px), in a result. Pickles must never run (their payload would create a marker
file). The cases come from `cases.py`; the same kinds run against the live app in test_app_inputs.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from cases import (
    BAD_FACE_INPUTS,
    BAD_NUMBERS,
    BAD_TEXTS,
    DCGAN_FACE_MODEL,
    FACE_ENDPOINTS,
    FAST_SD,
    MODEL_FILE_CASES,
    PICTURES,
    picture_bytes,
    says,
    write_model_files,
    write_sd_files,
)
from PIL import Image

import core
from core.errors import CoreError

pytestmark = pytest.mark.usefixtures("offline")
MAX_MESSAGE_CHARS = 600
"""A refusal is one readable line: never the 100,000 characters it was sent."""
SMALL = Image.new("RGB", (16, 16), (200, 40, 40))
PICTURE_DATA = picture_bytes()


def refusal(call, *names: str, words: tuple = ()) -> str:
    """Run `call`; it must raise a CoreError naming one of `names` (the parameter's spellings) and
    holding each of `words` (see cases.says), in at most MAX_MESSAGE_CHARS characters. Returns the message."""
    with pytest.raises(Exception) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, CoreError), f"{type(caught.value).__name__} escaped: {message[:300]}"
    assert len(message) <= MAX_MESSAGE_CHARS, f"{len(message)} characters: {message[:200]}…"
    assert "Traceback" not in message
    says(message, *((tuple(names),) if names else ()), *words)
    return message


@pytest.fixture(scope="module")
def hostile_models(tmp_path_factory):
    """A models folder with every hostile model file of cases.py and the tiny SD model (its configs in use)."""
    from core.build import sd_configs
    from core.models import files, registry
    from core.paths import WEIGHTS_DIR

    root = tmp_path_factory.mktemp("hostile-models")
    models, markers, configs = root / "models", root / "markers", root / "configs"
    for folder in (models, markers, configs):
        folder.mkdir()
    names = write_model_files(models, markers)
    names.update(write_sd_files(models, configs, WEIGHTS_DIR))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "MODELS_DIR", models)
        patch.setattr(sd_configs, "CONFIGS_DIR", configs)
        yield SimpleNamespace(models=models, markers=markers, names=names)
    registry.clear_cache()


# --- pictures: bombs, oversized chunks, corrupt and non-image files, sizes -----------------------

IMAGE_CALLS = {
    "image_to_image": lambda image: core.image_to_image(image, "red apple", steps=1, seed=1),
    "upscale": lambda image: core.upscale(image),
}


@pytest.mark.parametrize("endpoint", IMAGE_CALLS)
@pytest.mark.parametrize("picture", PICTURES)
def test_hostile_pictures_are_refused_by_name_or_read(picture, endpoint):
    words = PICTURES[picture]
    call = IMAGE_CALLS[endpoint]
    if words is None:
        result = call(PICTURE_DATA[picture])
        assert result.images and "Comment" not in result.parameters
        return
    refusal(lambda: call(PICTURE_DATA[picture]), "image", words=words[1:])


@pytest.mark.parametrize("image, words", [
    (Image.new("RGB", (0, 0)), "0x0 px"),
    (Image.new("RGB", (4097, 8)), "at most 4096 px"),
    (np.zeros((16, 16, 5), np.uint8), "C = 1..4 channels"),
    (np.zeros((16, 16, 3), np.float32), "must be uint8"),
    ("a\x00b.png", "not a readable picture"),
    ("\ud800.png", "not a readable picture"),
    (["not", "a", "picture"], "must be a picture"),
], ids=["pil-0x0", "pil-4097x8", "array-5-channels", "array-float", "path-nul", "path-surrogate", "list"])
def test_pictures_given_in_memory_are_refused_by_name(image, words):
    refusal(lambda: core.upscale(image), "image", words=(words,))


def test_premultiplied_and_two_channel_pictures_are_read():
    assert core.upscale(Image.new("La", (16, 16))).images[0].mode == "LA"
    assert core.upscale(np.zeros((16, 16, 2), np.uint8)).images[0].mode == "LA"


# --- numbers: NaN, infinities, wrong types, huge and out-of-range values --------------------------

def _call(endpoint: str, parameter: str, value, gif_dir=None):
    """The core function of `endpoint` with `parameter` set to `value`, the rest small and valid."""
    if endpoint == "text_to_image":
        return core.text_to_image("red apple", **{"steps": 1, parameter: value})
    if endpoint == "image_to_image":
        return core.image_to_image(SMALL, "red apple", **{"steps": 1, parameter: value})
    if endpoint == "generate_faces":
        mixing = {"mix_seed": 1} if parameter == "mix_layers" else {}  # mix_layers is read when mixing
        return core.generate_faces(**{"count": 1, **mixing, parameter: value})
    if endpoint == "interpolate_faces":
        args = {"seed_a": 1, "seed_b": 2, "frames": 2, parameter: value}
        return core.interpolate_faces(args.pop("seed_a"), args.pop("seed_b"), gif_path=gif_dir / "x.gif",
                                      video_path=gif_dir / "x.mp4", **args)
    if endpoint == "upscale":
        return core.upscale(SMALL, **{parameter: value})
    if endpoint == "lora":
        return core.text_to_image("a cat", **FAST_SD, loras=[("Lora/style.safetensors", value)])
    raise KeyError(endpoint)


DIFFUSION_NUMBERS = ("steps", "guidance_scale", "width", "height", "seed", "batch_size", "batch_count")
NUMERIC = {  # endpoint -> its numeric parameters; None means "the model's own" for these
    "text_to_image": DIFFUSION_NUMBERS,
    "image_to_image": ("strength", *DIFFUSION_NUMBERS),
    "generate_faces": ("count", "seed", "truncation_psi", "face_weight"),
    "interpolate_faces": ("seed_a", "seed_b", "frames", "truncation_psi", "face_weight"),
    "upscale": ("scale", "tile", "overlap", "face_weight"),
    "lora": ("weight",),
}
NONE_MEANS_DEFAULT = {"steps", "guidance_scale", "width", "height", "scale", "tile"}
NUMBER_CASES = [
    pytest.param(endpoint, parameter, value, id=f"{endpoint}-{parameter}-{label}")
    for endpoint, parameters in NUMERIC.items() for parameter in parameters
    for label, value in BAD_NUMBERS.items()
    if not (value is None and parameter in NONE_MEANS_DEFAULT)
]


@pytest.mark.parametrize("endpoint, parameter, value", NUMBER_CASES)
def test_bad_numbers_are_refused_by_name(hostile_models, tmp_path, endpoint, parameter, value):
    names = ("weight of LoRA",) if endpoint == "lora" else (parameter,)
    refusal(lambda: _call(endpoint, parameter, value, tmp_path), *names, words=("must be",))


BOOL_CASES = [
    pytest.param(endpoint, value, id=f"{endpoint}-upscale-{label}")
    for endpoint in ("text_to_image", "image_to_image", "generate_faces", "interpolate_faces")
    for label, value in {"text": "off", "int": 1, "none": None, "nan": float("nan")}.items()
]


@pytest.mark.parametrize("endpoint, value", BOOL_CASES)
def test_a_switch_takes_only_true_or_false(tmp_path, endpoint, value):
    refusal(lambda: _call(endpoint, "upscale", value, tmp_path), "upscale", words=("True or False",))


@pytest.mark.parametrize("loras", [5, 1.0, True, False, "Lora/style.safetensors", b"x", object()],
                         ids=["int", "float", "true", "false", "text", "bytes", "object"])
def test_loras_must_be_a_list_of_pairs(hostile_models, loras):
    refusal(lambda: core.text_to_image("a cat", **FAST_SD, loras=loras), "loras", words=("list of (file, weight)",))


def test_a_low_strength_fits_the_sampler():
    """LCM picks its steps from 50: a strength that needs more (1/64: 64 steps) is refused with the
    least strength it can run, instead of diffusers' ValueError; a strength that fits is run."""
    message = refusal(lambda: core.image_to_image(SMALL, "red apple", strength=0.015625, steps=1, scheduler="LCM"),
                      "strength", words=("64 steps", "at most 50", "at least 0.02"))
    assert "LCM" in message
    result = core.image_to_image(SMALL, "red apple", strength=0.02, steps=1, scheduler="LCM", seed=1)
    assert result.parameters["steps"] == 50 and result.parameters["warnings"]


@pytest.mark.parametrize("call", [core.text_to_image, lambda *a, **k: core.image_to_image(SMALL, *a, **k)],
                         ids=["text_to_image", "image_to_image"])
def test_steps_fit_the_sampler(call):
    refusal(lambda: call("red apple", steps=51, scheduler="LCM"), "steps", words=("1..50", "LCM"))


# --- the faces tab's own inputs: size, style mixing, fps, path space, loop, more seeds -------------

FACE_CASES = [
    pytest.param(endpoint, parameter, value, id=f"{endpoint}-{parameter}-{label}")
    for parameter, values in BAD_FACE_INPUTS.items() for endpoint in FACE_ENDPOINTS[parameter]
    for label, value in values.items()
]


@pytest.mark.parametrize("endpoint, parameter, value", FACE_CASES)
def test_bad_face_inputs_are_refused_by_name(tmp_path, endpoint, parameter, value):
    refusal(lambda: _call(endpoint, parameter, value, tmp_path), parameter, words=("must be",))
    assert not any(tmp_path.iterdir()), "a refused interpolation wrote a file"


@pytest.mark.parametrize("more, words", [
    (("ten",), ("more_seeds[0]", "integer")),
    ((9.5,), ("more_seeds[0]", "integer")),
    ((-5,), ("more_seeds[0]", "-1 (random) or 0..")),
    (tuple(range(3, 18)), ("at most 16 seeds", "got 17")),
], ids=["letters", "fraction", "negative", "17-seeds"])
def test_more_seeds_are_refused_by_their_place(tmp_path, more, words):
    refusal(lambda: core.interpolate_faces(1, 2, *more, frames=20, gif_path=tmp_path / "x.gif",
                                           video_path=tmp_path / "x.mp4"), words=words)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("call, words", [
    (lambda folder: core.generate_faces(count=1, model=DCGAN_FACE_MODEL, mix_seed=3, mix_layers="coarse"),
     ("style mixing", "style-based model")),
    (lambda folder: core.interpolate_faces(1, 2, frames=2, model=DCGAN_FACE_MODEL, space="style",
                                           gif_path=folder / "x.gif", video_path=folder / "x.mp4"),
     ("no style space", "latent")),
    (lambda folder: core.interpolate_faces(1, 2, frames=2, model=DCGAN_FACE_MODEL,
                                           video_path=folder / "no-such-folder" / "x.mp4"),
     ("video_path", "existing folder")),
], ids=["dcgan-mixing", "dcgan-style-space", "video-folder"])
def test_what_a_model_cannot_do_is_refused_by_name(tmp_path, call, words):
    refusal(lambda: call(tmp_path), words=words)


# --- text: invalid Unicode, control characters, 100,000 characters -------------------------------

TEXT_FIELDS = {  # (endpoint, parameter) -> the parameter's spellings in a message
    ("text_to_image", "prompt"): ("prompt",),
    ("text_to_image", "negative_prompt"): ("negative_prompt",),
    ("image_to_image", "prompt"): ("prompt",),
    ("image_to_image", "negative_prompt"): ("negative_prompt",),
    ("text_to_image", "model"): ("model",),
    ("image_to_image", "model"): ("model",),
    ("text_to_image", "scheduler"): ("scheduler", "sampler"),
    ("image_to_image", "scheduler"): ("scheduler", "sampler"),
    ("lora", "lora"): ("LoRA", "lora"),
    ("generate_faces", "model"): ("model",),
    ("interpolate_faces", "model"): ("model",),
    ("upscale", "model"): ("model",),
    ("generate_faces", "face_restoration"): ("face_restoration", "face restoration"),
    ("interpolate_faces", "face_restoration"): ("face_restoration", "face restoration"),
    ("upscale", "face_restoration"): ("face_restoration", "face restoration"),
}


def _text_call(endpoint: str, parameter: str, text: str, gif_dir):
    if endpoint == "lora":
        return core.text_to_image("a cat", **FAST_SD, loras=[(text, 1.0)])
    if endpoint in ("text_to_image", "image_to_image") and parameter == "prompt":
        image = () if endpoint == "text_to_image" else (SMALL,)
        return getattr(core, endpoint)(*image, text, steps=1)
    return _call(endpoint, parameter, text, gif_dir)


TEXT_CASES = [
    pytest.param(endpoint, parameter, text, word, id=f"{endpoint}-{parameter}-{label}")
    for (endpoint, parameter) in TEXT_FIELDS for label, (text, word) in BAD_TEXTS.items()
]


@pytest.mark.parametrize("endpoint, parameter, text, word", TEXT_CASES)
def test_bad_text_is_refused_by_name_with_the_reason(hostile_models, tmp_path, endpoint, parameter, text, word):
    refusal(lambda: _text_call(endpoint, parameter, text, tmp_path), *TEXT_FIELDS[endpoint, parameter], words=(word,))


def test_emoji_sequences_and_line_breaks_stay_allowed_in_prompts():
    result = core.text_to_image("woman technologist 👩\u200d💻\nred apple\tnow", steps=1, seed=1)
    assert result.parameters["prompt"] == "woman technologist 👩\u200d💻\nred apple\tnow"


# --- model files: pickles under every extension, lying safetensors headers, partial checkpoints -----

ROLE_CALLS = {
    "model": lambda name: core.text_to_image("a cat", **{**FAST_SD, "model": name}),
    "lora": lambda name: core.text_to_image("a cat", **FAST_SD, loras=[(name, 1.0)]),
    "upscaler": lambda name: core.upscale(SMALL, model=name),
    "face_restoration": lambda name: core.generate_faces(count=1, face_restoration=name),
}
MODEL_FILE_PARAMS = [pytest.param(case, role, id=case) for case, role in MODEL_FILE_CASES]
PARTS_NAMED = {  # partial checkpoints -> what their refusal must say is missing
    "partial-sd-unet-only": ("only the UNet", "text encoder and VAE"),
    "partial-sd-no-text-encoder": ("no text encoder (cond_stage_model.*)",),
    "lie-overlapping-model": ("overlap",),
}


@pytest.mark.parametrize("case, role", MODEL_FILE_PARAMS)
def test_hostile_model_files_are_refused_by_name_and_never_unpickled(hostile_models, case, role):
    name = hostile_models.names[case]
    message = refusal(lambda: ROLE_CALLS[role](name), name.rsplit("/", 1)[-1], words=PARTS_NAMED.get(case, ()))
    assert str(hostile_models.models) not in message, "a server path in the message"
    assert not any(hostile_models.markers.iterdir()), "a pickle's payload ran"


def test_the_models_still_work_after_the_hostile_files(hostile_models):
    assert core.text_to_image("a cat", **FAST_SD, loras=[("Lora/style.safetensors", 1.0)]).images[0].size == (64, 64)
    assert core.upscale(SMALL).images[0].size == (64, 64)
    assert not any(hostile_models.markers.iterdir())
