"""Face restoration from a user's file (GFPGAN, RestoreFormer via spandrel), with random weights built here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core import InvalidInput, UnsafeModelFile, generate_faces, upscale
from core.catalog import DCGAN_FACE_MODEL, DEFAULT_UPSCALER
from core.generators import restoration as face_restoration
from core.imaging import face_detection
from core.imaging.face_detection import Box
from core.models import face_restorers, gans, upscalers
from core.paths import WEIGHTS_DIR

pytestmark = [pytest.mark.usefixtures("offline", "embedded_weights", "free_memory"), pytest.mark.slow]
ARCHS = {"gfpgan.safetensors": "GFPGAN", "restoreformer.safetensors": "RestoreFormer"}
EMBEDDED = [WEIGHTS_DIR / "upscalers" / f"{DEFAULT_UPSCALER}.safetensors",
            WEIGHTS_DIR / "faces" / gans.DCGAN_FILE,
            *(WEIGHTS_DIR / "faces" / gans.MOBILESTYLEGAN_FOLDER / f"{net}.{ext}"
              for net in ("MappingNetwork", "SynthesisNetwork") for ext in ("xml", "bin"))]


@pytest.fixture(scope="module")
def embedded_weights():
    """The embedded upscalers and face GAN must be there: a missing one fails the test (never a skip)."""
    missing = [path.name for path in EMBEDDED if not path.is_file()]
    if missing:
        pytest.fail(f"embedded weights missing: {', '.join(missing)}; run scripts/setup.sh first")


@pytest.fixture(scope="module")
def restorers(tmp_path_factory):
    """A models folder holding a random-weight GFPGAN v1 Clean and RestoreFormer (spandrel's own
    architecture classes, fp16 safetensors), for the whole module."""
    from spandrel.architectures.GFPGAN import GFPGAN
    from spandrel.architectures.RestoreFormer import RestoreFormer

    from core.models import files as model_files

    folder = tmp_path_factory.mktemp("models")
    for name, cls in zip(ARCHS, (GFPGAN, RestoreFormer)):
        torch.manual_seed(0)
        state = {k: v.half().contiguous() for k, v in cls().state_dict().items()}
        save_file(state, folder / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        yield folder


def face(size=(96, 80), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_the_face_list_shows_each_restorer_and_no_upscaler(restorers):
    assert face_restorers.choices() == [("gfpgan.safetensors (x1 GFPGAN)", "gfpgan.safetensors"),
                                        ("restoreformer.safetensors (x1 RestoreFormer)", "restoreformer.safetensors")]
    assert not any(value in ARCHS for _, value in upscalers.choices())  # and no restorer among the upscalers


def test_a_full_size_pth_restorer_is_listed_as_one_not_as_a_checkpoint(restorers):
    """GFPGANv1.4.pth from its authors is a 348 MB fp32 {"params_ema": ...} file: over the size that
    once made any .pth a Stable Diffusion checkpoint. The file is sorted by the names in its pickle."""
    from spandrel.architectures.GFPGAN import GFPGAN

    from core.models import files as model_files

    path = restorers / "GFPGANv1.4.pth"
    torch.save({"params_ema": GFPGAN().state_dict()}, path)
    try:
        assert path.stat().st_size > 300 * 2**20
        assert ("GFPGANv1.4.pth (x1 GFPGAN)", "GFPGANv1.4.pth") in face_restorers.choices()
        assert "GFPGANv1.4.pth" not in model_files.scan("checkpoint")
        torch.save({"state_dict": {"model.diffusion_model.out.0.weight": torch.zeros(4)}}, restorers / "tiny.ckpt")
        assert model_files.scan("checkpoint") == ["tiny.ckpt"]  # small, but a UNet's names: a checkpoint
    finally:
        path.unlink()
        (restorers / "tiny.ckpt").unlink(missing_ok=True)


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


ASTRONAUT_FACE = Box(177, 66, 274, 163)  # her face in astronaut.png, 512x512, as OpenCV 4.14 finds it


def overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    width = max(0, min(a.right, b.right) - max(a.left, b.left))
    height = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    area = lambda box: (box.right - box.left) * (box.bottom - box.top)
    return width * height / (area(a) + area(b) - width * height)


def test_the_detector_finds_the_one_face_at_any_size_and_none_in_a_cat_a_cup_or_noise(photos):
    astronaut = Image.open(photos / "astronaut.png").convert("RGB")
    for side in (256, 512, 2600):  # 2600: over DETECT_SIDE, so looked at scaled down and mapped back
        (found,) = face_detection.find_faces(astronaut.resize((side, side), Image.Resampling.BICUBIC))
        assert overlap(Box(*(round(v * 512 / side) for v in found)), ASTRONAUT_FACE) > 0.8
    for name in ("chelsea.png", "coffee.png"):
        photo = Image.open(photos / name)
        assert face_detection.find_faces(photo) == []
        assert face_detection.find_faces(photo.resize((photo.width * 3, photo.height * 3))) == []
    assert face_detection.find_faces(face(size=(300, 200))) == []


def test_crops_are_square_around_the_face_and_border_faces_get_edge_pixels_around_them():
    assert face_restoration.crop_box(Box(100, 100, 150, 150)) == Box(75, 70, 175, 170)
    assert face_restoration.crop_box(Box(0, 0, 50, 50)) == Box(-25, -30, 75, 70)  # the face stays centred
    picture = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, "L")
    crop = np.asarray(face_restoration.cut(picture, Box(-2, -1, 3, 4)))
    assert crop.shape == (5, 5) and np.array_equal(crop[1:4, 2:], np.asarray(picture)[:, :3])
    assert (crop[0, :3] == 0).all() and (crop[1:4, 0] == crop[1:4, 2]).all()  # edge pixels repeated outwards


def test_upscale_redraws_each_face_and_leaves_the_rest_as_upscaled(restorers, photos):
    picture = Image.open(photos / "astronaut.png").convert("RGB").resize((128, 128), Image.Resampling.LANCZOS)
    plain = np.asarray(upscale(picture).images[0], dtype=np.int16)
    result = upscale(picture, face_restoration="gfpgan.safetensors", face_weight=0.5)
    (crop,) = [Box(*box) for box in result.parameters["faces_restored"]]
    assert overlap(crop, face_restoration.crop_box(ASTRONAUT_FACE)) > 0.6
    restored = np.asarray(result.images[0], dtype=np.int16)
    outside = np.ones(plain.shape[:2], dtype=bool)
    outside[crop.top:crop.bottom, crop.left:crop.right] = False
    assert np.array_equal(restored[outside], plain[outside])  # nothing but the face crop changed
    middle = (slice(crop.top + 20, crop.bottom - 20), slice(crop.left + 20, crop.right - 20))
    assert np.abs(restored[middle] - plain[middle]).mean() > 5  # and the face was redrawn
    assert not result.parameters["warnings"]
    steps = []
    none = upscale(picture, face_restoration="gfpgan.safetensors", face_weight=0.0,
                   on_step=lambda done, total: steps.append((done, total)))
    assert np.array_equal(np.asarray(none.images[0]), plain) and none.parameters["faces_restored"] == []
    assert not none.parameters["warnings"] and steps[-1] == (1, 1)  # weight 0: one tile, no face step
    steps.clear()
    upscale(picture, face_restoration="gfpgan.safetensors", on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 1), (2, 2)]  # the tile, then the face


def test_a_face_at_the_border_is_restored_centred_in_its_crop(restorers, photos):
    corner = Image.open(photos / "astronaut.png").convert("RGB").crop((150, 40, 450, 340))  # face near top-left
    result = upscale(corner, scale=1, face_restoration="gfpgan.safetensors")
    ((left, top, right, bottom),) = result.parameters["faces_restored"]
    assert left == 0 and top == 0 and right - left > bottom - top - 5 and right < corner.width
    assert result.images[0].size == corner.size


def test_upscale_and_faces_take_a_restorer_and_refuse_the_wrong_kind(restorers):
    result = upscale(face(size=(32, 24)), face_restoration="restoreformer.safetensors", face_weight=0.5)
    assert result.images[0].size == (128, 96)
    assert (result.parameters["face_restoration"], result.parameters["face_weight"]) == ("restoreformer.safetensors", 0.5)
    assert result.parameters["faces_restored"] == [] and "found no face" in result.parameters["warnings"][0]
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(upscale(face(size=(32, 24))).images[0]))
    faces = generate_faces(count=1, seed=3, face_restoration="gfpgan.safetensors")  # a 1024-px MobileStyleGAN face
    assert faces.images[0].size == (512, 512) and faces.parameters["face_restoration"] == "gfpgan.safetensors"
    small = generate_faces(count=1, seed=3, model=DCGAN_FACE_MODEL, face_restoration="gfpgan.safetensors")
    assert small.images[0].size == (512, 512) and small.parameters["model"] == DCGAN_FACE_MODEL
    with pytest.raises(UnsafeModelFile, match="face-restoration model, not an upscaler"):
        upscale(face(), model="gfpgan.safetensors")
    (restorers / "compact.safetensors").write_bytes((WEIGHTS_DIR / "upscalers" / f"{DEFAULT_UPSCALER}.safetensors")
                                                    .read_bytes())
    with pytest.raises(UnsafeModelFile, match="is a RealESRGAN Compact upscaler, not a face-restoration model"):
        generate_faces(count=1, seed=3, face_restoration="compact.safetensors")
    with pytest.raises(UnsafeModelFile, match="RealESRGAN_x4plus is an upscaler, not a face-restoration model"):
        generate_faces(count=1, seed=3, face_restoration="RealESRGAN_x4plus")
