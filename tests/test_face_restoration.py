"""Face restoration from a user's file (GFPGAN, RestoreFormer via spandrel), with random weights built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core import InvalidInput, UnsafeModelFile, face_restoration, generate_faces, upscale
from core import super_resolution as sr
from core.paths import WEIGHTS_DIR

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.slow,
              pytest.mark.skipif(not (WEIGHTS_DIR / "upscalers").is_dir(), reason="run scripts/setup.sh first")]
ARCHS = {"gfpgan.safetensors": "GFPGAN", "restoreformer.safetensors": "RestoreFormer"}


@pytest.fixture(scope="module")
def restorers(tmp_path_factory):
    """A models folder holding a random-weight GFPGAN v1 Clean and RestoreFormer (spandrel's own
    architecture classes, fp16 safetensors), for the whole module."""
    from spandrel.architectures.GFPGAN import GFPGAN
    from spandrel.architectures.RestoreFormer import RestoreFormer

    from core import model_files

    folder = tmp_path_factory.mktemp("models")
    for name, cls in zip(ARCHS, (GFPGAN, RestoreFormer)):
        torch.manual_seed(0)
        state = {k: v.half().contiguous() for k, v in cls().state_dict().items()}
        save_file(state, folder / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        patch.setattr(sr, "MODELS_DIR", folder)
        patch.setattr(face_restoration, "MODELS_DIR", folder)
        yield folder


def face(size=(96, 80), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_the_face_list_shows_each_restorer_and_no_upscaler(restorers):
    assert face_restoration.choices() == [("gfpgan.safetensors (x1 GFPGAN)", "gfpgan.safetensors"),
                                          ("restoreformer.safetensors (x1 RestoreFormer)", "restoreformer.safetensors")]
    assert not any(value in ARCHS for _, value in sr.choices())  # and no restorer among the upscalers


@pytest.mark.parametrize("name", list(ARCHS))
def test_each_architecture_redraws_the_face_at_the_asked_size_keeping_alpha(restorers, name):
    picture = face(mode="RGBA")
    alpha = np.zeros((80, 96), dtype=np.uint8)
    alpha[:, 48:] = 255
    picture.putalpha(Image.fromarray(alpha))
    out = face_restoration.restore_face(picture, name)
    assert out.mode == "RGBA" and out.size == (96, 80)
    assert np.array_equal(np.asarray(out)[..., 3], alpha)  # same size: the alpha comes back as it was
    changed = np.abs(np.asarray(out, dtype=np.float64)[..., :3] - np.asarray(picture)[..., :3]).mean()
    assert changed > 5  # the net redrew it (random weights: not a face, but not the input either)


def test_weight_zero_keeps_the_input_and_bad_weights_are_refused(restorers):
    picture = face()
    assert np.array_equal(np.asarray(face_restoration.restore_face(picture, "gfpgan.safetensors", weight=0.0)),
                          np.asarray(picture))
    with pytest.raises(InvalidInput, match="weight must be 0.0..1.0"):
        face_restoration.restore_face(picture, "gfpgan.safetensors", weight=1.5)


def test_upscale_and_faces_take_a_restorer_and_refuse_the_wrong_kind(restorers):
    result = upscale(face(size=(32, 24)), face_restoration="restoreformer.safetensors", face_weight=0.5)
    assert result.images[0].size == (128, 96)
    assert (result.parameters["face_restoration"], result.parameters["face_weight"]) == ("restoreformer.safetensors", 0.5)
    faces = generate_faces(count=1, seed=3, face_restoration="gfpgan.safetensors")
    assert faces.images[0].size == (512, 512) and faces.parameters["face_restoration"] == "gfpgan.safetensors"
    with pytest.raises(UnsafeModelFile, match="face-restoration model, not an upscaler"):
        upscale(face(), model="gfpgan.safetensors")
    (restorers / "compact.safetensors").write_bytes((WEIGHTS_DIR / "upscalers" / f"{sr.DEFAULT_MODEL}.safetensors")
                                                    .read_bytes())
    with pytest.raises(UnsafeModelFile, match="is a RealESRGAN Compact upscaler, not a face-restoration model"):
        generate_faces(count=1, face_restoration="compact.safetensors")
    with pytest.raises(UnsafeModelFile, match="RealESRGAN_x4plus is an upscaler, not a face-restoration model"):
        generate_faces(count=1, face_restoration="RealESRGAN_x4plus")
