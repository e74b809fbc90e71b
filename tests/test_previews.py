"""Live previews of the diffusion models (core.models.latent_preview through on_preview), offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import core
from core import Cancelled, InvalidInput
from core.models import files as model_files
from core.models import latent_preview, registry
from tests import sd_fixtures


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_emoji_previews_come_every_few_steps_and_change_nothing():
    seen = []
    with_previews = core.text_to_image("red apple", seed=3, steps=10, preview_every=3,
                                       on_preview=lambda images: seen.append(images))
    plain = core.text_to_image("red apple", seed=3, steps=10)
    assert np.array_equal(pixels(with_previews.images[0]), pixels(plain.images[0]))
    assert [len(images) for images in seen] == [1, 1, 1]  # after steps 3, 6 and 9 of 10, not after the last
    assert all(images[0].size == (32, 32) and images[0].mode == "RGB" for images in seen)
    # the sampler's prediction of the clean picture closes in on the result
    gaps = [np.abs(pixels(images[0]) - pixels(plain.images[0])).mean() for images in seen]
    assert gaps[-1] < gaps[0] and gaps[-1] < 12


def test_a_preview_can_stop_the_request():
    def stop(images):
        raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        core.text_to_image("rocket", seed=1, steps=6, preview_every=2, on_preview=stop)
    assert core.text_to_image("rocket", seed=1, steps=2).images  # the model still works


@pytest.mark.parametrize("call, match", [
    (lambda: core.text_to_image("x", steps=2, preview_every=0, on_preview=print), "preview_every must be 1..100"),
    (lambda: core.text_to_image("x", steps=2, on_preview=3), "on_preview must be a function"),
])
def test_bad_preview_settings_are_refused(call, match):
    with pytest.raises(InvalidInput, match=match):
        call()


def test_latents_map_to_their_channels_colours():
    latents = torch.zeros(1, 4, 2, 3)
    latents[0, 3] = 1.0  # channel 3 alone: (-0.184, -0.271, -0.473) -> dark, blue least
    image = latent_preview.latents_to_rgb(latents)[0]
    assert image.size == (3, 2)
    expected = [round((1 + v) / 2 * 255) for v in latent_preview.LATENT_RGB[3]]
    assert all(abs(a - b) <= 1 for a, b in zip(image.getpixel((0, 0)), expected))
    with pytest.raises(ValueError, match="4, h, w"):
        latent_preview.latents_to_rgb(torch.zeros(1, 3, 2, 2))


def test_stable_diffusion_previews_are_latent_sized(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    pipe = sd_fixtures.tiny_sd1(0)
    sd_fixtures.save_folder(pipe, folder / "tiny-sd1")
    side = 64 // pipe.vae_scale_factor  # the latent's side: 1/8 for real SD VAEs, 1/4 for this tiny one
    monkeypatch.setattr(model_files, "MODELS_DIR", folder)
    seen = []
    result = core.text_to_image("a red apple", model="tiny-sd1", steps=4, width=64, height=64, seed=2,
                                scheduler="DDIM", preview_every=1, on_preview=lambda images: seen.append(images))
    assert result.images[0].size == (64, 64)
    assert [[image.size for image in images] for images in seen] == [[(side, side)]] * 3  # after steps 1..3 of 4
    registry.clear_cache()


def test_previews_reach_the_page_captioned_as_unfinished():
    """ui.call sends each preview to the streamed event's gallery with a caption, so that a preview left there by
    Stop reads as unfinished, not as a result."""
    from PIL import Image

    from demos import serving, ui

    pushed: list = []

    def draw(prompt: str, on_preview=None) -> core.Result:
        on_preview([Image.new("RGB", (32, 32), "red")])
        return core.Result(images=[Image.new("RGB", (32, 32), "blue")], seeds=[1], parameters={"prompt": prompt})

    token = serving.PREVIEW.set(pushed.append)
    try:
        result = ui.call(draw, "a cat")
    finally:
        serving.PREVIEW.reset(token)
    [(picture, caption)] = pushed[0]
    assert caption == ui.PREVIEW_CAPTION == "unfinished preview (not a result)"
    assert picture.size == (ui.PREVIEW_SIDE, ui.PREVIEW_SIDE) and picture.getpixel((0, 0)) == (255, 0, 0)
    assert result.seeds == [1]
