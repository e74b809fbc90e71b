"""Faults stay local: a corrupt or replaced weight file breaks only its own model, with a typed error that
names the file (never its folder on the server); the other models, of the same kind and of the other
generators, keep working in the same process; a failed load leaves nothing in the cache, so the model
works again as soon as its file is fixed. All on copies in a temporary models folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import core
from core import ModelError, UnsafeModelFile
from core.catalog import DCGAN_FACE_MODEL
from core.generators import faces
from core.models import gans
from core.models import registry as models
from core.models.registry import FileVersion, ModelKind, ModelSpec
from core.paths import WEIGHTS_DIR

pytestmark = pytest.mark.usefixtures("offline", "free_memory")
UPSCALERS = WEIGHTS_DIR / "upscalers"
COMPACT_X4 = UPSCALERS / "realesr-animevideov3-x4.safetensors"
DCGAN = WEIGHTS_DIR / "faces" / gans.DCGAN_FILE
EMOJI = WEIGHTS_DIR / "emoji-diffusion"


def picture(size=(40, 30), seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def replace(path: Path, source: Path | bytes) -> None:
    """Put new content at `path` as a user would (copy over it), one second later than its last version, so
    that its FileVersion differs even when the size is the same (mtime ticks can be coarser than a test)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        shutil.copyfile(source, path)
    later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(later, later))


def nan_weights(source: Path, dest: Path) -> None:
    """A well-formed safetensors file with the tensors of `source` and their metadata, every value NaN
    (what garbage in the data part of a file, past an intact header, can amount to)."""
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in load_file(source).items()}
    save_file(state, str(dest), metadata=metadata)


def assert_names_only_the_file(err: BaseException, file: str, folder: Path) -> None:
    assert file in str(err), f"the message does not name {file}: {err}"
    assert str(folder) not in str(err) and str(folder.parent) not in str(err), f"a server path in: {err}"


def cached(kind: ModelKind, path: Path) -> bool:
    """Whether the current version of the file at `path` is in the model cache."""
    return models.peek(kind, FileVersion.of(path.resolve())) is not None


def assert_the_others_work(models_dir: Path) -> None:
    """Another upscaler file, the embedded upscaler, both face models (the default MobileStyleGAN and the
    DCGAN) and the text-to-image defaults all still work."""
    shutil.copyfile(COMPACT_X4, models_dir / "good.safetensors")
    assert core.upscale(picture(), model="good.safetensors").images[0].size == (160, 120)
    assert core.upscale(picture()).images[0].size == (160, 120)
    assert faces.generate_faces(count=1, seed=1).images[0].size == (1024, 1024)
    assert faces.generate_faces(count=1, seed=1, model=DCGAN_FACE_MODEL).images[0].size == (64, 64)
    assert core.text_to_image("red apple", steps=1, seed=1).images[0].size == (32, 32)


# --- upscalers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, error, words", [
    ("truncated", UnsafeModelFile, "bad.safetensors is not a readable model file"),
    ("garbage", UnsafeModelFile, "bad.safetensors is not a readable model file"),
    ("empty", UnsafeModelFile, "bad.safetensors is not a readable model file"),
    ("face GAN", UnsafeModelFile, "bad.safetensors holds no upscaler or face-restoration architecture"),
    ("NaN weights", ModelError, "the upscaler bad.safetensors gave NaN values"),
])
def test_a_broken_upscaler_file_fails_alone_and_works_again_once_fixed(models_dir, content, error, words):
    bad = models_dir / "bad.safetensors"
    if content == "truncated":
        bad.write_bytes(COMPACT_X4.read_bytes()[:COMPACT_X4.stat().st_size // 2])
    elif content == "garbage":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif content == "empty":
        bad.write_bytes(b"")
    elif content == "face GAN":
        shutil.copyfile(DCGAN, bad)
    else:
        nan_weights(COMPACT_X4, bad)
    with pytest.raises(error, match=words) as caught:
        core.upscale(picture(), model="bad.safetensors")
    assert_names_only_the_file(caught.value, "bad.safetensors", models_dir)
    assert cached(ModelKind.UPSCALER, bad) == (error is ModelError), "a failed load was cached"
    assert_the_others_work(models_dir)
    broken = FileVersion.of(bad.resolve())
    replace(bad, COMPACT_X4)
    fixed = core.upscale(picture(), model="bad.safetensors")
    good = core.upscale(picture(), model="good.safetensors")
    assert np.array_equal(np.asarray(fixed.images[0]), np.asarray(good.images[0])), "the fixed file is not used"
    assert cached(ModelKind.UPSCALER, bad) and models.peek(ModelKind.UPSCALER, broken) is None


def test_an_upscaler_file_swapped_after_it_was_cached_loads_as_what_it_now_is(models_dir):
    swap = models_dir / "swap.safetensors"
    shutil.copyfile(UPSCALERS / "realesr-animevideov3-x2.safetensors", swap)
    assert core.upscale(picture(), model="swap.safetensors").images[0].size == (80, 60)
    versions = [FileVersion.of(swap.resolve())]
    replace(swap, UPSCALERS / "realesr-animevideov3-x3.safetensors")  # the same size in bytes, another scale
    assert core.upscale(picture(), model="swap.safetensors").images[0].size == (120, 90)
    versions.append(FileVersion.of(swap.resolve()))
    replace(swap, UPSCALERS / "RealESRGAN_x4plus_anime_6B.safetensors")  # another architecture (RRDB)
    result = core.upscale(picture((20, 16)), model="swap.safetensors")
    assert result.images[0].size == (80, 64) and result.parameters["model_scale"] == 4
    assert all(models.peek(ModelKind.UPSCALER, old) is None for old in versions), "older versions stayed cached"
    replace(swap, DCGAN)  # no upscaler at all
    with pytest.raises(UnsafeModelFile, match="swap.safetensors holds no upscaler") as caught:
        core.upscale(picture(), model="swap.safetensors")
    assert_names_only_the_file(caught.value, "swap.safetensors", models_dir)
    assert not cached(ModelKind.UPSCALER, swap)
    assert_the_others_work(models_dir)
    replace(swap, UPSCALERS / "realesr-animevideov3-x2.safetensors")
    assert core.upscale(picture(), model="swap.safetensors").images[0].size == (80, 60)


def test_a_broken_face_restorer_fails_alone(models_dir):
    (models_dir / "face.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}")
    with pytest.raises(UnsafeModelFile, match="face.safetensors is not a readable model file") as caught:
        core.upscale(picture(), face_restoration="face.safetensors")
    assert_names_only_the_file(caught.value, "face.safetensors", models_dir)
    assert not cached(ModelKind.FACE_RESTORER, models_dir / "face.safetensors")
    assert_the_others_work(models_dir)


# --- face GANs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ("truncated", "gan.safetensors is not a readable safetensors file"),
    ("upscaler", "gan.safetensors: not a DCGAN generator: main.0.weight is missing"),
])
def test_a_broken_face_model_fails_alone_and_works_again_once_fixed(models_dir, monkeypatch, content, words):
    path = models_dir / "gan.safetensors"
    if content == "truncated":
        path.write_bytes(DCGAN.read_bytes()[:100_000])
    else:
        shutil.copyfile(COMPACT_X4, path)
    monkeypatch.setitem(models._REGISTRY, (ModelKind.FACES, "other-gan"),
                        ModelSpec(ModelKind.FACES, "other-gan", lambda: gans.load_dcgan(path)))
    try:
        with pytest.raises(UnsafeModelFile, match=words) as caught:
            faces.generate_faces(count=1, seed=4, model="other-gan")
        assert_names_only_the_file(caught.value, "gan.safetensors", models_dir)
        assert "other-gan" not in models.cached(ModelKind.FACES), "a failed load was cached"
        assert_the_others_work(models_dir)
        replace(path, DCGAN)
        fixed = faces.generate_faces(count=1, seed=4, model="other-gan").images[0]
    finally:
        models.forget(ModelKind.FACES, "other-gan")
    embedded = faces.generate_faces(count=1, seed=4, model=DCGAN_FACE_MODEL).images[0]
    assert np.array_equal(np.asarray(fixed), np.asarray(embedded)), "seed 4: the fixed file is not used"


# --- diffusion ----------------------------------------------------------------------------------------

@pytest.fixture
def emoji_copy(models_dir) -> Path:
    """A copy of the embedded emoji model's pipeline folder in the models folder."""
    folder = models_dir / "emoji-copy"
    shutil.copytree(EMOJI, folder)
    return folder


@pytest.mark.parametrize("content, error, words", [
    ("truncated", UnsafeModelFile, "the model folder emoji-copy: unet/diffusion_pytorch_model.safetensors is not a "
                                   "readable .safetensors file"),
    ("NaN weights", ModelError, "the denoiser of emoji-copy gave NaN values"),
])
def test_a_broken_diffusion_model_fails_alone_and_works_again_once_fixed(emoji_copy, models_dir, content, error,
                                                                       words):
    unet = emoji_copy / "unet" / "diffusion_pytorch_model.safetensors"
    if content == "truncated":
        unet.write_bytes(unet.read_bytes()[:unet.stat().st_size // 3])
    else:
        nan_weights(EMOJI / "unet" / "diffusion_pytorch_model.safetensors", unet)
    with pytest.raises(error, match=words) as caught:
        core.text_to_image("red apple", model="emoji-copy", steps=1, seed=1)
    assert_names_only_the_file(caught.value, "emoji-copy", models_dir)
    assert_the_others_work(models_dir)
    shutil.rmtree(emoji_copy)  # fixed by copying the folder again, as a user would
    shutil.copytree(EMOJI, emoji_copy)
    replace(emoji_copy / "model_index.json", EMOJI / "model_index.json")
    os.utime(emoji_copy, ns=(unet.stat().st_mtime_ns + 10**9,) * 2)  # the folder's version moves on
    fixed = core.text_to_image("red apple", model="emoji-copy", steps=1, seed=1).images[0]
    default = core.text_to_image("red apple", steps=1, seed=1).images[0]
    assert np.array_equal(np.asarray(fixed), np.asarray(default)), "seed 1: the fixed folder is not used"
