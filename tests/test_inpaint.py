"""Inpainting and outpainting (issue 15): image_to_image's mask, mask_blur, inpaint_area, inpaint_padding and
masked_content, and core.outpaint, on the tiny emoji model and the tiny SD 1.x / SDXL pipelines, plus a tiny
SD inpainting checkpoint (9-channel UNet). Offline, fixed seeds, small sizes, few steps."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sd_fixtures
import torch
from PIL import Image

import core
from core.build import sd_configs
from core.errors import InvalidInput
from core.imaging import masks
from core.models import diffusion, inpaint
from core.models import files as model_files
from core.models import registry as models
from core.models.devices import default_device
from core.models.emoji_pipeline import EmojiInpaintPipeline

pytestmark = pytest.mark.usefixtures("offline")
SD = {"steps": 2, "width": 64, "height": 64}
EMOJI = {"steps": 4, "width": 16, "height": 16}
CPU_ONLY = pytest.mark.skipif(default_device().type != "cpu",
                              reason="batch invariance is core's CPU rule (core.generators.diffusion)")


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth RGB picture with some texture (random, fixed seed)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.int16)
    return Image.fromarray(np.clip(smooth + rng.integers(-12, 13, smooth.shape), 0, 255).astype(np.uint8))


def square(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def changed(result: core.Result, before: Image.Image, i: int = 0) -> np.ndarray:
    """(H, W) bool: where image i of `result` differs from `before`."""
    return (np.asarray(result.images[i], dtype=np.int16) != np.asarray(before, dtype=np.int16)).any(2)


def near(mask: Image.Image, margin: int) -> np.ndarray:
    """(H, W) bool: within `margin` px (a square: the blur kernel's shape) of a white pixel of `mask`."""
    import cv2

    painted = (np.asarray(mask) > 0).astype(np.uint8)
    return cv2.dilate(painted, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0 if margin else painted > 0


def same(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A models folder with the tiny SD 1.x and SDXL pipelines and a tiny SD 1.x inpainting checkpoint
    (StableDiffusionInpaintPipeline, UNet with 9 input channels: latents, mask, masked-picture latents) as
    diffusers folders."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    folder = tmp_path_factory.mktemp("inpaint") / "models"
    sd1 = sd_fixtures.tiny_sd1(0)
    sd_fixtures.save_folder(sd1, folder / "tiny-sd1")
    sd_fixtures.save_folder(sd_fixtures.tiny_sdxl(0), folder / "tiny-sdxl")
    config = {k: v for k, v in sd1.unet.config.items() if not k.startswith("_")} | {"in_channels": 9}
    with torch.random.fork_rng():
        torch.manual_seed(1)
        unet = UNet2DConditionModel.from_config(config)
    nine = StableDiffusionInpaintPipeline(vae=sd1.vae, text_encoder=sd1.text_encoder, tokenizer=sd1.tokenizer,
                                          unet=unet, scheduler=sd1.scheduler, safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    sd_fixtures.save_folder(nine, folder / "tiny-sd1-inpainting")
    sd_fixtures.save_single_file(nine, folder / "tiny-sd1-inpainting.safetensors")  # as A1111 users have them
    sd_fixtures.save_family_config(sd1, folder.parent / "configs", "sd1")  # for the single file
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        patch.setattr(sd_configs, "CONFIGS_DIR", folder.parent / "configs")
        yield folder
    models.clear_cache()


MODELS = {  # name -> (picture size, the settings of a quick run)
    "emoji": ((24, 24), EMOJI),
    "tiny-sd1": ((64, 64), SD),
    "tiny-sdxl": ((64, 64), SD),
    "tiny-sd1-inpainting": ((64, 64), SD),
}


def model_name(name: str, tiny_emoji: str) -> str:
    return tiny_emoji if name == "emoji" else name


@pytest.mark.parametrize("name", list(MODELS))
def test_outside_the_blurred_mask_the_picture_is_kept_exactly_and_inside_it_changes(root, tiny_emoji, name):
    size, run = MODELS[name]
    before, blur = picture(*size), 2
    mask = square(size, (size[0] // 3, size[1] // 3, size[0] * 2 // 3, size[1] * 2 // 3))
    result = core.image_to_image(before, "red apple", model=model_name(name, tiny_emoji), mask=mask, mask_blur=blur,
                                 strength=1.0, seed=3, **run)
    assert result.images[0].size == size  # the input's size, not width x height
    moved = changed(result, before)
    assert not (moved & ~near(mask, 3 * blur)).any(), "pixels outside the blurred mask changed"
    inside = np.asarray(mask) > 0
    assert moved[inside].mean() > 0.5, "the masked area was not redrawn"
    p = result.parameters
    settings = (p["mask_blur"], p["inpaint_area"], p["inpaint_padding"], p["masked_content"])
    assert settings == (2, "whole", 32, "original")
    assert p["width"] == run["width"] and p["input_size"] == list(size)


def test_the_inpainting_pipeline_is_made_once_from_the_model_and_shares_its_modules(root):
    m = diffusion.get("tiny-sd1")
    pipe = inpaint.pipeline(m)
    assert inpaint.pipeline(m) is pipe and pipe.unet is m.text_to_image.unet and pipe.vae is m.text_to_image.vae
    assert pipe.unet.config.in_channels == 4 and not inpaint.needs_mask(m)
    nine = diffusion.get("tiny-sd1-inpainting")
    assert inpaint.pipeline(nine).unet.config.in_channels == 9 and inpaint.needs_mask(nine)


def test_an_inpainting_checkpoint_without_a_mask_redraws_the_whole_picture(root):
    before = picture(64, 64)
    result = core.image_to_image(before, "a cat", model="tiny-sd1-inpainting", strength=0.5, seed=1, **SD)
    assert result.images[0].size == (64, 64) and changed(result, before).mean() > 0.5
    assert "mask_blur" not in result.parameters  # no mask: no inpainting settings


@pytest.mark.parametrize("name", ["emoji", "tiny-sd1", "tiny-sdxl", "tiny-sd1-inpainting"])
def test_masked_content_noise_and_fill_differ_from_original_inside_the_mask_only(root, tiny_emoji, name):
    size, run = MODELS[name]
    before = picture(*size)
    mask = square(size, (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4))
    results = {content: core.image_to_image(before, "red apple", model=model_name(name, tiny_emoji), mask=mask,
                                            mask_blur=0, strength=0.6, seed=5, masked_content=content, **run)
               for content in ("original", "noise", "fill")}
    inside = np.asarray(mask) > 0
    for content in ("noise", "fill"):
        assert results[content].parameters["masked_content"] == content
        differ = changed(results[content], results["original"].images[0])
        assert differ[inside].any(), f"{content} gave the same picture as original"
        assert not differ[~inside].any(), f"{content} changed pixels outside the mask"


def test_only_masked_redraws_the_crop_around_the_mask_at_the_working_size(root, tiny_emoji, monkeypatch):
    before = picture(32, 24)
    mask = square((32, 24), (20, 4, 24, 10))
    seen = []
    original_call = EmojiInpaintPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append((kwargs["image"][0], kwargs["mask_image"][0]))
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(EmojiInpaintPipeline, "__call__", spy)
    result = core.image_to_image(before, "red apple", model=tiny_emoji, mask=mask, mask_blur=0, inpaint_area="masked",
                                 inpaint_padding=2, strength=1.0, seed=2, **EMOJI)
    box = masks.crop_box(mask, 2, 16, 16)
    assert box == (17, 2, 27, 12)  # (20-2, 4-2, 24+2, 10+2) is 8x10 px, widened about its centre to 10x10
    start, redraw = seen[0]
    assert start.size == redraw.size == (16, 16)
    assert same(start, before.crop(box).resize((16, 16), Image.LANCZOS))
    moved = changed(result, before)
    assert moved.any() and not moved[:, :box[0]].any() and not moved[box[3]:, :].any()
    assert result.parameters["inpaint_area"] == "masked" and result.parameters["inpaint_padding"] == 2
    whole = core.image_to_image(before, "red apple", model=tiny_emoji, mask=mask, mask_blur=0, strength=1.0, seed=2,
                                **EMOJI)
    assert not same(result.images[0], whole.images[0])


@pytest.mark.parametrize("mask_box, padding, size, box", [
    ((10, 10, 20, 20), 4, (64, 32), (0, 6, 36, 24)),   # 18x18 widened to 36x18 (2:1), shifted off the left edge
    ((10, 10, 20, 20), 0, (16, 16), (10, 10, 20, 20)),  # already square
    ((0, 0, 4, 40), 8, (16, 16), (0, 0, 48, 48)),       # 12x48 widened to 48x48 from the left edge
    ((30, 50, 60, 60), 100, (32, 16), (0, 0, 100, 60)),  # padding past the picture: the whole 100x60 picture
])
def test_the_only_masked_box_is_the_mask_grown_by_the_padding_at_the_working_aspect(mask_box, padding, size, box):
    mask = square((100, 60), mask_box)
    assert masks.crop_box(mask, padding, *size) == box


def test_mask_blur_reaches_at_most_two_and_a_half_blurs_past_the_mask():
    mask = square((80, 80), (30, 30, 50, 50))
    for radius in (1, 4, 8):
        soft = np.asarray(masks.blur(mask, radius)) > 0
        reach = int(2.5 * radius + 0.5)
        assert soft.sum() > (np.asarray(mask) > 0).sum()
        assert not (soft & ~near(mask, reach)).any()
    assert same(masks.blur(mask, 0), mask)


def test_an_rgba_mask_counts_by_its_alpha_when_it_has_transparency_else_by_its_luminance():
    layer = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    layer.paste((0, 0, 0, 255), (4, 4, 8, 8))  # black strokes on a transparent layer (Gradio's ImageEditor)
    assert masks.read_mask(layer, (16, 16)).getbbox() == (4, 4, 8, 8)
    opaque = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    opaque.paste((255, 255, 255, 255), (2, 2, 6, 6))
    assert masks.read_mask(opaque, (16, 16)).getbbox() == (2, 2, 6, 6)
    grey = np.zeros((16, 16), np.uint8)
    grey[1:3, 1:3] = 200
    assert set(np.unique(masks.read_mask(grey, (16, 16)))) == {0, 255}


def test_fill_paints_the_masked_area_with_the_colours_around_it():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))
    mask = square((40, 20), (14, 0, 26, 20))
    filled = np.asarray(masks.fill(image, mask), dtype=np.int16)
    assert np.array_equal(filled[:, :14], np.asarray(image)[:, :14]) and np.array_equal(filled[:, 26:],
                                                                                        np.asarray(image)[:, 26:])
    assert filled[10, 15, 0] > filled[10, 15, 2] and filled[10, 24, 2] > filled[10, 24, 0]  # each side's colour
    assert filled[:, 14:26, 1].max() == 0  # no colour that is not around


@pytest.mark.parametrize("name", ["emoji", "tiny-sd1"])
def test_outpaint_returns_the_extended_size_and_keeps_the_picture_beyond_the_seam(root, tiny_emoji, name):
    size = (24, 16) if name == "emoji" else (48, 60)
    before, blur = picture(*size), 1
    sides = {"left": 8, "right": 0, "top": 0, "bottom": 8} if name == "emoji" else {"left": 0, "right": 16,
                                                                                   "top": 6, "bottom": 0}
    run = {"steps": 3} if name == "emoji" else {"steps": 2}
    result = core.outpaint(before, "red apple", model=model_name(name, tiny_emoji), mask_blur=blur, seed=4, **sides,
                           **run)
    extended = (size[0] + sides["left"] + sides["right"], size[1] + sides["top"] + sides["bottom"])
    assert result.images[0].size == extended
    out = np.asarray(result.images[0], dtype=np.int16)
    old = out[sides["top"]:sides["top"] + size[1], sides["left"]:sides["left"] + size[0]]
    margin = 2 * blur + int(2.5 * blur + 0.5)
    keep = np.ones(size[::-1], bool)
    keep[:, :margin] = not sides["left"]
    keep[:, size[0] - margin:] &= not sides["right"]
    keep[:margin, :] &= not sides["top"]
    keep[size[1] - margin:, :] &= not sides["bottom"]
    assert np.array_equal(old[keep], np.asarray(before, dtype=np.int16)[keep])
    canvas = np.asarray(masks.outpaint_canvas(before, **sides), dtype=np.int16)
    new = np.ones(out.shape[:2], bool)
    new[sides["top"]:sides["top"] + size[1], sides["left"]:sides["left"] + size[0]] = False
    assert (out[new] != canvas[new]).any(), "the new area is still the stretched border"
    p = result.parameters
    assert p["outpaint"] == sides and p["fill"] == "edge" and p["mask_blur"] == blur
    assert p["input_size"] == list(size) and "inpaint_area" not in p and "masked_content" not in p


def test_outpaint_past_the_models_sides_redraws_at_a_fitted_size_and_keeps_the_picture(tiny_emoji):
    before = picture(24, 24)
    result = core.outpaint(before, "red apple", model=tiny_emoji, left=24, right=24, mask_blur=0, seed=2, steps=2)
    assert result.images[0].size == (72, 24)
    low, high = core.catalog.diffusion_settings(tiny_emoji).sides
    width, height = high, max(low, 8 * round(24 * high / 72 / 8))  # 72 px scaled to the model's most
    assert (result.parameters["width"], result.parameters["height"]) == (width, height)
    assert any(w.startswith(f"the extended picture (72x24 px) was redrawn at {width}x{height} px")
               for w in result.parameters["warnings"])
    out = np.asarray(result.images[0], dtype=np.int16)
    assert np.array_equal(out[:, 24:48], np.asarray(before, dtype=np.int16))  # mask_blur 0: no seam into it
    chosen = core.outpaint(before, "red apple", model=tiny_emoji, right=8, width=32, height=32, seed=2, steps=2)
    assert chosen.images[0].size == (32, 24) and chosen.parameters["width"] == 32
    assert not any("redrawn at" in w for w in chosen.parameters.get("warnings", []))


@pytest.mark.parametrize("size, sides, expected", [
    ((40, 24), (16, 64), (40, 24)),  # fits: the canvas itself
    ((160, 96), (16, 64), (64, 40)),  # scaled so that the longer side is the most (38.4 -> 40)
    ((4000, 100), (64, 2048), (2048, 64)),  # the thin side held at the least
    ((1000, 750), (64, 2048), (1000, 752)),
])
def test_working_size(size, sides, expected):
    from core.generators.outpaint import working_size

    assert working_size(size, sides) == expected


def test_outpaint_fill_noise_starts_the_new_area_from_noise(root, tiny_emoji):
    before = picture(24, 24)
    runs = [core.outpaint(before, "red apple", model=tiny_emoji, right=8, mask_blur=0, strength=0.5, fill=fill,
                          seed=1, steps=4) for fill in ("edge", "noise")]
    assert runs[1].parameters["fill"] == "noise" and not same(runs[0].images[0], runs[1].images[0])


@CPU_ONLY
@pytest.mark.parametrize("name, content", [("emoji", "original"), ("tiny-sd1", "noise")])
def test_image_i_of_an_inpainting_batch_equals_its_seed_alone(root, tiny_emoji, name, content):
    size, run = MODELS[name]
    before = picture(*size)
    mask = square(size, (4, 4, size[0] // 2, size[1] // 2))
    kwargs = dict(model=model_name(name, tiny_emoji), mask=mask, strength=0.8, masked_content=content, **run)
    batch = core.image_to_image(before, "red apple", seed=21, batch_size=2, **kwargs)
    alone = core.image_to_image(before, "red apple", seed=22, **kwargs)
    assert batch.seeds == [21, 22] and same(batch.images[1], alone.images[0])
    assert not same(batch.images[0], batch.images[1])


def _bad_mode(mode: str) -> Image.Image:
    return Image.new(mode, (24, 24))


@pytest.mark.parametrize("kwargs, message", [
    ({"mask": square((20, 24), (2, 2, 8, 8))}, "mask is 20x24 px but the picture is 24x24 px"),
    ({"mask": _bad_mode("CMYK")}, "mask has mode CMYK"),
    ({"mask": _bad_mode("P")}, "mask has mode P"),
    ({"mask": _bad_mode("I")}, "mask has mode I"),
    ({"mask": Image.new("L", (24, 24), 0)}, "mask is empty: paint the area to redraw"),
    ({"mask": Image.new("L", (24, 24), 255)}, "mask covers the whole picture: use image to image without a mask"),
    ({"mask": b"not a picture"}, "mask is not a readable picture"),
    ({"mask": square((24, 24), (2, 2, 8, 8)), "inpaint_area": "all"}, "inpaint_area must be one of 'whole', 'masked'"),
    ({"masked_content": "latent noise"}, "masked_content must be one of 'original', 'noise', 'fill'"),
    ({"mask_blur": 65}, "mask_blur must be 0..64, got 65"),
    ({"mask_blur": 2.5}, "mask_blur must be a whole number in 0..64"),
    ({"inpaint_padding": -1}, "inpaint_padding must be 0..256, got -1"),
    ({"inpaint_padding": 257}, "inpaint_padding must be 0..256"),
])
def test_bad_inpainting_input_names_the_argument(tiny_emoji, kwargs, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        core.image_to_image(picture(24, 24), "red apple", model=tiny_emoji, **EMOJI, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "left, right, top and bottom are all 0"),
    ({"left": -8}, "left must be 0..2048, got -8"),
    ({"top": 4096}, "top must be 0..2048"),
    ({"right": 8, "fill": "mirror"}, "fill must be one of 'edge', 'noise'"),
    ({"left": 2048, "right": 2048}, "left 2048 + right 2048 px make the picture (24 px wide) 4120 px wide, over the "
                                    "4096 px a picture's side may have: lower left/right"),
    ({"bottom": 8, "mask_blur": 8}, "mask_blur 8 overlaps 16 px into each extended side, which covers the whole"),
    ({"right": 8, "mask_blur": 65}, "mask_blur must be 0..64"),
])
def test_bad_outpainting_input_names_the_sides_and_the_limit(tiny_emoji, kwargs, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        core.outpaint(picture(24, 12) if "mask_blur" in kwargs else picture(24, 24), "red apple", model=tiny_emoji,
                      steps=2, **kwargs)


def test_a_one_pixel_mask_still_reaches_the_model_when_the_picture_is_shrunk_to_the_working_size():
    painted = square((512, 512), (300, 300, 301, 301))
    redraw = masks.plan(picture(512, 512), painted, mask_blur=0, inpaint_area="whole", inpaint_padding=0,
                        size=(16, 16), cell=1, masked_content="original")
    assert redraw.mask.size == (16, 16) and 0 < (np.asarray(redraw.mask) > 0).sum() <= 9
    assert redraw.mask.getpixel((300 * 16 // 512, 300 * 16 // 512)) == 255
    cells = masks.plan(picture(64, 64), square((64, 64), (9, 9, 10, 10)), mask_blur=0, inpaint_area="whole",
                       inpaint_padding=0, size=(64, 64), cell=8, masked_content="original")
    assert cells.mask.getbbox() == (8, 8, 16, 16)  # one whole latent pixel of 8 x 8 px


def test_a_single_file_inpainting_checkpoint_loads_on_its_family_config_and_inpaints_as_its_folder(root):
    """sd-v1-5-inpainting.safetensors and its kind: diffusers calls them "inpainting"; they load on the SD 1.x
    config with a 9-channel UNet and give the folder's pixels."""
    from core.models import stable_diffusion

    assert stable_diffusion.file_kind(root / "tiny-sd1-inpainting.safetensors") == ("sd1", True)
    single = diffusion.get("tiny-sd1-inpainting.safetensors")
    assert single.family == "sd1" and inpaint.needs_mask(single)
    before = picture(64, 64)
    mask = square((64, 64), (16, 16, 48, 48))
    run = dict(mask=mask, mask_blur=2, strength=1.0, seed=5, **SD)
    from_file = core.image_to_image(before, "a cat", model="tiny-sd1-inpainting.safetensors", **run)
    from_folder = core.image_to_image(before, "a cat", model="tiny-sd1-inpainting", **run)
    assert same(from_file.images[0], from_folder.images[0])


def test_the_inpainting_pipeline_keeps_the_models_precision(root):
    """A pipeline class's from_pipe casts the modules it shares (float32 unless told): a bfloat16 model must
    stay bfloat16, its text-to-image pipeline included."""
    from diffusers import StableDiffusionPipeline

    sd1 = sd_fixtures.tiny_sd1(2).to(torch.bfloat16)
    m = diffusion.DiffusionModel(name="bf16", text_to_image=sd1, image_to_image=sd1, family="sd1", native=64,
                                 sizes=(64, 256), defaults={}, scheduler_config=sd1.scheduler.config)
    assert isinstance(sd1, StableDiffusionPipeline)
    pipe = inpaint.pipeline(m)
    assert pipe.unet.dtype == torch.bfloat16 and sd1.unet.dtype == torch.bfloat16 and sd1.vae.dtype == torch.bfloat16


def test_text_to_image_on_an_inpainting_checkpoint_draws_from_noise_with_the_whole_picture_masked(root):
    """As A1111 runs such models in txt2img (before: a raw RuntimeError, the UNet wanting 9 channels)."""
    result = core.text_to_image("a cat", model="tiny-sd1-inpainting", seed=2, **SD)
    again = core.text_to_image("a cat", model="tiny-sd1-inpainting", seed=2, **SD)
    other = core.text_to_image("a cat", model="tiny-sd1-inpainting", seed=3, **SD)
    assert result.images[0].size == (64, 64) and same(result.images[0], again.images[0])
    assert not same(result.images[0], other.images[0])
    assert "strength" not in result.parameters and "mask_blur" not in result.parameters


def test_a_16_bit_grey_mask_and_a_grey_mask_with_alpha_are_read_as_their_8_bit_forms():
    painted = square((24, 24), (4, 4, 12, 12))
    wide = Image.fromarray(np.asarray(painted, dtype=np.uint16) * 257)  # mode I;16
    assert wide.mode == "I;16"
    assert same(masks.read_mask(wide, (24, 24)), masks.read_mask(painted, (24, 24)))
    layer = Image.new("LA", (24, 24), (0, 0))
    layer.paste((255, 255), (4, 4, 12, 12))  # opaque strokes on a transparent layer
    assert same(masks.read_mask(layer, (24, 24)), masks.read_mask(painted, (24, 24)))
