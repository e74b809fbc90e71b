"""No silent black pictures: every generator checks what its nets made for NaN, infinity and one flat colour.

Deliberately broken nets (forward patched to give NaN, infinity or a constant) must either be redone in
float32 when they ran in half precision (bf16 autocast, fp16), with a warning and the float32 picture,
or end in core.ModelError saying what happened and what to try; a flat picture is only wrong when the
picture it was made from was not flat (an upscaled black picture is black).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from test_cancel import noise, tiny_sd_model  # noqa: F401  (fixture tiny_sd)

import core
from core import ModelError
from core.catalog import DCGAN_FACE_MODEL, DEFAULT_UPSCALER
from core.generators import faces, restoration
from core.models import diffusion, output_checks, upscalers
from core.models import registry as models
from core.models.dcgan import DCGANGenerator
from core.models.emoji_pipeline import EmojiPipeline
from core.models.registry import ModelKind, ModelSpec
from core.paths import WEIGHTS_DIR

pytestmark = pytest.mark.usefixtures("offline", "free_memory")
UPSCALERS = WEIGHTS_DIR / "upscalers"


def array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int32)


def half_is_nan(forward):
    """`forward` that gives NaN whenever it runs in half precision (bf16 autocast or half weights)."""
    def patched(x, *args, **kwargs):
        out = forward(x, *args, **kwargs)
        half = torch.is_autocast_enabled("cpu") or out.dtype != torch.float32
        return out * float("nan") if half else out
    return patched


# --- the helpers --------------------------------------------------------------------------------------

def test_flat_means_every_pixel_alike_and_lost_contrast_needs_a_source_with_contrast():
    assert output_checks.flat(Image.new("RGB", (9, 9), (3, 4, 5)))
    assert not output_checks.flat(noise((9, 9)))
    sixteen = Image.fromarray(np.array([[0, 257 * 9]], dtype=np.uint16), "I;16")
    assert output_checks.spread(sixteen) == 9
    black = Image.new("L", (9, 9))
    faint = Image.fromarray(np.array([[0, 3]], dtype=np.uint8), "L")  # 3 levels: may legitimately come out flat
    assert not output_checks.lost_contrast(black, black) and not output_checks.lost_contrast(black, faint)
    assert output_checks.lost_contrast(black, noise((9, 9)).convert("L"))


def test_redo_in_float32_runs_again_only_when_the_model_moved_to_float32():
    runs = []

    def run():
        runs.append(1)
        return torch.tensor([float("nan")]) if len(runs) == 1 else torch.tensor([1.0])

    result, warning = output_checks.redo_in_float32(run, output_checks.bad_values, lambda: "fp16",
                                                    what="the net x", advice="try y")
    assert result.item() == 1.0 and len(runs) == 2
    assert warning == "the net x gave NaN values in fp16; it was run again in float32 and stays in float32"
    with pytest.raises(ModelError, match=r"^the net x gave infinite values, so there is no usable picture; try y$"):
        output_checks.redo_in_float32(lambda: torch.tensor([float("inf")]), output_checks.bad_values, lambda: None,
                                      what="the net x", advice="try y")


# --- upscalers ----------------------------------------------------------------------------------------

@pytest.fixture
def own_copy(models_dir):
    """Copies of an embedded upscaler in this test's models folder, loaded apart from the shared default, so
    that a move to float32 stays with them."""
    def copy(name: str, file: str = f"{DEFAULT_UPSCALER}.safetensors") -> str:
        shutil.copy(UPSCALERS / file, models_dir / name)
        return name
    return copy


def test_an_upscaler_that_gives_nan_in_bf16_is_redone_in_float32(own_copy, monkeypatch):
    picture = noise((70, 40))
    monkeypatch.setattr(upscalers, "cpu_has_bf16", lambda: False)
    reference = core.upscale(picture, model=own_copy("fp32.safetensors"), tile=64)
    monkeypatch.setattr(upscalers, "cpu_has_bf16", lambda: True)  # bf16 autocast, as on a CPU with AVX512-BF16
    up = upscalers.get_upscaler(own_copy("bf16.safetensors"))
    assert up.bf16 and up.precision == "bf16"
    monkeypatch.setattr(up.model.model, "forward", half_is_nan(up.model.model.forward))
    steps = []
    result = core.upscale(picture, model="bf16.safetensors", tile=64, on_step=lambda *s: steps.append(s))
    assert result.parameters["precision"] == "fp32" and not up.bf16
    assert result.parameters["warnings"] == [
        "the upscaler bf16.safetensors gave NaN values in bf16; it was run again in float32 and stays in float32"]
    assert np.array_equal(array(result.images[0]), array(reference.images[0])), "not the float32 picture"
    assert steps == [(i, 2) for i in (1, 2)]  # the redone tile is counted once


@pytest.mark.parametrize("file", ["RealESRGAN_x4plus.safetensors", f"{DEFAULT_UPSCALER}.safetensors"])
@pytest.mark.parametrize("fill, words", [(float("nan"), "NaN values"), (float("inf"), "NaN values"),
                                         (0.0, "one flat colour")])
def test_an_upscaler_broken_in_float32_is_refused_with_what_to_try(own_copy, monkeypatch, file, fill, words):
    monkeypatch.setattr(upscalers, "cpu_has_bf16", lambda: False)
    up = upscalers.get_upscaler(own_copy("broken.safetensors", file))
    real = up.model.model.forward
    monkeypatch.setattr(up.model.model, "forward", lambda x: torch.full_like(real(x), fill))
    with pytest.raises(ModelError, match=f"the upscaler broken.safetensors gave {words}, so there is no usable "
                                         "picture; its weights may be damaged .*try another upscaler"):
        core.upscale(noise((40, 30)), model="broken.safetensors")


@pytest.mark.parametrize("picture", [Image.new("RGB", (40, 30)), Image.new("L", (40, 30), 128),
                                     Image.new("RGBA", (40, 30), (200, 10, 10, 0)),
                                     Image.fromarray(np.random.default_rng(0).integers(0, 3, (30, 40), np.uint8))])
def test_flat_or_nearly_flat_pictures_may_come_out_flat(own_copy, monkeypatch, picture):
    monkeypatch.setattr(upscalers, "cpu_has_bf16", lambda: False)
    up = upscalers.get_upscaler(own_copy("mean.safetensors"))
    monkeypatch.setattr(up.model.model, "forward",  # every pixel the tile's mean colour: flat in, flat out
                        lambda x: x.mean((2, 3), keepdim=True).repeat(1, 1, 4 * x.shape[2], 4 * x.shape[3]))
    result = core.upscale(picture, model="mean.safetensors")
    assert output_checks.flat(result.images[0]) and result.images[0].size == (160, 120)
    assert result.parameters["warnings"] == []
    assert core.upscale(picture).images[0].size == (160, 120)  # and the real net, as it comes


def test_the_x4_step_of_text_to_image_refuses_a_broken_upscaler(tiny_emoji, monkeypatch):
    up = upscalers.get_upscaler(None)  # the shared default: kept in its own precision
    monkeypatch.setattr(upscalers.Upscaler, "to_float32", lambda self: None)
    monkeypatch.setattr(up.model.model, "forward", lambda x: torch.full_like(x, float("nan")).repeat(1, 1, 4, 4))
    with pytest.raises(ModelError, match=f"the upscaler {DEFAULT_UPSCALER} gave NaN values"):
        core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=1, upscale=True)


# --- diffusion ----------------------------------------------------------------------------------------

def test_a_denoiser_that_gives_nan_in_float32_is_refused(tiny_emoji):
    unet = diffusion.get(tiny_emoji).text_to_image.unet
    hook = unet.register_forward_hook(lambda module, args, out: out.__class__(out.sample * float("nan")))
    try:
        with pytest.raises(ModelError, match=f"the denoiser of {tiny_emoji} gave NaN values, so there is no usable "
                                             "picture; try more steps, another sampler"):
            core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=1)
    finally:
        hook.remove()


def test_a_denoiser_that_gives_nan_in_bf16_is_redone_in_float32(tiny_emoji):
    m = diffusion.get(tiny_emoji)
    unet = m.text_to_image.unet.to(torch.bfloat16).to(torch.float32)  # the weights as bf16 leaves them
    reference = core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=1)
    unet.to(torch.bfloat16)
    real = unet.forward

    def nan_in_bf16(*args, **kwargs):
        out = real(*args, **kwargs)
        return out.__class__(out.sample * float("nan")) if out.sample.dtype != torch.float32 else out

    unet.forward = nan_in_bf16
    steps = []
    try:
        result = core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=1,
                                    on_step=lambda *s: steps.append(s))
    finally:
        del unet.forward
        models.forget(ModelKind.DIFFUSION, tiny_emoji)  # the next test loads the weights again
    assert unet.dtype == torch.float32
    assert f"the denoiser of {tiny_emoji} gave NaN values in bf16; it was run again in float32" \
           in result.parameters["warnings"][0]
    assert np.array_equal(array(result.images[0]), array(reference.images[0])), "seed 1: not the float32 picture"
    assert steps == [(1, 2), (2, 2), (3, 4), (4, 4)]  # the redo's steps count too


def test_a_vae_that_gives_nan_in_float32_is_refused(tiny_sd):
    vae = diffusion.get(tiny_sd).text_to_image.vae
    hook = vae.decoder.register_forward_hook(lambda module, args, out: out * float("nan"))
    try:
        with pytest.raises(ModelError, match=f"the VAE of {tiny_sd} gave NaN values, so there is no usable picture"):
            core.text_to_image("a cat", model=tiny_sd, steps=2, width=64, height=64, seed=3)
    finally:
        hook.remove()


def test_a_flat_generated_picture_is_named_in_the_warnings_unless_its_start_was_flat(tiny_emoji, monkeypatch):
    monkeypatch.setattr(EmojiPipeline, "_denoise", lambda self, sample, *args, **kwargs: torch.full_like(sample, 0.5))
    result = core.text_to_image("red apple", model=tiny_emoji, steps=2, seed=5, batch_size=2)
    assert [w.split(":")[0] for w in result.parameters["warnings"]] == [
        "image 1 (seed 5) is one flat colour", "image 2 (seed 6) is one flat colour"]
    edited = core.image_to_image(Image.new("RGB", (16, 16), "red"), "red apple", model=tiny_emoji, steps=2, seed=5,
                                 strength=1.0)
    assert edited.parameters["warnings"] == []  # a flat start may stay flat
    edited = core.image_to_image(noise((16, 16)), "red apple", model=tiny_emoji, steps=2, seed=5, strength=1.0)
    assert edited.parameters["warnings"][0].startswith("image 1 (seed 5) is one flat colour")


# --- faces --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fill, words", [(0.0, "one flat colour"), (float("nan"), "NaN values")])
def test_a_face_gan_that_gives_a_flat_or_nan_picture_is_refused(monkeypatch, fill, words):
    def broken() -> DCGANGenerator:
        net = DCGANGenerator().eval().requires_grad_(False)
        for p in net.parameters():
            p.fill_(fill)
        return net

    monkeypatch.setitem(models._REGISTRY, (ModelKind.FACES, "broken-gan"), ModelSpec(ModelKind.FACES, "broken-gan",
                                                                                   broken))
    try:
        with pytest.raises(ModelError, match=f"the face model broken-gan gave {words}, so there is no usable picture"):
            faces.generate_faces(count=2, seed=1, model="broken-gan")
    finally:
        models.forget(ModelKind.FACES, "broken-gan")
    assert faces.generate_faces(count=2, seed=1, model=DCGAN_FACE_MODEL).images  # the embedded DCGAN is untouched
    assert faces.generate_faces(count=2, seed=1).images  # and so is the default face model


class FakeRestorer:
    """Stands in for a face-restoration net: every pixel of its output is `fill`."""

    device = torch.device("cpu")

    def __init__(self, fill: float) -> None:
        self.fill = fill

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.fill)


@pytest.mark.parametrize("fill, words", [(0.5, "one flat colour"), (float("nan"), "NaN values")])
def test_a_face_restorer_that_gives_a_flat_or_nan_face_is_refused(monkeypatch, fill, words):
    monkeypatch.setattr(restoration, "get_restorer", lambda model: FakeRestorer(fill))
    with pytest.raises(ModelError, match=f"the face restorer broken.safetensors gave {words}.*try another face "
                                         "restoration model, or none"):
        faces.generate_faces(count=1, seed=2, model=DCGAN_FACE_MODEL, face_restoration="models/broken.safetensors")
