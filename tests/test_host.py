"""The host's defaults (demos/host.py): default model, extra models and examples of each tab, from
$IMAGEGEN_CONFIG (TOML) and IMAGEGEN_* variables; a bad value stops the start, naming its key."""

from __future__ import annotations

import gradio as gr
import pytest

import app
from core import catalog
from demos import faces, host, image_to_image, super_resolution, text_to_image

CONFIG = """
[text_to_image]
default_model = "stabilityai/sd-turbo"
models = ["someone/their-model"]
examples = ["a red apple on a table", "a rocket at dawn"]

[faces]
default_model = "dcgan-digiface-64"
examples = [11, 12]

[super_resolution]
default_model = "RealESRGAN_x4plus"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No host configuration from the machine running the tests."""
    for name in list(__import__("os").environ):
        if name == host.CONFIG_ENV or name == host.UPSCALER_ENV or (
                name.startswith((host.DEFAULT_ENV, host.EXAMPLES_ENV, host.MODELS_ENV)) and name != "IMAGEGEN_MODELS_DIR"):
            monkeypatch.delenv(name)


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "host.toml"
    path.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv(host.CONFIG_ENV, str(path))
    return path


def components(blocks: gr.Blocks, kind: type) -> list:
    return [block for block in blocks.blocks.values() if isinstance(block, kind)]


def model_list(blocks: gr.Blocks, label: str) -> gr.Dropdown:
    (found,) = [d for d in components(blocks, gr.Dropdown) if d.label == label]
    return found


def example_column(blocks: gr.Blocks, label: str, column: int) -> list:
    (dataset,) = [d for d in components(blocks, gr.Dataset) if d.label == label]
    return [row[column] for row in dataset.raw_samples]


def values(dropdown: gr.Dropdown) -> list[str]:
    return [value for _, value in dropdown.choices]


def test_nothing_configured_is_the_catalog():
    choices = host.load()
    assert {tab: c.default_model for tab, c in choices.items()} == host.DEFAULTS
    assert all(c.models == () and c.examples is None for c in choices.values())
    blocks = text_to_image.build()
    assert model_list(blocks, "Model").value == catalog.DEFAULT_DIFFUSION_MODEL
    assert values(model_list(blocks, "Model")) == [catalog.DEFAULT_DIFFUSION_MODEL, *catalog.HUB_MODELS]
    assert example_column(blocks, "Emoji names to try", 0) == text_to_image.EXAMPLES


def test_file_sets_each_tab_and_image_to_image_follows_text_to_image(config):
    choices = host.load()
    assert choices["text_to_image"].default_model == "stabilityai/sd-turbo"
    assert choices["image_to_image"].default_model == "stabilityai/sd-turbo"  # the same weights unless set
    assert choices["image_to_image"].models == ("someone/their-model",)
    assert choices["image_to_image"].examples is None
    assert choices["faces"].examples == (11, 12)
    assert choices["super_resolution"].default_model == "RealESRGAN_x4plus"
    assert "stabilityai/sd-turbo" in host.describe(choices)


def test_variables_win_over_the_file(config, monkeypatch):
    monkeypatch.setenv("IMAGEGEN_DEFAULT_MODEL_TEXT_TO_IMAGE", "stabilityai/sdxl-turbo")
    monkeypatch.setenv("IMAGEGEN_MODELS_TEXT_TO_IMAGE", "a/b, c/d")
    monkeypatch.setenv("IMAGEGEN_EXAMPLES_IMAGE_TO_IMAGE", "a cat | a dog\na fox")
    monkeypatch.setenv("IMAGEGEN_EXAMPLES_FACES", "5|6")
    monkeypatch.setenv("IMAGEGEN_DEFAULT_UPSCALER", "realesr-animevideov3-x2")
    choices = host.load()
    assert choices["text_to_image"].default_model == "stabilityai/sdxl-turbo"
    assert choices["text_to_image"].source == "$IMAGEGEN_DEFAULT_MODEL_TEXT_TO_IMAGE"
    assert choices["text_to_image"].models == ("a/b", "c/d")
    assert choices["text_to_image"].examples == ("a red apple on a table", "a rocket at dawn")  # from the file
    assert choices["image_to_image"].examples == ("a cat", "a dog", "a fox")
    assert choices["faces"].examples == (5, 6)
    assert choices["super_resolution"].default_model == "realesr-animevideov3-x2"


def test_each_tab_opens_on_the_hosts_model_with_its_examples(config):
    t2i = text_to_image.build()
    model = model_list(t2i, "Model")
    assert model.value == "stabilityai/sd-turbo"
    assert values(model)[-1] == "someone/their-model" and catalog.DEFAULT_DIFFUSION_MODEL in values(model)
    assert example_column(t2i, "Prompts to try", 0) == ["a red apple on a table", "a rocket at dawn"]
    # the settings follow the default model from the start: sd-turbo's own 1 step, guidance 0, Euler a
    steps = [s for s in components(t2i, gr.Slider) if s.label == "Steps"][0]
    assert "model's own (1)" in steps.info
    assert model_list(t2i, "Sampler").choices[0][0] == "the model's own (Euler a)"

    i2i = image_to_image.build()
    assert model_list(i2i, "Model").value == "stabilityai/sd-turbo"
    assert example_column(i2i, "Sketches to redraw", 1) == list(image_to_image.SKETCHES.values())

    face_tab = faces.build()
    assert model_list(face_tab, "Face model").value == "dcgan-digiface-64"
    assert example_column(face_tab, "Seeds to try", 1) == [11, 12]

    sr = super_resolution.build()
    assert model_list(sr, "Model").value == "RealESRGAN_x4plus"


def test_the_app_builds_on_the_hosts_choices(config, monkeypatch):
    monkeypatch.setenv("IMAGEGEN_EXAMPLES_IMAGE_TO_IMAGE", "a cat|a dog|a fox|an owl")
    monkeypatch.setenv("IMAGEGEN_MODELS_SUPER_RESOLUTION", "my-upscaler.safetensors")
    hub = app.build()
    opened = {d.value for d in components(hub, gr.Dropdown) if d.label in ("Model", "Face model")}
    assert {"stabilityai/sd-turbo", "dcgan-digiface-64", "RealESRGAN_x4plus"} <= opened
    assert catalog.DEFAULT_DIFFUSION_MODEL not in opened
    upscalers = [d for d in components(hub, gr.Dropdown) if d.value == "RealESRGAN_x4plus"][0]
    assert values(upscalers)[-1] == "my-upscaler.safetensors"
    prompts = example_column(hub, "Sketches to redraw", 1)
    assert prompts == ["a cat", "a dog", "a fox", "an owl"]
    hub.close()


@pytest.mark.parametrize(("text", "named"), [
    ("[text_to_image\n", "not valid TOML"),
    ("[text_to_imag]\ndefault_model = 'x'\n", "unknown table [text_to_imag]"),
    ("[faces]\ndefault = 'x'\n", "unknown key [faces] default"),
    ("[super_resolution]\nexamples = ['x']\n", "unknown key [super_resolution] examples"),
    ("[text_to_image]\nmodels = 'a/b'\n", "[text_to_image] models must be a list, got str"),
    ("[text_to_image]\ndefault_model = 3\n", "[text_to_image] default_model must be a model name"),
    ("[text_to_image]\nexamples = []\n", "[text_to_image] examples must hold at least one"),
    ("[faces]\nexamples = [-1]\n", "[faces] examples must be seeds"),
    ("faces = 1\n", "faces must be a table"),
])
def test_a_bad_file_is_refused_by_its_key(tmp_path, monkeypatch, text, named):
    path = tmp_path / "host.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(host.CONFIG_ENV, str(path))
    with pytest.raises(ValueError) as err:
        host.load()
    assert named in str(err.value)


@pytest.mark.parametrize(("name", "value", "named"), [
    ("IMAGEGEN_DEFAULT_MODEL_FACE", "x", "$IMAGEGEN_DEFAULT_MODEL_FACE: unknown tab 'FACE'"),
    ("IMAGEGEN_EXAMPLES_SUPER_RESOLUTION", "x", "$IMAGEGEN_EXAMPLES_SUPER_RESOLUTION: super_resolution takes no"),
    ("IMAGEGEN_EXAMPLES_FACES", "seven", "$IMAGEGEN_EXAMPLES_FACES must be seeds"),
    ("IMAGEGEN_CONFIG", "/nonexistent/host.toml", "$IMAGEGEN_CONFIG: cannot read /nonexistent/host.toml"),
])
def test_a_bad_variable_is_refused_by_its_name(monkeypatch, name, value, named):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as err:
        host.load()
    assert named in str(err.value)


def test_a_bad_config_stops_the_start_with_its_key(tmp_path, monkeypatch):
    path = tmp_path / "host.toml"
    path.write_text("[faces]\nmodel = 'x'\n", encoding="utf-8")
    monkeypatch.setenv(host.CONFIG_ENV, str(path))
    monkeypatch.setattr(app.limits, "configure", lambda public: app.limits.current())
    monkeypatch.setattr(app, "prepare_all", lambda: pytest.fail("started despite a bad config"))
    with pytest.raises(SystemExit) as stop:
        app.main([])
    assert "unknown key [faces] model" in str(stop.value)


def test_the_file_turns_the_marks_off_unless_a_variable_says_otherwise(tmp_path, monkeypatch):
    from core.imaging import credentials, watermark

    for variable in host.MARKS.values():
        monkeypatch.setenv(variable, "")  # unset for apply_marks, and restored after the test (which sets them)
    path = tmp_path / "host.toml"
    path.write_text("[provenance]\nwatermark = false\ncontent_credentials = false\n", encoding="utf-8")
    monkeypatch.setenv(host.CONFIG_ENV, str(path))
    assert host.apply_marks() == {"watermark": False, "content_credentials": False}
    assert not watermark.enabled() and not credentials.enabled()
    host.load()  # the tabs' loader takes the [provenance] table too
    monkeypatch.setenv(watermark.ENV, "1")  # the variable wins over the file
    assert host.apply_marks() == {"watermark": True, "content_credentials": False}


def test_marks_are_on_when_nothing_is_set_and_a_bad_switch_is_refused(tmp_path, monkeypatch):
    for variable in host.MARKS.values():
        monkeypatch.setenv(variable, "")
    assert host.apply_marks() == {"watermark": True, "content_credentials": True}
    path = tmp_path / "host.toml"
    path.write_text("[provenance]\nwatermark = 'no'\n", encoding="utf-8")
    monkeypatch.setenv(host.CONFIG_ENV, str(path))
    with pytest.raises(ValueError, match=r"\[provenance\] watermark must be true or false, got 'no'"):
        host.apply_marks()
    path.write_text("[provenance]\nc2pa = false\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown key \[provenance\] c2pa"):
        host.apply_marks()
    monkeypatch.delenv(host.CONFIG_ENV)
    monkeypatch.setenv("IMAGEGEN_WATERMARK", "perhaps")
    with pytest.raises(ValueError, match=r"\$IMAGEGEN_WATERMARK must be 1 or 0 .*, got 'perhaps'"):
        host.apply_marks()
    monkeypatch.setenv("IMAGEGEN_WATERMARK", "OFF")
    assert host.apply_marks()["watermark"] is False
