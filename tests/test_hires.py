"""The Hires. fix of text to image (core.generators.hires): two passes on the emoji models and a tiny SD 1.x,
the A1111 text of issue 15's settings, bad input, ZeroGPU, and the /text_to_image endpoint. Offline, fixed
seeds, few steps."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import sd_fixtures
from PIL import Image
from test_zerogpu import _must_be_inside, fake_spaces  # noqa: F401

import core
from core import catalog
from core.errors import InvalidInput
from core.generators import diffusion, enlarge, hires
from core.imaging.parameters import NEGATIVE, PROMPT, format_infotext, infotext, parse_infotext, to_settings
from core.models import registry as models
from core.models import zerogpu
from core.models.upscalers import Upscaler, get_upscaler

SR = "realesr-animevideov3-x4"
"""The bundled upscaler (built at setup)."""


@pytest.fixture(autouse=True)
def no_network(request):
    """Every test but the API's (whose client talks to its local server) runs with the network refused."""
    if "client" not in request.fixturenames:
        request.getfixturevalue("offline")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture
def second_passes(monkeypatch) -> list[dict]:
    """Each call the fix makes to image_to_image (its second pass): the start picture and the arguments."""
    calls: list[dict] = []
    real = diffusion.image_to_image

    def spy(image, prompt, **kwargs):
        calls.append({"image": image.copy(), "prompt": prompt, **kwargs})
        return real(image, prompt, **kwargs)

    monkeypatch.setattr(diffusion, "image_to_image", spy)
    return calls


# 1. the two passes ---------------------------------------------------------------------------------------


def test_the_first_pass_is_plain_text_to_image_and_each_picture_keeps_its_seed(second_passes):
    call = {"steps": 3, "seed": 7, "batch_size": 2, "negative_prompt": "rocket", "scheduler": "Euler"}
    plain = core.text_to_image("red apple", **call)
    fixed = core.text_to_image("red apple", **call, hires_scale=2, hires_strength=0.5)
    assert [im.size for im in plain.images] == [(32, 32)] * 2 and [im.size for im in fixed.images] == [(64, 64)] * 2
    assert fixed.seeds == plain.seeds == [7, 8]
    for picture, second, seed in zip(plain.images, second_passes, plain.seeds):
        assert np.array_equal(pixels(second["image"]), pixels(picture.resize((64, 64), Image.Resampling.LANCZOS)))
        assert (second["seed"], second["prompt"], second["negative_prompt"], second["scheduler"]) == (
            seed, "red apple", "rocket", "Euler")
        assert (second["width"], second["height"], second["upscale"]) == (64, 64, False)
    # A1111's hires steps: the first pass's 3 run, the last 3 of a schedule of int(3 / 0.5) = 6
    assert second_passes[0]["steps"] == 6 and int(6 * second_passes[0]["strength"]) == 3
    p = fixed.parameters
    assert (p["width"], p["height"], p["hires_size"], p["seed"]) == (32, 32, [64, 64], 7)
    assert {k: p[k] for k in ("hires_scale", "hires_upscaler", "hires_strength", "hires_steps", "upscale")} == {
        "hires_scale": 2, "hires_upscaler": "Lanczos", "hires_strength": 0.5, "hires_steps": 0, "upscale": False}
    assert not any(key.startswith("hires") for key in plain.parameters)


def test_a_small_strength_keeps_the_enlarged_first_pass_and_a_large_one_redraws_it():
    call = {"steps": 3, "seed": 11, "hires_scale": 2, "hires_steps": 1}
    enlarged = pixels(core.text_to_image("red apple", steps=3, seed=11).images[0].resize((64, 64), Image.LANCZOS))
    light = pixels(core.text_to_image("red apple", **call, hires_strength=0.05).images[0])
    heavy = pixels(core.text_to_image("red apple", **call, hires_strength=1.0).images[0])
    assert np.abs(light - enlarged).mean() < 6 < np.abs(heavy - enlarged).mean()


def test_a_super_resolution_upscaler_enlarges_the_first_pass(tiny_emoji, second_passes):
    call = {"model": tiny_emoji, "steps": 2, "seed": 5}
    first = core.text_to_image("red apple", **call).images[0]
    result = core.text_to_image("red apple", **call, hires_scale=2, hires_upscaler=SR, hires_steps=1)
    assert result.images[0].size == (32, 32) and result.parameters["hires_upscaler"] == SR
    by_net = core.upscale(first, model=SR, scale=2).images[0]  # the x4 net, then Lanczos down to x2
    assert np.array_equal(pixels(second_passes[0]["image"]), pixels(by_net))
    assert not np.array_equal(pixels(by_net), pixels(first.resize((32, 32), Image.Resampling.LANCZOS)))


def test_hires_then_the_x4_upscale(tiny_emoji):
    result = core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=5, hires_scale=2, hires_steps=1,
                                upscale=True)
    assert result.images[0].size == (128, 128) and result.parameters["upscale"] is True
    fields = parse_infotext(infotext(result.parameters, result.images[0].size))
    assert (fields["Size"], fields["Hires upscale"], fields["Postprocess upscale by"]) == ("16x16", "2", "4")


@pytest.mark.parametrize("upscaler, upscale", [("Lanczos", False), (SR, True)])
def test_progress_counts_both_passes_from_the_start(tiny_emoji, upscaler, upscale):
    reports: list[tuple[int, int]] = []
    core.text_to_image("red apple", model=tiny_emoji, steps=3, seed=2, batch_size=2, hires_scale=2,
                       hires_upscaler=upscaler, hires_steps=2, upscale=upscale, on_step=lambda *r: reports.append(r))
    tiles = enlarge.count_tiles((16, 16), get_upscaler(SR), scale=2) if upscaler == SR else 0
    x4 = enlarge.x4_tiles((32, 32)) if upscale else 0
    total = 2 * 3 + 2 * (tiles + 2 + x4)  # per picture on the CPU: its first pass, upscaler tiles, 2 hires steps, x4
    assert reports == [(done, total) for done in range(1, total + 1)]


@pytest.mark.parametrize("k", [2, 4, 5])  # in the first pass, in the second pass of picture 1, of picture 2
def test_a_stop_ends_the_work_within_one_step(tiny_emoji, k):
    reports: list[tuple[int, int]] = []

    def on_step(done, total):
        reports.append((done, total))
        if done == k:
            raise core.Cancelled("stopped")

    with pytest.raises(core.Cancelled):
        core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=2, batch_size=2, hires_scale=2,
                           hires_steps=1, on_step=on_step)
    assert reports == [(done, 2 * 2 + 2 * 1) for done in range(1, k + 1)]


def test_previews_come_from_both_passes(tiny_emoji):
    sizes: list[tuple[int, int]] = []
    core.text_to_image("red apple", model=tiny_emoji, steps=3, seed=2, hires_scale=2, hires_steps=3,
                       on_preview=lambda images: sizes.append(images[0].size), preview_every=1)
    assert sizes == [(16, 16)] * 2 + [(32, 32)] * 2  # every step but each pass's last


def test_hires_on_a_tiny_stable_diffusion_model(models_dir, second_passes):
    sd_fixtures.save_folder(sd_fixtures.tiny_sd1(0), models_dir / "tiny-sd1")
    try:
        result = core.text_to_image("a cat", model="tiny-sd1", steps=2, width=64, height=72, seed=3, hires_scale=1.5,
                                    hires_strength=0.6, hires_steps=3, loras=[])
    finally:
        models.clear_cache()
    assert result.images[0].size == (96, 112) and result.parameters["hires_size"] == [96, 112]  # 108 -> 112
    assert second_passes[0]["steps"] == 5 and int(5 * second_passes[0]["strength"]) == 3


@pytest.mark.parametrize("steps", [1, 2, 7, 25, 40, 99])
@pytest.mark.parametrize("strength", [0.01, 0.07, 0.3, 0.33, 0.5, 0.7, 0.999, 1.0])
def test_the_schedule_runs_exactly_the_hires_steps(steps, strength):
    total, diffusers_strength = hires.schedule(steps, strength)
    assert total == int(steps / min(strength, 0.999))  # A1111's setup_img2img_steps
    assert 0 < diffusers_strength <= 1 and min(int(total * diffusers_strength), total) == steps


# 2. bad input --------------------------------------------------------------------------------------------


def _never(done, total):
    raise AssertionError("work started before the input was checked")


@pytest.mark.parametrize("kwargs, words", [
    ({"hires_scale": 5}, "hires_scale must be 1.0..4.0, got 5"),
    ({"hires_scale": 0.5}, "hires_scale must be 1.0..4.0"),
    ({"hires_scale": "2"}, "hires_scale must be a number"),
    ({"hires_scale": True}, "hires_scale must be a number"),
    ({"hires_scale": 2, "hires_strength": 0}, "hires_strength must be 0.01..1.0"),
    ({"hires_scale": 2, "hires_steps": 2.5}, "hires_steps must be a whole number in 0..100"),
    ({"hires_scale": 2, "hires_steps": 101}, "hires_steps must be 0..100"),
    ({"hires_scale": 2, "hires_upscaler": "Latent"}, f"hires_upscaler must be one of Lanczos, {SR}"),
    ({"hires_upscaler": "nope"}, "hires_upscaler must be one of"),  # checked also when the fix is off
    ({"hires_scale": 2, "width": 64}, "hires_scale 2 makes 128x64 px from 64x32 px, but emoji-diffusion-32 takes "
                                      "sides of at most 64 px: choose a smaller width and height"),
    ({"hires_scale": 2.5}, "makes 80x80 px from 32x32 px, but emoji-diffusion-32 takes sides of at most 64 px: "
                           "choose hires_scale 2 or less"),
    ({"hires_scale": 2, "hires_steps": 30, "hires_strength": 0.1}, "hires_steps 30 at hires_strength 0.1 need a "
     "schedule of 300 steps"),
    ({"hires_scale": 2, "hires_strength": 0.1, "steps": 25}, "the first pass's 25 steps (hires_steps 0) at "
     "hires_strength 0.1 need a schedule of 250 steps"),
    ({"hires_scale": 2, "steps": 0}, "steps must be 1..100"),
])
def test_bad_hires_settings_are_refused_before_any_work(kwargs, words):
    with pytest.raises(InvalidInput) as caught:
        core.text_to_image("red apple", seed=1, on_step=_never, **kwargs)
    assert words in str(caught.value)


def test_a_too_long_schedule_says_what_fits():
    with pytest.raises(InvalidInput, match=r"set hires_steps to 10 or fewer, or raise hires_strength to 0\.3 or more"):
        core.text_to_image("red apple", hires_scale=2, hires_steps=30, hires_strength=0.1, on_step=_never)


def test_scale_one_is_off(second_passes):
    off = core.text_to_image("red apple", steps=2, seed=4, hires_scale=1, hires_upscaler=SR, hires_steps=5)
    plain = core.text_to_image("red apple", steps=2, seed=4)
    assert not second_passes and np.array_equal(pixels(off.images[0]), pixels(plain.images[0]))
    assert off.parameters == plain.parameters


# 3. the A1111 text ---------------------------------------------------------------------------------------


def test_a_hires_picture_regenerates_from_its_a1111_text_alone(tiny_emoji):
    result = core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=9, hires_scale=2, hires_strength=0.4,
                                hires_steps=3, scheduler="DDIM")
    text = infotext(result.parameters, result.images[0].size)
    assert "Size: 16x16" in text and "Denoising strength: 0.4, Hires upscale: 2, Hires steps: 3, " \
                                     "Hires upscaler: Lanczos" in text
    settings = to_settings(parse_infotext(text))
    assert {k: settings[k] for k in ("hires_scale", "hires_steps", "hires_upscaler", "hires_strength")} == {
        "hires_scale": 2.0, "hires_steps": 3, "hires_upscaler": "Lanczos", "hires_strength": 0.4}
    again = core.text_to_image(settings.pop("prompt"), **settings)
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))


def test_an_a1111_hires_text_maps_to_our_settings():
    text = ('a castle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, '
            'Seed: 42, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, Denoising strength: 0.45, Hires upscale: '
            '1.5, Hires steps: 12, Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1')
    settings = to_settings(parse_infotext(text))
    assert {k: settings[k] for k in ("width", "height", "steps", "hires_scale", "hires_steps", "hires_upscaler",
                                     "hires_strength")} == {
        "width": 512, "height": 768, "steps": 20, "hires_scale": 1.5, "hires_steps": 12,
        "hires_upscaler": "R-ESRGAN 4x+", "hires_strength": 0.45}
    assert "strength" not in settings  # txt2img's Denoising strength is the hires pass's
    no_steps = to_settings(parse_infotext(text.replace("Hires steps: 12, ", "")))
    assert no_steps["hires_steps"] == 0  # A1111 writes none when the hires pass ran the first pass's steps
    img2img = to_settings(parse_infotext(text.replace("Hires upscale: 1.5, Hires steps: 12, Hires upscaler: "
                                                      "R-ESRGAN 4x+, ", "")))
    assert img2img["strength"] == 0.45 and not any(key.startswith("hires") for key in img2img)


BASE = {"prompt": "red apple", "steps": 20, "scheduler": "Euler a", "guidance_scale": 7.0, "seed": 3,
        "width": 64, "height": 64, "model": "m"}
UNIT = {"model": "controlnets/canny.safetensors", "preprocessor": "canny", "weight": 0.8, "start": 0.0, "end": 0.9,
        "low_threshold": 100, "high_threshold": 200}


@pytest.mark.parametrize("ours, fields, settings", [
    ({"mask_blur": 4, "inpaint_area": "whole", "inpaint_padding": 32, "masked_content": "original"},
     {"Mask blur": "4", "Inpaint area": "Whole picture", "Masked content": "original"},
     {"mask_blur": 4, "inpaint_area": "whole", "masked_content": "original"}),
    ({"mask_blur": 0, "inpaint_area": "masked", "inpaint_padding": 48, "masked_content": "noise"},
     {"Mask blur": "0", "Inpaint area": "Only masked", "Masked area padding": "48", "Masked content": "latent noise"},
     {"mask_blur": 0, "inpaint_area": "masked", "inpaint_padding": 48, "masked_content": "noise"}),
    ({"masked_content": "fill"}, {"Masked content": "fill"}, {"masked_content": "fill"}),
    ({"outpaint": {"left": 16, "right": 0, "top": 8, "bottom": 0}, "fill": "edge", "mask_blur": 8},
     {"Mask blur": "8", "Outpaint": "left 16, right 0, top 8, bottom 0", "Outpaint fill": "edge"},
     {"mask_blur": 8, "left": 16, "right": 0, "top": 8, "bottom": 0, "fill": "edge"}),
    ({"controlnets": [UNIT, {**UNIT, "preprocessor": "scribble", "model": "sketch", "weight": 1.0, "end": 1.0}]},
     {"ControlNet 0": "Module: canny, Model: controlnets/canny.safetensors, Weight: 0.8, Threshold A: 100, "
                      "Threshold B: 200, Guidance Start: 0.0, Guidance End: 0.9",
      "ControlNet 1": "Module: scribble, Model: sketch, Weight: 1.0, Guidance Start: 0.0, Guidance End: 1.0"},
     {}),  # units are not read back: they need their pictures
    ({"hires_scale": 2.5, "hires_upscaler": SR, "hires_strength": 0.3, "hires_steps": 0, "hires_size": [160, 160]},
     {"Denoising strength": "0.3", "Hires upscale": "2.5", "Hires upscaler": SR},
     {"hires_scale": 2.5, "hires_upscaler": SR, "hires_strength": 0.3, "hires_steps": 0}),
])
def test_issue_15_settings_are_written_as_a1111_writes_them_and_read_back(ours, fields, settings):
    text = infotext({**BASE, **ours}, (64, 64))
    found = parse_infotext(text)
    assert {key: found[key] for key in fields} == fields
    assert format_infotext(found) == text and found["Version"] == text.rsplit("Version: ", 1)[1]
    back = to_settings(found)
    expected = {"prompt": "red apple", "negative_prompt": "", **{k: v for k, v in BASE.items() if k != "prompt"},
                **settings}
    assert back == expected and found[PROMPT] == "red apple" and found[NEGATIVE] == ""


# 4. ZeroGPU and the API ----------------------------------------------------------------------------------


@pytest.fixture
def spaces_gpu(fake_spaces):  # noqa: F811
    """test_zerogpu's fake `spaces`, with core.generators.hires reloaded under it, and without it after."""
    importlib.reload(hires)
    yield fake_spaces
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zerogpu, "available", lambda: False)
        importlib.reload(hires)


def test_the_upscaler_of_the_fix_runs_inside_spaces_gpu(tiny_emoji, spaces_gpu, monkeypatch):
    seen: list[str] = []
    _must_be_inside(monkeypatch, spaces_gpu, Upscaler, "__call__", seen)
    core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=1, hires_scale=2, hires_upscaler=SR, hires_steps=1)
    assert "Upscaler" in seen and spaces_gpu["inside"] == 0


@pytest.fixture(scope="module")
def client():
    """The text-to-image tab alone, served on a free local port, and a gradio_client for it."""
    from gradio_client import Client
    from servers import free_port

    from demos import text_to_image

    blocks = text_to_image.build().queue()
    blocks.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield Client(blocks.local_url, verbose=False)
    blocks.close()


@pytest.mark.slow  # starts a Gradio server
def test_the_endpoint_takes_the_hires_inputs_after_the_old_ones(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/text_to_image"]
    names = [p["parameter_name"] for p in endpoint["parameters"]]
    at = names.index("hires_scale")
    assert names[at:at + 4] == ["hires_scale", "hires_upscaler", "hires_strength", "hires_steps"]
    assert all(name.startswith("controlnet_") for name in names[at + 4:])  # only ControlNet's came after
    assert [p["parameter_name"] for p in endpoint["parameters"] if not p["parameter_has_default"]] == ["prompt"]
    gallery, seeds, parameters = client.predict("red apple", "", catalog.DEFAULT_DIFFUSION_MODEL, "", 2,
                                              api_name="/text_to_image")  # an old positional call
    assert Image.open(gallery[0]["image"]).size == (128, 128) and "hires_size" not in parameters
    gallery, seeds, parameters = client.predict("red apple", steps=2, seed=3, upscale="off", hires_scale=2,
                                                hires_strength=0.5, hires_steps=1, api_name="/text_to_image")
    assert Image.open(gallery[0]["image"]).size == (64, 64) and parameters["hires_size"] == [64, 64]
    with pytest.raises(Exception, match="hires_upscaler must be one of Lanczos"):
        client.predict("red apple", steps=2, hires_scale=2, hires_upscaler="Latent", api_name="/text_to_image")
    with pytest.raises(Exception, match=r"Upscale by must be in 1\.\.4, got 5"):
        client.predict("red apple", steps=2, hires_scale=5, api_name="/text_to_image")
