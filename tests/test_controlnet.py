"""ControlNet: files people bring in every form, the preprocessors, the pipelines, and what is refused.

Tiny random ControlNets are built by diffusers' own `ControlNetModel.from_unet` from the tiny SD 1.x / SDXL
UNets (tests/sd_fixtures.py) and written as a diffusers folder, a single file in the original layout that A1111
users keep (`control_model.input_hint_block.*`), and a single file in diffusers' layout.
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import sd_fixtures
import torch
from PIL import Image, ImageDraw

import core
from core import catalog
from core.errors import InvalidInput, ModelNotFound, UnsafeModelFile
from core.imaging import control
from core.models import controlnet, diffusion
from core.models import files as model_files
from core.models import registry as models

pytestmark = pytest.mark.usefixtures("offline")
SIDE = 64
FAST = {"steps": 2, "width": SIDE, "height": SIDE, "seed": 3}


def sketch() -> Image.Image:
    """Dark strokes on light paper (64 px): a circle and a line."""
    picture = Image.new("RGB", (SIDE, SIDE), (245, 240, 230))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((12, 12, 52, 52), outline=(20, 20, 20), width=3)
    draw.line((4, 60, 60, 4), fill=(40, 40, 40), width=2)
    return picture


def squares() -> Image.Image:
    """Another control picture: two filled squares."""
    picture = Image.new("RGB", (SIDE, SIDE), "white")
    draw = ImageDraw.Draw(picture)
    draw.rectangle((8, 8, 28, 28), fill="black")
    draw.rectangle((36, 36, 56, 56), fill="black")
    return picture


@pytest.fixture(scope="module")
def cn_root(tmp_path_factory):
    """A models folder with the tiny SD 1.x and SDXL models and an SD 1.x inpainting model (9-channel UNet) as
    diffusers folders, and their ControlNets in every form; yields the built ControlNets by family."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    folder = tmp_path_factory.mktemp("controlnet") / "models"
    sd1, sdxl = sd_fixtures.tiny_sd1(0), sd_fixtures.tiny_sdxl(0)
    nets = {"sd1": sd_fixtures.tiny_controlnet(sd1, 1), "sdxl": sd_fixtures.tiny_controlnet(sdxl, 1)}
    sd_fixtures.save_folder(sd1, folder / "tiny-sd1")
    sd_fixtures.save_folder(sdxl, folder / "tiny-sdxl")
    with torch.random.fork_rng():
        torch.manual_seed(1)
        config = {k: v for k, v in sd1.unet.config.items() if not k.startswith("_")}  # as test_inpaint builds it
        unet = UNet2DConditionModel.from_config(config | {"in_channels": 9})
    nine = StableDiffusionInpaintPipeline(**(sd1.components | {"unet": unet}), requires_safety_checker=False)
    sd_fixtures.save_folder(nine, folder / "tiny-sd1-inpainting")
    for family, net in nets.items():
        net.save_pretrained(folder / "ControlNet" / f"{family}-folder", safe_serialization=True)
        sd_fixtures.save_controlnet(net, folder / "ControlNet" / f"{family}-original.safetensors")
        sd_fixtures.save_controlnet(net, folder / "ControlNet" / f"{family}-diffusers.safetensors", "diffusers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        yield nets
    models.clear_cache()


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def mask() -> Image.Image:
    """White (redraw) over the middle of a 64-px picture."""
    painted = Image.new("L", (SIDE, SIDE), 0)
    ImageDraw.Draw(painted).rectangle((16, 16, 48, 48), fill=255)
    return painted


def unit(name: str, **settings) -> dict:
    return {"model": f"ControlNet/{name}", "image": sketch(), "preprocessor": "scribble"} | settings


# --- files ------------------------------------------------------------------------------------------------

def test_the_models_folder_lists_controlnets_of_every_form_and_nowhere_else(cn_root):
    forms = [f"ControlNet/{family}-{form}" for family in ("sd1", "sdxl")
             for form in ("diffusers.safetensors", "folder", "original.safetensors")]
    assert catalog.controlnets() == model_files.scan("controlnet") == forms
    assert model_files.scan("checkpoint") == ["tiny-sd1", "tiny-sd1-inpainting", "tiny-sdxl"]
    assert model_files.scan("upscaler") == [] and model_files.scan("lora") == []
    assert catalog.PREPROCESSORS == ("canny", "scribble", "none")


@pytest.mark.parametrize("family, form", [("sd1", "folder"), ("sd1", "original.safetensors"),
                                          ("sd1", "diffusers.safetensors"), ("sdxl", "original.safetensors"),
                                          ("sdxl", "diffusers.safetensors")])
def test_each_layout_loads_the_weights_it_was_saved_with(cn_root, family, form):
    net = controlnet.load(f"ControlNet/{family}-{form}", diffusion.get(f"tiny-{family}"))
    want, got = cn_root[family].state_dict(), net.state_dict()
    assert sorted(got) == sorted(want)
    assert all(torch.equal(got[k], want[k]) for k in want), f"{family} {form}: the weights differ"
    assert list(net.config.conditioning_embedding_out_channels) == [8, 16, 32]  # read from the file's shapes
    assert controlnet.load(f"ControlNet/{family}-{form}", diffusion.get(f"tiny-{family}")) is net  # cached


def test_a_pickled_controlnet_is_read_without_unpickling_code(cn_root):
    folder = model_files.MODELS_DIR / "controlnet"
    folder.mkdir(exist_ok=True)
    torch.save(sd_fixtures.controlnet_state(cn_root["sd1"]), folder / "plain.pth")
    torch.save({"state_dict": sd_fixtures.controlnet_state(cn_root["sd1"]), "x": Image.new("L", (1, 1))},
               folder / "code.pth")
    try:
        assert {"controlnet/code.pth", "controlnet/plain.pth"} <= set(catalog.controlnets())
        net = controlnet.load("controlnet/plain.pth", diffusion.get("tiny-sd1"))
        assert torch.equal(net.controlnet_mid_block.weight, cn_root["sd1"].controlnet_mid_block.weight)
        with pytest.raises(UnsafeModelFile, match="code.pth needs unpickling of code"):
            controlnet.load("controlnet/code.pth", diffusion.get("tiny-sd1"))
    finally:
        for name in ("plain.pth", "code.pth"):
            (folder / name).unlink()


def test_bad_controlnet_files_are_refused_by_name(cn_root):
    folder = model_files.MODELS_DIR / "ControlNet"
    original = folder / "sd1-original.safetensors"
    broken = sd_fixtures.truncated_copy(original, folder / "broken.safetensors")
    lora = folder.parent / "lora.safetensors"
    from safetensors.torch import save_file

    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, lora)
    state = sd_fixtures.controlnet_state(cn_root["sd1"])
    del state["control_model.zero_convs.0.0.weight"]
    save_file({k: t.contiguous() for k, t in state.items()}, folder / "partial.safetensors")
    m = diffusion.get("tiny-sd1")
    try:
        for name, error, words in [
                ("ControlNet/broken.safetensors", UnsafeModelFile,
                 r"broken.safetensors is not a readable .* \(truncated"),
                ("lora.safetensors", UnsafeModelFile, "lora.safetensors is not a ControlNet"),
                ("ControlNet/partial.safetensors", UnsafeModelFile,
                 r"partial.safetensors does not fit the model.s UNet architecture "
                 r"\(lacks controlnet_down_blocks.0.weight\)"),
                ("ControlNet/missing.safetensors", ModelNotFound, "missing.safetensors not found")]:
            with pytest.raises(error, match=words):
                controlnet.prepare(m, controlnet.parse_units([unit(name.removeprefix("ControlNet/"))
                                                              | {"model": name}]), "text_to_image", SIDE, SIDE)
    finally:
        for path in (broken, lora, folder / "partial.safetensors"):
            path.unlink()
    assert controlnet.prepare(m, controlnet.parse_units([unit("sd1-original.safetensors")]), "text_to_image",
                              SIDE, SIDE).pipe is not None  # the good one still loads


# --- what it does, through core ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["folder", "original.safetensors", "diffusers.safetensors"])
def test_the_control_image_steers_the_output_and_weight_zero_is_the_models_own(cn_root, form):
    plain = core.text_to_image("a cat", model="tiny-sd1", **FAST)
    circle = core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit(f"sd1-{form}")], **FAST)
    boxes = core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit(f"sd1-{form}", image=squares())], **FAST)
    zero = core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit(f"sd1-{form}", weight=0)], **FAST)
    seed = FAST["seed"]
    assert np.abs(pixels(circle) - pixels(plain)).mean() > 0.5, f"seed {seed}, {form}: the ControlNet changed nothing"
    assert np.abs(pixels(circle) - pixels(boxes)).mean() > 0.5, f"seed {seed}, {form}: two control images, one output"
    assert np.array_equal(pixels(zero), pixels(plain)), f"seed {seed}, {form}: weight 0 is not the model's own output"
    again = core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit(f"sd1-{form}")], **FAST)
    assert np.array_equal(pixels(again), pixels(circle)), f"seed {seed}, {form}: not deterministic"
    record = {"model": f"ControlNet/sd1-{form}", "preprocessor": "scribble", "weight": 1.0, "start": 0.0, "end": 1.0}
    if form != "folder":
        file = model_files.MODELS_DIR / "ControlNet" / f"sd1-{form}"
        record["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    assert circle.parameters["controlnets"] == [record] and plain.parameters["controlnets"] == []
    assert zero.parameters["controlnets"] == [record | {"weight": 0.0}]  # recorded as asked, not run


def test_sdxl_controlnets_steer_text_to_image_too(cn_root):
    plain = pixels(core.text_to_image("a cat", model="tiny-sdxl", **FAST))
    for form in ("folder", "original.safetensors"):
        steered = core.text_to_image("a cat", model="tiny-sdxl", controlnets=[unit(f"sdxl-{form}", preprocessor="canny",
                                                                                   image=squares())], **FAST)
        assert np.abs(pixels(steered) - plain).mean() > 0.5, f"seed {FAST['seed']}, SDXL {form}: nothing changed"


@pytest.mark.parametrize("task, pipeline", [("text_to_image", "StableDiffusionControlNetPipeline"),
                                            ("image_to_image", "StableDiffusionControlNetImg2ImgPipeline"),
                                            ("inpaint", "StableDiffusionControlNetInpaintPipeline")])
def test_two_units_make_a_multicontrolnet_pipeline_of_the_models_own_modules(cn_root, task, pipeline):
    m = diffusion.get("tiny-sd1")
    units = [unit("sd1-folder", weight=0.5, start=0.5), unit("sd1-original.safetensors", image=None,
                                                               preprocessor="canny", low_threshold=50)]
    made = controlnet.prepare(m, controlnet.parse_units(units), task, SIDE, SIDE, start=squares())
    assert type(made.pipe).__name__ == pipeline and type(made.pipe.controlnet).__name__ == "MultiControlNetModel"
    assert made.pipe.unet is m.text_to_image.unet and made.pipe.vae is m.text_to_image.vae
    assert made.pipe.control_arguments is made.arguments
    sent = pickle.loads(pickle.dumps(made.pipe))  # as ZeroGPU sends it to its worker
    assert type(sent) is type(made.pipe) and sent.control_arguments.keys() == made.arguments.keys()
    assert made.arguments["controlnet_conditioning_scale"] == [0.5, 1.0]
    assert made.arguments["control_guidance_start"] == [0.5, 0.0] and made.arguments["control_guidance_end"] == [1, 1]
    assert made.parameters[1] == {"model": "ControlNet/sd1-original.safetensors", "preprocessor": "canny",
                                  "weight": 1.0, "start": 0.0, "end": 1.0, "low_threshold": 50,
                                  "high_threshold": 200, "sha256": made.parameters[1]["sha256"]}
    assert len(made.parameters[1]["sha256"]) == 64 and "sha256" not in made.parameters[0]  # a folder has no one file
    edges = control.control_image(squares(), "canny", SIDE, SIDE, low_threshold=50)  # the start picture's
    assert np.array_equal(np.asarray(made.images[1]), np.asarray(edges))


def test_two_units_at_once_in_text_to_image_and_image_to_image(cn_root):
    units = [unit("sd1-folder", weight=0.5, start=0.5), unit("sd1-original.safetensors", image=None,
                                                               preprocessor="canny", low_threshold=50)]
    both = core.text_to_image("a cat", model="tiny-sd1", controlnets=[units[0], units[1] | {"image": squares()}],
                              **FAST)
    first = core.text_to_image("a cat", model="tiny-sd1", controlnets=units[:1], **FAST)
    assert np.abs(pixels(both) - pixels(first)).mean() > 0.5, f"seed {FAST['seed']}: the second unit changed nothing"
    assert [u["model"] for u in both.parameters["controlnets"]] == [u["model"] for u in units]
    redraw = {"strength": 0.75, **FAST, "steps": 4}
    plain = core.image_to_image(squares(), "a cat", model="tiny-sd1", **redraw)
    steered = core.image_to_image(squares(), "a cat", model="tiny-sd1", controlnets=units, **redraw)
    assert np.abs(pixels(steered) - pixels(plain)).mean() > 0.5, f"seed {FAST['seed']}: image to image: no change"
    assert len(steered.parameters["controlnets"]) == 2


def test_inpainting_and_outpainting_take_controlnets_and_keep_what_is_not_redrawn(cn_root):
    redraw = {"strength": 1.0, "mask_blur": 0, **FAST, "steps": 4}
    plain = core.image_to_image(squares(), "a cat", model="tiny-sd1", mask=mask(), **redraw)
    steered = core.image_to_image(squares(), "a cat", model="tiny-sd1", mask=mask(), controlnets=[unit("sd1-folder")],
                                  **redraw)
    inside, outside = np.asarray(mask()) > 0, np.asarray(mask()) == 0
    assert np.abs(pixels(steered) - pixels(plain))[inside].mean() > 0.5, f"seed {FAST['seed']}: inpaint: no change"
    assert np.array_equal(pixels(steered)[outside], np.asarray(squares(), dtype=np.int16)[outside])
    cropped = core.image_to_image(squares(), "a cat", model="tiny-sd1", mask=mask(), inpaint_area="masked",
                                  controlnets=[unit("sd1-folder")], **redraw)
    assert cropped.images[0].size == (SIDE, SIDE)
    assert cropped.parameters["controlnets"][0]["model"] == "ControlNet/sd1-folder"
    with pytest.raises(InvalidInput, match="masked_content 'noise' is not available with ControlNet units"):
        core.image_to_image(squares(), "a cat", model="tiny-sd1", mask=mask(), masked_content="noise",
                            controlnets=[unit("sd1-folder")], **redraw)
    wider = core.outpaint(squares().crop((0, 0, 48, SIDE)), "a cat", right=16, model="tiny-sd1", steps=2, seed=3,
                          controlnets=[unit("sd1-folder")])
    assert wider.images[0].size == (SIDE, SIDE) and len(wider.parameters["controlnets"]) == 1


def test_an_inpainting_checkpoint_takes_the_4_channel_controlnets_of_its_family(cn_root):
    """SD inpainting UNets take 9 channels (latents, mask, masked picture), their ControlNets 4: a single file's
    input channels are read from its weights, not from the model's UNet."""
    net = controlnet.load("ControlNet/sd1-original.safetensors", diffusion.get("tiny-sd1-inpainting"))
    assert diffusion.get("tiny-sd1-inpainting").text_to_image.unet.config.in_channels == 9
    assert net.config.in_channels == 4
    redraw = {"strength": 1.0, "mask_blur": 0, **FAST, "steps": 4}
    plain = core.image_to_image(squares(), "a cat", model="tiny-sd1-inpainting", mask=mask(), **redraw)
    steered = core.image_to_image(squares(), "a cat", model="tiny-sd1-inpainting", mask=mask(),
                                  controlnets=[unit("sd1-original.safetensors")], **redraw)
    inside, outside = np.asarray(mask()) > 0, np.asarray(mask()) == 0
    assert np.abs(pixels(steered) - pixels(plain))[inside].mean() > 0.5, f"seed {FAST['seed']}: no change"
    assert np.array_equal(pixels(steered)[outside], np.asarray(squares(), dtype=np.int16)[outside])


def test_weighted_prompts_and_the_hires_fix_run_with_controlnets(cn_root):
    """A1111 weights make core pass prompt_embeds (core.models.prompts): the ControlNet pipelines take them;
    the Hires. fix runs both passes with the units."""
    plain = core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit("sd1-folder")], **FAST)
    weighted = core.text_to_image("a (cat:1.4)", model="tiny-sd1", controlnets=[unit("sd1-folder")], **FAST)
    assert np.abs(pixels(weighted) - pixels(plain)).mean() > 0.1, f"seed {FAST['seed']}: the weight did nothing"
    fixed = core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit("sd1-folder")], hires_scale=1.5, **FAST)
    assert fixed.images[0].size == (96, 96) and len(fixed.parameters["controlnets"]) == 1


# --- preprocessors ----------------------------------------------------------------------------------------

def test_canny_gives_binary_edges_at_the_generation_size():
    edges = control.control_image(squares(), "canny", 96, 48)
    array = np.asarray(edges)
    assert edges.mode == "RGB" and edges.size == (96, 48)
    assert set(np.unique(array)) == {0, 255} and (array[..., 0] == array[..., 2]).all()
    assert 0.02 < (array[..., 0] > 0).mean() < 0.2  # the squares' outlines, not their insides
    flat = control.control_image(Image.new("RGB", (40, 40), "grey"), "canny", 32, 32)
    assert not np.asarray(flat).any()  # no gradient, no edge
    faint = Image.new("RGB", (SIDE, SIDE), (128, 128, 128))
    ImageDraw.Draw(faint).rectangle((16, 16, 48, 48), fill=(140, 140, 140))  # a step of 12 levels
    strict = control.control_image(faint, "canny", SIDE, SIDE, low_threshold=250, high_threshold=255)
    loose = control.control_image(faint, "canny", SIDE, SIDE, low_threshold=10, high_threshold=30)
    assert not np.asarray(strict).any() and np.asarray(loose).any(), "the thresholds are not Canny's"


def test_scribble_makes_white_strokes_on_black_from_any_sketch():
    strokes = np.asarray(control.control_image(sketch(), "scribble", SIDE, SIDE))[..., 0]
    assert set(np.unique(strokes)) == {0, 255}
    assert strokes[0, 0] == 0 and strokes[32, 13] == 255  # the paper black, the circle's left edge white
    assert 0.03 < (strokes > 0).mean() < 0.3
    inverted = Image.fromarray(255 - np.asarray(sketch()))  # a scribble already drawn light on dark
    assert np.array_equal(np.asarray(control.control_image(inverted, "scribble", SIDE, SIDE))[..., 0], strokes)
    yellow = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))  # an editor layer: a pale stroke, no background
    ImageDraw.Draw(yellow).line((0, 32, 63, 32), fill=(250, 230, 120, 255), width=3)
    lines = np.asarray(control.control_image(yellow, "scribble", SIDE, SIDE))[..., 0]
    assert lines[32].all() and not lines[:28].any()


def test_none_passes_the_picture_resized():
    picture = squares().resize((32, 32))
    same = control.control_image(picture, "none", SIDE, SIDE)
    assert np.array_equal(np.asarray(same), np.asarray(picture.resize((SIDE, SIDE), Image.LANCZOS)))


# --- refusals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("controlnets, words", [
    ("canny.safetensors", "controlnets must be a list of ControlNet units"),
    ([{"model": "a"}] * 4, "controlnets takes at most 3 units, got 4"),
    ([{"model": "a", "weigth": 1}], r"controlnets\[0\] has no setting 'weigth'"),
    ([{"image": None}], r"controlnets\[0\].model is empty"),
    ([{"model": "a"}, {"model": "a", "weight": 3}], r"controlnets\[1\].weight must be 0.0..2.0, got 3"),
    ([{"model": "a", "start": 0.6, "end": 0.4}], r"controlnets\[0\].start \(0.6\) must be below controlnets\[0\].end"),
    ([{"model": "a", "preprocessor": "depth"}], r"controlnets\[0\].preprocessor must be one of canny, scribble, none"),
    ([{"model": "a", "low_threshold": 0}], r"controlnets\[0\].low_threshold must be 1..255, got 0"),
    ([{"model": "a", "low_threshold": 200, "high_threshold": 100}], r"low_threshold \(200\) must be at most"),
    ([{"model": "a", "image": b"not a picture"}], r"controlnets\[0\].image is not a readable picture"),
])
def test_bad_units_are_refused_naming_the_setting(controlnets, words):
    with pytest.raises(InvalidInput, match=words):
        controlnet.parse_units(controlnets)


@pytest.mark.parametrize("model, net, wanted", [("tiny-sdxl", "sd1-original.safetensors", "SDXL"),
                                                ("tiny-sd1", "sdxl-folder", "a model with 32-wide")])
def test_a_controlnet_for_another_family_is_refused_naming_both(cn_root, model, net, wanted):
    with pytest.raises(InvalidInput, match=rf"ControlNet {net} is for .*, but the model {model} is {wanted}"):
        core.text_to_image("a cat", model=model, controlnets=[unit(net)], **FAST)


def test_text_to_image_needs_a_control_image_and_units_are_checked_before_the_model_loads(cn_root):
    with pytest.raises(InvalidInput, match=r"controlnets\[0\].image is missing"):
        core.text_to_image("a cat", model="tiny-sd1", controlnets=[unit("sd1-folder", image=None)], **FAST)
    with pytest.raises(InvalidInput, match=r"controlnets\[0\].image is not a readable picture"):
        core.text_to_image("a cat", model="no-such-model", controlnets=[unit("sd1-folder", image=b"GIF89")], **FAST)


def test_the_emoji_model_takes_no_controlnet(tiny_emoji):
    with pytest.raises(InvalidInput, match=f"{tiny_emoji} takes no ControlNet"):
        core.text_to_image("rocket", model=tiny_emoji, controlnets=[{"model": "x.safetensors", "image": sketch()}],
                           steps=2, seed=0)
    with pytest.raises(InvalidInput, match="takes no ControlNet"):
        core.image_to_image(sketch(), "rocket", model=tiny_emoji, controlnets=[{"model": "x.safetensors"}], steps=2,
                            seed=0)
