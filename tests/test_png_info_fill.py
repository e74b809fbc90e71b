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


def plain(value):
    """A filled value as the control gets it (a slider's comes as an update that also widens it)."""
    return value.value if isinstance(value, gr.Slider) else value


def by_label(slots, values):
    return {slots[name].label: plain(value) for name, value in zip(slots, values)}


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
    got = {name: plain(value) for name, value in zip(slots, values)}
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
        got = {name: plain(value) for name, value in zip(slots, ui._filled(slots)({"path": str(upload)}))}
        assert (got["prompt"], got["seed"], got["steps"]) == ("red apple", 7, 15)
        assert Path(got["image"]).resolve() == Path(upload).resolve()
        assert ui._filled({"image": slots["image"]})(str(upload)) == str(Path(upload).resolve())  # one output
        with pytest.raises(gr.Error, match="drop a picture"):
            ui._filled(slots)(None)
    finally:
        shutil.rmtree(folder)


def test_sizes_the_pictures_model_refuses_are_left_out_and_sliders_widen_to_what_is_filled(tabs):
    slots = tabs["text_to_image"].fills
    settings = {"prompt": "a cat", "model": core.catalog.DEFAULT_DIFFUSION_MODEL, "width": 512, "height": 48}
    values, skipped = ui.fill_values(settings, slots)
    got = dict(zip(slots, values))
    assert isinstance(got["width"], SKIP) and skipped == [f"width 512 ({settings['model']} takes 16..64 px)"]
    assert isinstance(got["height"], gr.Slider) and got["height"].value == 48
    assert got["height"].maximum == slots["height"].maximum  # the widest end, whatever a model narrowed it to
    values, skipped = ui.fill_values({"prompt": "a cat", "model": "someone/unknown", "width": 512}, slots)
    assert dict(zip(slots, values))["width"].value == 512 and skipped == []  # core says what it takes when used


def test_a_faces_settings_fill_no_diffusion_tab(tabs, tmp_path, monkeypatch):
    folder = Path(gradio_utils.get_upload_folder()) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    face = core.save_png(core.generate_faces(count=1, seed=3, model=core.catalog.DCGAN_FACE_MODEL).images[0],
                         folder / "face.png", {"model": core.catalog.DCGAN_FACE_MODEL, "seed": 3, "truncation_psi": 0.7})
    warned = []
    monkeypatch.setattr(gr, "Warning", warned.append)
    try:
        values = ui._filled(tabs["text_to_image"].fills)(str(face))
        assert all(isinstance(v, SKIP) for v in values)
        assert warned == ["This picture carries the settings of a face or an upscale, not of a diffusion model; "
                          "nothing was filled."]
        slots = tabs["image_to_image"].fills
        got = dict(zip(slots, ui._filled(slots)(str(face))))
        assert Path(got["image"]).resolve() == face.resolve() and isinstance(got["model"], SKIP)
        assert isinstance(got["prompt"], SKIP) and warned[-1].endswith("only the picture itself is sent.")
    finally:
        shutil.rmtree(folder)


def test_inpaint_and_outpaint_settings_fill_their_sub_tabs(tabs):
    slots = tabs["image_to_image"].fills
    text = ("a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512, Denoising strength: 0.55, "
            "Mask blur: 9, Inpaint area: Only masked, Masked area padding: 48, Masked content: latent noise")
    got = {slots[name].label: plain(value)
           for name, value in zip(slots, ui.fill_values(to_settings(parse_infotext(text)), slots)[0])}
    assert (got["Mask blur"], got["Inpaint area"], got["Only masked padding (px)"], got["Masked content"]) == (
        9, "masked", 48, "noise")
    assert got["Strength"] == 0.55 and isinstance(got["Left (px)"], SKIP) and isinstance(got["Fill"], SKIP)
    text = "a cat\nSteps: 20, Seed: 3, Outpaint: \"left 16, right 0, top 64, bottom 8\", Outpaint fill: noise"
    got = {slots[name].label: plain(value)
           for name, value in zip(slots, ui.fill_values(to_settings(parse_infotext(text)), slots)[0])}
    assert [got[f"{side} (px)"] for side in ("Left", "Right", "Top", "Bottom")] == [16, 0, 64, 8]
    assert got["Fill"] == "noise" and isinstance(got["Inpaint area"], SKIP)


def test_controlnet_units_fill_their_rows_without_pictures_and_the_notes_say_what_is_not_stored(tabs):
    slots = tabs["text_to_image"].fills
    unit = {"model": "ControlNet/canny.safetensors", "preprocessor": "canny", "weight": 0.7, "start": 0.1,
            "end": 0.9, "low_threshold": 50, "high_threshold": 150, "sha256": "ab" * 32}
    settings = {"prompt": "a cat", "seed": 3, "controlnets": [unit]}
    got = dict(zip(slots, ui.fill_values(settings, slots)[0]))
    assert (got["controlnet_1"], got["controlnet_1_preprocessor"], plain(got["controlnet_1_weight"]),
            plain(got["controlnet_1_start"]), plain(got["controlnet_1_end"]), plain(got["controlnet_1_low_threshold"]),
            plain(got["controlnet_1_high_threshold"])) == ("ControlNet/canny.safetensors", "canny", 0.7, 0.1, 0.9, 50, 150)
    assert got["controlnet_1_image"] is None and got["controlnet_2"] == "" and got["controlnet_2_image"] is None
    assert ui.fill_notes(settings, slots) == [
        "ControlNet: 1 unit(s) filled without their control images, which a picture does not store; give them "
        "again (in image to image a unit without one follows the picture)."]
    got = dict(zip(slots, ui.fill_values({"prompt": "a cat"}, slots)[0]))  # made without: every unit cleared
    assert got["controlnet_1"] == "" and got["controlnet_1_image"] is None and ui.fill_notes({"prompt": "a"}, slots) == []
    got = dict(zip(slots, ui.fill_values({}, slots)[0]))  # no diffusion settings: the panel is left as it is
    assert isinstance(got["controlnet_1"], SKIP) and isinstance(got["controlnet_1_image"], SKIP)


def test_our_outpaint_json_fills_the_sides_and_notes_the_inputs_not_stored(tabs):
    slots = tabs["image_to_image"].fills
    settings = {"prompt": "a cat", "outpaint": {"left": 8, "right": 0, "top": 16, "bottom": 0}, "fill": "edge",
                "mask_blur": 2}
    got = dict(zip(slots, ui.fill_values(settings, slots)[0]))
    assert [plain(got[side]) for side in ("left", "right", "top", "bottom")] == [8, 0, 16, 0]
    assert ui.fill_notes(settings, slots) == [
        "This picture was outpainted: its sides and fill are filled in Outpaint; the picture sent is the extended "
        "one, not the one it started from."]
    inpainted = {"prompt": "a cat", "mask_blur": 4, "inpaint_area": "whole", "masked_content": "original"}
    assert ui.fill_notes(inpainted, slots)[0].startswith("This picture was inpainted: its settings are filled in Inpaint")
    assert ui.fill_notes(inpainted, tabs["text_to_image"].fills) == []  # text to image has no Inpaint
