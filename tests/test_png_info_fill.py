"""PNG Info's "Send to text to image / image to image": a picture's settings mapped onto the tab's controls
(demos.ui.fill_values), the values fit the controls, and what the picture lacks is left as it is."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import gradio as gr
import pytest
from gradio import utils as gradio_utils

import core
from core.imaging.parameters import parse_infotext, to_settings
from demos import image_to_image, text_to_image, ui

SKIP = type(gr.skip())


@pytest.fixture(scope="module")
def tabs():
    return {"text_to_image": text_to_image.build(), "image_to_image": image_to_image.build()}


@pytest.fixture(scope="module")
def apple(tmp_path_factory) -> str:
    """A PNG of this hub's, made by core.text_to_image("red apple", seed=7, steps=15, scheduler="DDIM")."""
    result = core.text_to_image("red apple", seed=7, steps=15, scheduler="DDIM")
    return str(core.save_png(result.images[0], tmp_path_factory.mktemp("png") / "apple.png", result.parameters))


def by_label(slots, values):
    return {slots[name].label: value for name, value in zip(slots, values)}


def test_slots_name_the_panel_components(tabs):
    slots = tabs["text_to_image"].fills
    assert [slots[name].label for name in ("prompt", "negative_prompt", "model", "scheduler", "steps", "guidance_scale",
                                           "width", "height", "seed", "batch_size", "batch_count", "upscale",
                                           "lora_1", "lora_1_weight")] == [
        "Prompt", "Negative prompt", "Model", "Sampler", "Steps", "Guidance scale (CFG)", "Width (px)",
        "Height (px)", "Seed", "Batch size", "Batch count", "Upscale x4", "LoRA 1", "Weight"]
    more = tabs["image_to_image"].fills
    assert more["strength"].label == "Strength" and more["image"].label == "Start picture"


def test_our_png_fills_text_to_image(tabs, apple):
    slots = tabs["text_to_image"].fills
    values, skipped = ui.fill_values(core.read_parameters(apple)["settings"], slots)
    got = by_label(slots, values)
    assert (got["Prompt"], got["Seed"], got["Steps"], got["Sampler"]) == ("red apple", 7, 15, "DDIM")
    assert (got["Model"], got["Negative prompt"], got["Guidance scale (CFG)"]) == ("emoji-diffusion-32", "", 5.0)
    assert (got["Width (px)"], got["Height (px)"], got["Batch size"], got["Batch count"]) == (32, 32, 1, 1)
    assert got["Upscale x4"] == "off" and got["LoRA 1"] == ""  # no LoRAs: the rows are cleared
    assert skipped == []


def test_missing_and_unfit_values_are_skipped(tabs):
    slots = tabs["image_to_image"].fills
    settings = {"prompt": "a cat", "steps": 100_000, "seed": "seven", "strength": 0.4,
                "loras": [{"file": "a.safetensors", "weight": 0.8}]}
    values, skipped = ui.fill_values(settings, slots, picture="/tmp/x.png")
    got = dict(zip(slots, values))
    assert got["prompt"] == "a cat" and got["strength"] == 0.4 and got["image"] == "/tmp/x.png"
    assert (got["lora_1"], got["lora_1_weight"], got["lora_2"]) == ("a.safetensors", 0.8, "")
    for name in ("negative_prompt", "model", "scheduler", "guidance_scale", "width", "height", "upscale",
                 "steps", "seed", "lora_2_weight"):
        assert isinstance(got[name], SKIP), name
    assert any(s.startswith("steps 100000 (outside") for s in skipped)
    assert any(s.startswith("seed 'seven' (not a number") for s in skipped)
    values, _ = ui.fill_values({}, tabs["text_to_image"].fills)  # no settings at all: only the batch is reset
    assert sum(not isinstance(v, SKIP) for v in values) == 2


def test_a1111_settings_fill(tabs):
    text = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3, Size: 512x768"
    slots = tabs["text_to_image"].fills
    got = by_label(slots, ui.fill_values(to_settings(parse_infotext(text)), slots)[0])
    assert (got["Prompt"], got["Negative prompt"], got["Sampler"], got["Steps"], got["Seed"]) == (
        "a cat", "dog", "DPM++ 2M Karras", 20, 3)
    assert (got["Width (px)"], got["Height (px)"], got["Guidance scale (CFG)"]) == (512, 768, 7.0)
    assert isinstance(got["Model"], SKIP) and isinstance(got["LoRA 1"], SKIP)


def test_event_function_reads_the_upload(tabs, apple):
    folder = Path(gradio_utils.get_upload_folder()) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    upload = shutil.copy(apple, folder / "apple.png")
    try:
        slots = tabs["image_to_image"].fills
        got = dict(zip(slots, ui._filled(slots)({"path": str(upload)})))
        assert (got["prompt"], got["seed"], got["steps"]) == ("red apple", 7, 15)
        assert Path(got["image"]).resolve() == Path(upload).resolve()
        assert ui._filled({"image": slots["image"]})(str(upload)) == [str(Path(upload).resolve())]
        with pytest.raises(gr.Error, match="drop a picture"):
            ui._filled(slots)(None)
    finally:
        shutil.rmtree(folder)
