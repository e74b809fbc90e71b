"""The image-to-image tab's inpaint, outpaint and sketch endpoints, end to end through gradio_client on the
embedded emoji model: /inpaint, /outpaint, /sketch_to_image, and the old /image_to_image call (the hub of
tests/test_app.py, one server for the module). Few steps and small pictures: the machine is small.
"""

from __future__ import annotations

import inspect

import gradio as gr
import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image, ImageDraw
from test_app import client, hub  # noqa: F401  (the module's server and its client)

from core import catalog
from demos import controlnet_panel
from demos import image_to_image as tab

FAST = {"steps": 4, "seed": 1, "upscale": "off"}
"""Settings that keep each request short; the pictures keep their own size (no x4)."""
BOX = (20, 14, 40, 30)
"""The mask's white rectangle in the 64x48 picture (left, top, right, bottom)."""


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A 64x48 picture of seeded noise (any change shows), its mask (BOX white on black, L), the same mask as a
    painted RGBA layer (opaque strokes on transparent), a mask of another size, and a 32x24 picture."""
    folder = tmp_path_factory.mktemp("inpaint")
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 48), 0)
    ImageDraw.Draw(mask).rectangle((BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1), fill=255)
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((BOX[0], BOX[1], BOX[2] - 1, BOX[3] - 1), fill=(255, 0, 255, 255))
    paths = {name: str(folder / f"{name}.png") for name in ("picture", "mask", "layer", "wrong", "small")}
    picture.save(paths["picture"])
    mask.save(paths["mask"])
    layer.save(paths["layer"])
    mask.resize((32, 24)).save(paths["wrong"])
    picture.resize((32, 24)).save(paths["small"])
    return paths


def editor(background: str | None, *layers: str) -> dict:
    """An image editor's value as a client sends it: the picture and the painted layers."""
    return {"background": handle_file(background) if background else None,
            "layers": [handle_file(layer) for layer in layers], "composite": None}


def outside(box: tuple[int, int, int, int], margin: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: True farther than `margin` px from `box` (where a blurred mask cannot reach)."""
    keep = np.ones((size[1], size[0]), dtype=bool)
    keep[max(box[1] - margin, 0):box[3] + margin, max(box[0] - margin, 0):box[2] + margin] = False
    return keep


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.int16)


@pytest.mark.slow  # loads the emoji model on first use
@pytest.mark.parametrize("how", ["mask file", "painted layer"])
def test_inpaint_keeps_every_pixel_outside_the_blurred_mask(client, files, how):  # noqa: F811
    blur = 2
    mask_args = ((editor(files["picture"]), handle_file(files["mask"])) if how == "mask file"
                 else (editor(files["picture"], files["layer"]), None))
    gallery, seeds, parameters = client.predict(*mask_args[:1], "grinning face", mask_args[1], mask_blur=blur,
                                                api_name="/inpaint", **FAST)
    result, original = pixels(gallery[0]["image"]), pixels(files["picture"])
    assert result.shape == original.shape  # the picture's own size, not the working size
    keep = outside(BOX, int(2.5 * blur + 0.5) + 1, (64, 48))
    assert np.array_equal(result[keep], original[keep])
    assert np.abs(result[~keep] - original[~keep]).mean() > 10  # the masked part was redrawn
    assert parameters["mask_blur"] == blur and parameters["inpaint_area"] == "whole" and seeds == "1"


@pytest.mark.slow
def test_inpaint_only_masked_and_its_settings_reach_core(client, files):  # noqa: F811
    gallery, _, parameters = client.predict(editor(files["picture"]), "red apple", handle_file(files["mask"]),
                                            inpaint_area="masked", inpaint_padding=8, masked_content="fill",
                                            strength=0.9, api_name="/inpaint", **FAST)
    assert Image.open(gallery[0]["image"]).size == (64, 48)
    assert (parameters["inpaint_area"], parameters["inpaint_padding"], parameters["masked_content"],
            parameters["strength"]) == ("masked", 8, "fill", 0.9)


@pytest.mark.parametrize("layers, mask, message", [
    ((), "wrong", "mask is 32x24 px but the picture is 64x48 px"),
    ((), None, "mask: paint the part to redraw"),
    (("layer",), "mask", "mask: a mask is painted over the picture and a mask picture is uploaded too; keep one"),
])
def test_a_bad_missing_or_doubled_mask_gets_a_message_naming_mask(client, files, layers, mask, message):  # noqa: F811
    with pytest.raises(Exception) as caught:
        client.predict(editor(files["picture"], *(files[name] for name in layers)), "red apple",
                       handle_file(files[mask]) if mask else None, api_name="/inpaint", **FAST)
    assert message in str(caught.value)


@pytest.mark.parametrize("endpoint", ["/inpaint", "/sketch_to_image"])
def test_an_editor_without_a_picture_says_how_to_send_one(client, files, endpoint):  # noqa: F811
    with pytest.raises(Exception) as caught:
        client.predict(editor(None), "red apple", *([handle_file(files["mask"])] if endpoint == "/inpaint" else []),
                       api_name=endpoint, **FAST)
    assert 'image: the editor holds no picture; upload one into it (over the API, send the editor\'s value: ' \
           '{"background": handle_file(path)' in str(caught.value)


@pytest.mark.slow
def test_a_sketch_of_layers_alone_is_drawn_on_white(client, files):  # noqa: F811
    gallery, _, parameters = client.predict(editor(None, files["layer"]), "red apple", strength=0.5,
                                            api_name="/sketch_to_image", **FAST)
    assert parameters["input_size"] == [64, 48] and Image.open(gallery[0]["image"]).size == (32, 32)


def test_outpaint_takes_width_and_height_as_the_working_size(monkeypatch):
    called = []
    monkeypatch.setattr(tab, "_redraw", lambda fn, picture, prompt, args, control, progress, **kwargs: called.append(
        (args, kwargs)))
    settings = dict(zip(tab.SETTINGS, ("", catalog.DEFAULT_DIFFUSION_MODEL, "", 4, -1, 48, 0, 1, 1, 1, "")))
    settings.update({name: value for name, value in zip(tab.SETTINGS[11:], ("", 1.0) * 3)})
    tab.outpaint(None, "red apple", right=8, **settings)
    args, kwargs = called[0]
    assert (args["width"], args["height"], kwargs["right"]) == (48, None, 8)  # 0: core's working_size
    assert args["upscale"] is False  # "the model's own" x4 is off: the picture's pixels are kept


def test_a_setting_out_of_range_is_named(client, files):  # noqa: F811
    with pytest.raises(Exception) as caught:
        client.predict(editor(files["picture"]), "red apple", handle_file(files["mask"]), mask_blur=100,
                       api_name="/inpaint")
    assert "Mask blur must be" in str(caught.value) and "got 100" in str(caught.value)


@pytest.mark.slow
def test_outpaint_returns_the_extended_size(client, files):  # noqa: F811
    gallery, _, parameters = client.predict(handle_file(files["small"]), "red apple", left=8, right=0, top=16,
                                            api_name="/outpaint", **FAST)
    result = pixels(gallery[0]["image"])
    assert result.shape == (24 + 16, 32 + 8, 3)
    assert parameters["outpaint"] == {"left": 8, "right": 0, "top": 16, "bottom": 0}
    assert "width" not in parameters.get("warnings", [])


@pytest.mark.slow
def test_outpaint_past_the_models_sides_redraws_at_a_fitted_size(client, files):  # noqa: F811
    gallery, _, parameters = client.predict(handle_file(files["picture"]), "red apple", right=64, api_name="/outpaint",
                                            **FAST)
    assert Image.open(gallery[0]["image"]).size == (128, 48)  # the extended picture, at its own size
    assert (parameters["width"], parameters["height"]) == (64, 24)  # redrawn at the emoji model's largest
    assert any("redrawn at 64x24 px" in warning for warning in parameters["warnings"])


@pytest.mark.slow
def test_an_uploaded_mask_works_beside_an_untouched_editor_layer(client, files, tmp_path):  # noqa: F811
    blank = tmp_path / "blank.png"
    Image.new("RGBA", (64, 48), (0, 0, 0, 0)).save(blank)  # the layer the page sends before any stroke
    gallery, _, parameters = client.predict(editor(files["picture"], str(blank)), "red apple",
                                            handle_file(files["mask"]), mask_blur=0, api_name="/inpaint", **FAST)
    result, original = pixels(gallery[0]["image"]), pixels(files["picture"])
    keep = outside(BOX, 1, (64, 48))
    assert np.array_equal(result[keep], original[keep]) and not np.array_equal(result[~keep], original[~keep])


@pytest.mark.slow
def test_sketch_to_image_draws_from_the_sketch(client, files):  # noqa: F811
    gallery, _, parameters = client.predict(editor(files["small"]), "red apple", strength=0.7,
                                            api_name="/sketch_to_image", **FAST)
    assert Image.open(gallery[0]["image"]).size == (32, 32)  # the model's own size
    assert parameters["strength"] == 0.7 and parameters["input_size"] == [32, 24]


@pytest.mark.slow
@pytest.mark.parametrize("endpoint, args, size", [
    ("/inpaint", lambda f: [editor(f["picture"]), "red apple", handle_file(f["mask"])], (64, 48)),  # no x4
    ("/sketch_to_image", lambda f: [editor(f["small"]), "red apple"], (128, 128)),
    ("/outpaint", lambda f: [handle_file(f["small"]), "red apple"], (64, 24)),  # 32 px more on the right, no x4
])
def test_each_new_endpoint_works_with_only_its_required_inputs(client, files, endpoint, args, size):  # noqa: F811
    gallery, seeds, _ = client.predict(*args(files), api_name=endpoint)
    assert len(gallery) == 1 and Image.open(gallery[0]["image"]).size == size and int(seeds) >= 0


def test_required_inputs_and_controlnet_inputs_over_the_api(client):  # noqa: F811
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    required = {"/image_to_image": ["image", "prompt"], "/inpaint": ["image", "prompt"],
                "/sketch_to_image": ["image", "prompt"], "/outpaint": ["image", "prompt"], "/text_to_image": ["prompt"]}
    for name, wanted in required.items():
        params = endpoints[name]["parameters"]
        assert [p["parameter_name"] for p in params if not p["parameter_has_default"]] == wanted, name
        assert [p["parameter_name"] for p in params][-len(controlnet_panel.PARAMETERS):] == list(
            controlnet_panel.PARAMETERS), name


@pytest.mark.slow
def test_the_old_positional_image_to_image_call_still_works(client, files):  # noqa: F811
    gallery, seeds, parameters = client.predict(
        handle_file(files["small"]), "red apple", 0.5, "", catalog.DEFAULT_DIFFUSION_MODEL, "", 4, -1, 0, 0, 3, 1, 1,
        "off", api_name="/image_to_image")
    assert Image.open(gallery[0]["image"]).size == (32, 32) and seeds == "3" and parameters["strength"] == 0.5


def test_a_controlnet_on_the_emoji_model_gets_cores_message(client, files):  # noqa: F811
    with pytest.raises(Exception) as caught:
        client.predict(handle_file(files["small"]), "red apple", controlnet_1="nothing.safetensors",
                       api_name="/image_to_image", **FAST)
    assert "controlnets[0]" in str(caught.value) or "ControlNet" in str(caught.value)


def test_controlnet_units_skip_those_without_a_model():
    assert controlnet_panel.units({}) is None
    chosen = controlnet_panel.units({"controlnet_2": "canny.safetensors", "controlnet_2_weight": 0.5,
                                     "controlnet_2_preprocessor": "canny"})
    assert chosen == [{**controlnet_panel.DEFAULTS, "model": "canny.safetensors", "weight": 0.5,
                       "preprocessor": "canny"}]
    with pytest.raises(gr.Error, match="controlnet_1_image: a control image is given but ControlNet 1 is None"):
        controlnet_panel.units({"controlnet_1_image": {"path": "/tmp/edges.png"}, "controlnet_2": "canny.safetensors"})


def test_each_endpoint_function_names_the_unit_inputs_with_their_defaults():
    for fn in (tab.generate, tab.inpaint, tab.sketch_to_image, tab.outpaint):
        parameters = inspect.signature(fn).parameters
        assert {name: parameters[name].default for name in controlnet_panel.PARAMETERS} == controlnet_panel.PARAMETERS


def test_the_choices_offered_are_cores():
    assert [value for _, value in tab.labelled(catalog.MASKED_CONTENTS)] == list(catalog.MASKED_CONTENTS)
    assert dict(tab.labelled(catalog.INPAINT_AREAS)) == {"Whole picture": "whole", "Only masked": "masked"}
