"""Text-to-image and image-to-image: the shipped emoji model, a tiny random one, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import core
from core.catalog import DEFAULT_DIFFUSION_MODEL
from core.errors import InvalidInput, ModelNotFound
from core.models import diffusion
from core.models import registry as models
from core.models.devices import default_device
from core.models.registry import ModelKind
from core.models.schedulers import SCHEDULERS
from core.paths import WEIGHTS_DIR

SHIPPED = WEIGHTS_DIR / "emoji-diffusion" / "unet" / "diffusion_pytorch_model.safetensors"


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def tiny_model(tiny_emoji) -> str:
    """A random 16-px emoji-style pipeline saved in diffusers layout (conftest's tiny_emoji)."""
    return tiny_emoji


def test_tiny_model_loads_from_folder_at_its_size(tiny_model):
    result = core.text_to_image("red apple", model=tiny_model, steps=3, seed=5)
    assert [im.size for im in result.images] == [(16, 16)]
    assert result.parameters["width"] == 16 and result.parameters["model"] == tiny_model
    bigger = core.text_to_image("red apple", model=tiny_model, steps=2, seed=5, width=32, height=24)
    assert bigger.images[0].size == (32, 24)


def test_image_to_image_shares_the_text_to_image_modules(tiny_model):
    loaded = models.load(ModelKind.DIFFUSION, tiny_model)
    t2i, i2i = loaded.text_to_image, loaded.image_to_image
    assert i2i.unet is t2i.unet and i2i.text_encoder is t2i.text_encoder
    assert next(i2i.unet.parameters()).data_ptr() == next(t2i.unet.parameters()).data_ptr()
    core.image_to_image(Image.new("RGB", (40, 40), "blue"), "blue circle", model=tiny_model, steps=2, seed=0)
    assert models.load(ModelKind.DIFFUSION, tiny_model) is loaded  # nothing loaded again


CPU_ONLY = pytest.mark.skipif(
    default_device().type != "cpu",
    reason="batch invariance is core's CPU rule; on a GPU a batch runs as one call (core.generators.diffusion)")


@CPU_ONLY
def test_same_seed_same_image_and_batch_items_replay_alone(tiny_model):
    batch = core.text_to_image("rocket", model=tiny_model, steps=3, seed=11, batch_size=3)
    assert batch.seeds == [11, 12, 13]
    again = core.text_to_image("rocket", model=tiny_model, steps=3, seed=11, batch_size=3)
    for seed, a, b in zip(batch.seeds, batch.images, again.images):
        assert np.array_equal(pixels(a), pixels(b)), f"seed {seed}: the image differs between two runs"
    third = core.text_to_image("rocket", model=tiny_model, steps=3, seed=13)
    assert np.array_equal(pixels(third.images[0]), pixels(batch.images[2])), \
        "seed 13: image 3 of the batch of seed 11 differs from the same seed alone"
    assert not np.array_equal(pixels(batch.images[0]), pixels(batch.images[1])), "seeds 11 and 12 gave one image"


def test_scheduler_changes_output_deterministically(tiny_model):
    ddim = core.text_to_image("rocket", model=tiny_model, steps=4, seed=2, scheduler="DDIM").images[0]
    euler = core.text_to_image("rocket", model=tiny_model, steps=4, seed=2, scheduler="Euler a").images[0]
    euler2 = core.text_to_image("rocket", model=tiny_model, steps=4, seed=2, scheduler="Euler a").images[0]
    assert np.array_equal(pixels(euler), pixels(euler2)), "seed 2: Euler a differs between two runs"
    assert np.abs(pixels(ddim) - pixels(euler)).mean() > 1, "seed 2: DDIM and Euler a gave the same image"


def test_every_sampler_runs_on_the_cosine_schedule_or_says_why_not(tiny_model):
    for name in SCHEDULERS:
        try:
            result = core.text_to_image("rocket", model=tiny_model, steps=5, seed=2, scheduler=name)
        except InvalidInput as err:  # Karras steps repeat on a cosine schedule (diffusers cannot run them)
            assert name == "DPM++ 2M Karras" and "choose DPM++ 2M or another sampler" in str(err)
        else:
            assert result.images[0].size == (16, 16)
    core.text_to_image("rocket", model=tiny_model, steps=2, seed=2, scheduler="DPM++ 2M Karras")  # 2: no repeat


def test_image_to_image_strength_controls_how_much_changes(tiny_model):
    start = Image.new("RGB", (16, 16), (200, 30, 30))
    change = {s: np.abs(pixels(core.image_to_image(start, "cat", model=tiny_model, strength=s, steps=10,
                                                   seed=1).images[0]) - pixels(start)).mean()
              for s in (0.1, 1.0)}
    assert change[0.1] < change[1.0] / 2, f"seed 1: mean change {change}"


def test_sides_are_rounded_to_multiples_of_8_with_a_warning(tiny_model):
    result = core.text_to_image("moon", model=tiny_model, steps=1, width=21, height=27, seed=0)
    assert result.images[0].size == (24, 24)
    assert result.parameters["warnings"] == ["width 21 px was rounded to 24 px (a multiple of 8)",
                                             "height 27 px was rounded to 24 px (a multiple of 8)"]


@CPU_ONLY
def test_batch_count_runs_batches_in_a_row_with_consecutive_seeds(tiny_model):
    calls = []
    result = core.text_to_image("moon", model=tiny_model, steps=2, seed=40, batch_size=2, batch_count=2,
                                on_step=lambda done, total: calls.append((done, total)))
    assert result.seeds == [40, 41, 42, 43] and len(result.images) == 4
    assert calls == [(done, 8) for done in range(1, 9)]  # 2 steps x 4 images, one call each on the CPU
    alone = core.text_to_image("moon", model=tiny_model, steps=2, seed=42)
    # batch invariance: exactly the same picture alone as inside a batch
    assert np.array_equal(pixels(alone.images[0]), pixels(result.images[2])), \
        "seed 42: image 3 of the batches of seed 40 differs from the same seed alone"


def test_low_strength_raises_steps_to_run_one(tiny_model):
    result = core.image_to_image(Image.new("RGB", (16, 16), "red"), "cat", model=tiny_model, strength=0.25, steps=2,
                                 seed=0)
    assert result.parameters["steps"] == 4
    assert result.parameters["warnings"] == ["steps raised from 2 to 4 so that strength 0.25 runs at least one step"]


def test_loras_need_a_stable_diffusion_model(tiny_model):
    with pytest.raises(InvalidInput, match="does not take LoRAs"):
        core.text_to_image("cat", model=tiny_model, steps=1, seed=0, loras={"style.safetensors": 0.8})


def test_progress_is_reported_per_step(tiny_model):
    calls = []
    core.text_to_image("moon", model=tiny_model, steps=4, seed=0,
                       on_step=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("kwargs, words", [
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "   "}, "prompt is empty"),
    ({"prompt": 5}, "prompt must be text"),
    ({"negative_prompt": "x" * 2001}, "negative_prompt must be at most 2000 characters, got 2001"),
    ({"negative_prompt": {"a": 1}}, "negative_prompt must be text, got dict"),  # never recorded as given
    ({"negative_prompt": ["blurry"]}, "negative_prompt must be text, got list"),
    ({"steps": 0}, "steps must be 1..100, got 0"),
    ({"guidance_scale": 31}, "guidance_scale"),
    ({"width": 7}, "width must be 8..32, got 7"),
    ({"width": 4096}, "width must be"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_count": 17}, "batch_count must be 1..16"),
    ({"loras": [("a.safetensors", 9)]}, r"weight of LoRA a.safetensors must be -4.0..4.0, got 9"),
    ({"loras": ["a.safetensors"]}, r"each LoRA must be \(file, weight\)"),
    ({"seed": -7}, "seed"),
    ({"scheduler": "Heun 9000"}, "scheduler must be one of"),
])
def test_bad_settings_raise_invalid_input(tiny_model, kwargs, words):
    call = {"prompt": "red apple", "model": tiny_model, "steps": 1, "seed": 0} | kwargs
    with pytest.raises(InvalidInput, match=words):
        core.text_to_image(call.pop("prompt"), **call)


def test_an_animated_start_picture_says_only_its_first_frame_is_used(tiny_model, tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    result = core.image_to_image(path, "cat", model=tiny_model, steps=2, seed=6)
    assert "image is animated (2 frames); only its first frame is used" in result.parameters["warnings"]


def test_settings_of_a_name_that_matches_nothing_say_so():
    with pytest.raises(ModelNotFound, match="unknown model 'no-such-model'"):
        diffusion.settings("no-such-model")
    with pytest.raises(ModelNotFound, match="outside the allowed folders"):
        diffusion.settings("../../etc/passwd.safetensors")


@pytest.mark.parametrize("image, words", [
    (None, "no image given"),
    (Image.new("RGB", (1, 1)), "at least 8 px"),
    (Image.new("RGB", (5000, 16)), "at most 4096 px"),
])
def test_bad_pictures_raise_invalid_input(tiny_model, image, words):
    with pytest.raises(InvalidInput, match=words):
        core.image_to_image(image, "cat", model=tiny_model, steps=1, seed=0)


def test_text_file_as_picture_and_unknown_model(tiny_model, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    with pytest.raises(InvalidInput, match="not a readable picture"):
        core.image_to_image(str(fake), "cat", model=tiny_model, seed=0)
    with pytest.raises(ModelNotFound, match="unknown model 'no-such-model'; choose one of"):
        core.text_to_image("cat", model="no-such-model", seed=0)
    assert core.text_to_image("cat", model=tiny_model, steps=1, seed=0).images  # still serving


@pytest.fixture
def shipped():
    """The embedded emoji model must be there: a missing one fails the test (it is never skipped)."""
    if not SHIPPED.is_file():
        pytest.fail("embedded emoji weights missing; run scripts/setup.sh to build weights/emoji-diffusion")


@pytest.mark.usefixtures("shipped")
def test_shipped_model_default_request():
    result = core.text_to_image("red apple", seed=0)
    assert [im.size for im in result.images] == [(32, 32)] and result.images[0].mode == "RGB"
    assert result.parameters["model"] == DEFAULT_DIFFUSION_MODEL and result.parameters["steps"] == 25
    array = pixels(result.images[0])
    assert array.std() > 10, "seed 0: a flat field, not a drawing"
    corners = np.concatenate([array[:3, :3], array[-3:, -3:]]).reshape(-1, 3)
    assert corners.mean() > 200, "seed 0: dark corners"  # trained on emoji on white: the background comes out light


@pytest.mark.usefixtures("shipped")
def test_shipped_model_follows_the_prompt():
    """Red apple comes out redder than green apple, across three seeds."""
    def redness(prompt):
        images = core.text_to_image(prompt, seed=100, batch_size=3).images
        rgb = np.stack([pixels(im) for im in images]).reshape(-1, 3).astype(float)
        return (rgb[:, 0] - rgb[:, 1]).mean()
    red, green = redness("red apple"), redness("green apple")
    assert red > green + 10, f"seeds 100..102: redness {red:.1f} (red apple) vs {green:.1f} (green apple)"


def test_an_emoji_pipeline_folder_loads_by_path_and_long_prompts_are_flagged(tiny_model, models_dir):
    import shutil

    folder = models.load(ModelKind.DIFFUSION, tiny_model).text_to_image
    folder.save_pretrained(models_dir / "my-emoji", safe_serialization=True)
    result = core.text_to_image("a " + "very " * 20 + "red apple", model="my-emoji", steps=1, seed=0)
    assert result.images[0].size == (16, 16) and result.parameters["model"] == "my-emoji"
    warning, = result.parameters["warnings"]
    assert warning.startswith("prompt is 23 tokens; the text encoder reads 14") and warning.endswith('apple"')
    shutil.rmtree(models_dir / "my-emoji")
