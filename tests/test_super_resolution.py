"""core.upscale: sizes and modes, seamless tiling, progress, memory fallback and every refusal, offline."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core import (
    InvalidInput,
    ModelNotFound,
    OutOfMemory,
    Result,
    UnsafeModelFile,
    upscale,
)
from core.catalog import BUNDLED_UPSCALERS, DEFAULT_UPSCALER
from core.generators import enlarge
from core.imaging.io import to_pil
from core.imaging.tiling import fit_tile, run_tiled, starts
from core.models import registry as models
from core.models import upscalers
from core.models.registry import ModelKind
from core.paths import WEIGHTS_DIR

DEFAULT_FILE = WEIGHTS_DIR / "upscalers" / f"{DEFAULT_UPSCALER}.safetensors"
pytestmark = pytest.mark.usefixtures("offline", "upscaler_weights", "free_memory")


@pytest.fixture(scope="module")
def upscaler_weights():
    """The embedded upscalers must be there: a missing one fails the test (it is never skipped)."""
    missing = [name for name in BUNDLED_UPSCALERS if not (DEFAULT_FILE.parent / f"{name}.safetensors").is_file()]
    if missing:
        pytest.fail(f"embedded upscaler weights missing: {', '.join(missing)}; run scripts/setup.sh")


def noise(size=(40, 30), mode="RGB", seed=0) -> Image.Image:
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode)


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return 10 * np.log10(255.0 ** 2 / max((diff ** 2).mean(), 1e-12))


# --- sizes and modes --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, out_mode", [("RGB", "RGB"), ("L", "L"), ("P", "RGB"), ("CMYK", "RGB")])
def test_default_model_gives_x4_in_the_inputs_kind(mode, out_mode):
    picture = noise().convert(mode)
    result = upscale(picture)
    assert isinstance(result, Result) and result.seeds == []
    assert result.images[0].size == (160, 120) and result.images[0].mode == out_mode
    assert result.parameters | {"tile_limit": 0} == {  # the limit follows free memory; the 40-px side fits one tile
        "model": DEFAULT_UPSCALER, "scale": 4, "model_scale": 4, "passes": 1, "tile": 40, "tile_limit": 0,
        "overlap": 16, "tiles": 1,
        "precision": result.parameters["precision"], "device": result.parameters["device"], "alpha": "none",
        "mode": out_mode, "input_size": [40, 30], "output_size": [160, 120], "face_restoration": None,
        "face_weight": None, "faces_restored": None, "warnings": []}


def test_sixteen_bit_grey_stays_sixteen_bit_and_keeps_its_fine_levels(tmp_path):
    ramp = np.tile(np.linspace(1000, 64000, 40), (30, 1)).astype(np.uint16)  # levels 8-bit cannot hold
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    out = upscale(path).images[0]
    assert out.mode == "I;16" and out.size == (160, 120)
    levels = np.asarray(out, dtype=np.float64)
    small = levels.reshape(30, 4, 40, 4).mean(axis=(1, 3))
    assert np.abs(small - ramp)[2:-2, 2:-2].mean() < 2570  # 10/255 of the range, as for RGB (1424 measured)
    assert len(np.unique(levels % 257)) > 50  # not 8-bit levels scaled up (those are multiples of 257)


def test_cmyk_jpeg_and_exif_rotation_are_read_as_seen(tmp_path):
    upright = Image.new("RGB", (40, 20), (230, 30, 30))
    upright.paste((30, 30, 230), (0, 0, 20, 20))  # blue left half
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored pixels must be turned 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).convert("CMYK").save(path, quality=95, exif=exif)
    out = np.asarray(upscale(path, scale=1).images[0], dtype=np.float64)
    assert out.shape == (20, 40, 3)
    assert out[:, :18, 2].mean() > 150 and out[:, 22:, 0].mean() > 150  # blue left, red right, as shot


def test_an_animated_gif_gives_its_first_frame_and_says_so(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    result = upscale(path)
    assert np.asarray(result.images[0], dtype=np.float64)[..., 0].mean() > 200  # red: frame 1
    assert result.parameters["warnings"] == ["image is animated (3 frames); only its first frame is used"]


@pytest.mark.parametrize("scale, passes, model_inputs", [
    (4, 1, [(40, 30)]), (2, 1, [(40, 30)]), (8, 2, [(40, 30), (80, 60)]), (6, 2, [(40, 30), (60, 45)]),
    (2.5, 1, [(40, 30)])])
def test_factors_above_the_models_take_more_passes(monkeypatch, scale, passes, model_inputs):
    seen = []
    original = enlarge.run_tiled
    monkeypatch.setattr(enlarge, "run_tiled", lambda net, pixels, **kw: seen.append(pixels.shape[:1:-1]) or original(
        net, pixels, **kw))
    result = upscale(noise(), scale=scale)
    assert result.parameters["passes"] == passes and seen == model_inputs
    assert result.images[0].size == (round(40 * scale), round(30 * scale))


def test_the_output_limit_is_configurable_and_checked_before_any_work(monkeypatch):
    monkeypatch.setenv("IMAGEGEN_MAX_OUTPUT_SIDE", "100")
    monkeypatch.setattr(enlarge, "run_tiled", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(InvalidInput, match="160x120 px; each side must be at most 100 px"):
        upscale(noise())


def test_output_follows_the_input():
    """A smooth gradient stays a gradient: the net enlarges, it does not invent a new picture."""
    ramp = np.tile(np.linspace(0, 255, 32, dtype=np.float32), (24, 1))
    picture = Image.fromarray(np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 128)], -1).astype(np.uint8))
    small = np.asarray(upscale(picture).images[0].resize((32, 24), Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(small - np.asarray(picture, dtype=np.float32)).mean() < 10  # 6.7 measured; red and green swapped: ~42


@pytest.mark.parametrize("mode, colour", [("RGBA", "RGB"), ("LA", "L")])
def test_transparency_stays_where_it_was_and_grey_stays_grey(mode, colour):
    picture = noise(mode="RGB" if mode == "RGBA" else "L").convert(mode)
    alpha = np.zeros((30, 40), dtype=np.uint8)
    alpha[:, 20:] = 255
    picture.putalpha(Image.fromarray(alpha))
    result = upscale(picture, scale=2)
    out = np.asarray(result.images[0])
    assert result.images[0].mode == mode and out.shape == (60, 80, len(mode))
    assert result.parameters["alpha"] == "upscaled"
    assert out[:, :36, -1].max() <= 8 and out[:, 44:, -1].min() >= 247
    plain = np.asarray(upscale(picture.convert(colour), scale=2).images[0])  # same colours as without alpha
    assert np.array_equal(out[..., :-1].reshape(plain.shape), plain)


def test_opaque_rgba_skips_the_alpha_pass():
    steps, picture = [], noise(mode="RGBA")
    picture.putalpha(255)
    result = upscale(picture, on_step=lambda done, total: steps.append(total))
    assert result.parameters["alpha"] == "opaque" and steps == [1]
    assert np.asarray(result.images[0])[..., 3].min() == 255


@pytest.mark.parametrize("scale, size", [(2, (80, 60)), (1, (40, 30)), (3, (120, 90)), (8, (320, 240))])
def test_other_scales_resize_the_native_output(scale, size):
    result = upscale(noise(), scale=scale)
    assert result.images[0].size == size
    assert (result.parameters["scale"], result.parameters["model_scale"]) == (scale, 4)


def test_x2_model_is_native_x2():
    result = upscale(noise(), model="realesr-animevideov3-x2")
    assert result.images[0].size == (80, 60) and result.parameters["model_scale"] == 2


def test_registry_lists_the_bundled_upscalers():
    names = models.names(ModelKind.UPSCALER)
    assert names[0] == DEFAULT_UPSCALER and set(BUNDLED_UPSCALERS) <= set(names)
    assert "x4" in models.spec(ModelKind.UPSCALER, "RealESRGAN_x4plus").description
    assert "RRDBNet" in models.spec(ModelKind.UPSCALER, "RealESRGAN_x4plus").description


# --- tiling and progress ----------------------------------------------------------------------------

def test_tiles_blend_without_seams(photos):
    picture = Image.open(photos / "astronaut.png").convert("RGB").resize((128, 64), Image.Resampling.LANCZOS)
    whole = upscale(picture, tile=256)
    tiled = upscale(picture, tile=64, overlap=16)
    assert tiled.parameters["tile_limit"] == 64 and whole.parameters["tile_limit"] == 256
    assert whole.parameters["tiles"] == 1 and whole.parameters["tile"] == 128  # one tile: the whole picture
    assert tiled.parameters["tiles"] > 1 and tiled.parameters["tile"] <= 64
    assert psnr(whole.images[0], tiled.images[0]) >= 40
    hard = upscale(picture, tile=64, overlap=0)  # no cross-fade: the seams must show up as a loss
    assert psnr(whole.images[0], hard.images[0]) < psnr(whole.images[0], tiled.images[0]) - 3


@pytest.mark.parametrize("width, height, tile, overlap", [(150, 97, 64, 16), (64, 64, 64, 0), (300, 70, 128, 32)])
def test_tiling_reassembles_a_pointwise_net_exactly(width, height, tile, overlap):
    """With a net that has no neighbourhood (nearest x2), any tiling must give back the same picture."""
    image = torch.rand(1, 3, height, width)
    net = lambda x: torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    tiled = np.asarray(run_tiled(net, image, scale=2, tile=tile, overlap=overlap), dtype=np.int16)
    whole = np.asarray(to_pil(net(image))[0], dtype=np.int16)
    assert tiled.shape == (2 * height, 2 * width, 3) and np.abs(tiled - whole).max() <= 1
    assert starts(width, tile, overlap)[-1] + tile >= width


def test_tiles_shrink_to_the_smallest_side_that_needs_no_more_of_them():
    for length in range(1, 1400, 7):
        side = fit_tile(length, 256, 16)
        offsets = starts(length, side, 16)
        assert len(offsets) == len(starts(length, 256, 16)) and side <= min(256, length)
        assert offsets[0] == 0 and offsets[-1] + side == length  # covers the side, edge to edge
        assert all(b - a <= side - 16 for a, b in itertools.pairwise(offsets))  # neighbours share >= 16 px
        if 16 < side < length:  # one px less would need another tile
            assert len(starts(length, side - 1, 16)) > len(offsets)
    assert fit_tile(512, 256, 16) == 182  # the net runs over 3 x 182 px instead of 3 x 256


def test_on_step_counts_every_tile():
    steps = []
    upscale(noise((120, 70)), tile=64, overlap=16, on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(i, 6) for i in range(1, 7)]  # 3 columns of 51 px (at x = 0, 34, 69) x 2 rows of 43 (y = 0, 27)


def test_out_of_memory_halves_the_tile(monkeypatch):
    real_call = upscalers.Upscaler.__call__

    def small_tiles_only(self, x):
        if max(x.shape[-2:]) > 64:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_call(self, x)

    monkeypatch.setattr(upscalers.Upscaler, "__call__", small_tiles_only)
    result = upscale(noise((70, 66)), tile=256, overlap=16)
    assert result.parameters["tile_limit"] == 64 and result.images[0].size == (280, 264)
    assert result.parameters["tile"] <= 64

    def never(self, x):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory (simulated)")

    monkeypatch.setattr(upscalers.Upscaler, "__call__", never)
    with pytest.raises(OutOfMemory, match="64-px tiles"):
        upscale(noise((70, 66)))


# --- models given as files ---------------------------------------------------------------------------

def test_model_files_in_the_models_folder(models_dir):
    shutil.copy(DEFAULT_FILE, models_dir / "mine.safetensors")
    state = {k: v.float().contiguous() for k, v in upscalers.get_upscaler().model.model.state_dict().items()}
    torch.save(state, models_dir / "mine.pth")
    for name, shown in (("mine.safetensors", "mine.safetensors"), ("mine.pth", "mine.pth"),
                        (str(models_dir / "mine.pth"), "mine.pth")):
        result = upscale(noise(), model=name, scale=2)
        assert result.images[0].size == (80, 60) and result.parameters["model_scale"] == 4
        assert result.parameters["model"] == shown  # never a server path
    (models_dir / "broken.safetensors").write_bytes(b"not a model")
    listed = upscalers.choices()
    assert ("mine.pth (x4 RealESRGAN Compact)", "mine.pth") in listed
    assert ("mine.safetensors (x4 RealESRGAN Compact)", "mine.safetensors") in listed
    assert "broken.safetensors" not in dict(listed).values()  # not an upscaler by its header


class Payload:  # anything a plain-tensor loader must refuse to rebuild
    pass


@pytest.mark.parametrize("file_name, content, error, words", [
    ("empty.pth", b"", UnsafeModelFile, "empty.pth is not a readable model file"),
    ("text.pth", b"hello", UnsafeModelFile, r"text.pth is not a readable model file \(it is neither a PyTorch"),
    ("cut.pth", b"\x80\x02junk", UnsafeModelFile, "cut.pth is not a readable model file"),  # struct.error inside
    ("evil.pth", "pickle", UnsafeModelFile, "unpickling"),
    ("notes.txt", b"hello", UnsafeModelFile, ".safetensors or .pth"),
    ("garbage.safetensors", b"not a safetensors file", UnsafeModelFile, "not a readable"),
    ("random.safetensors", "tensors", UnsafeModelFile, "no upscaler or face-restoration architecture"),
])
def test_refuses_unsafe_or_unknown_files(models_dir, file_name, content, error, words):
    path = models_dir / file_name
    if content == "pickle":
        torch.save({"weight": torch.zeros(2), "extra": Payload()}, path)
    elif content == "tensors":
        save_file({"foo.weight": torch.zeros(3, 3)}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(error, match=words):
        upscale(noise(), model=file_name)
    assert file_name not in dict(upscalers.choices()).values()  # left out of the model list, which still works


def test_refuses_paths_outside_the_allowed_folders(tmp_path, models_dir):
    outside = tmp_path / "elsewhere" / "x.safetensors"
    outside.parent.mkdir()
    shutil.copy(DEFAULT_FILE, outside)
    for model in (str(outside), "../elsewhere/x.safetensors"):
        with pytest.raises(ModelNotFound, match="outside the allowed folders"):
            upscale(noise(), model=model)


# --- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("image, kwargs, error, words", [
    (None, {}, InvalidInput, "no image"),
    ("TEXT", {}, InvalidInput, "not a readable picture"),
    (Image.new("RGB", (1, 1)), {}, InvalidInput, "at least 8 px"),
    (Image.new("RGB", (5000, 5000)), {}, InvalidInput, "at most 4096 px"),
    (Image.new("RGB", (4096, 16)), {"scale": 8}, InvalidInput, "at most 16384 px"),
    ("RGB", {"scale": 0}, InvalidInput, "scale must be 1..8, got 0"),
    ("RGB", {"scale": 0.5}, InvalidInput, "scale must be 1..8, got 0.5"),
    ("RGB", {"scale": float("nan")}, InvalidInput, "scale must be a number"),
    ("RGB", {"tile": 10}, InvalidInput, "tile must be 64..2048, got 10"),
    ("RGB", {"tile": 64, "overlap": 17}, InvalidInput, r"overlap \(at most a quarter of the 64-px tile\) must be 0..16, got 17"),
    ("RGB", {"model": "no-such-upscaler"}, ModelNotFound, "unknown upscaler model 'no-such-upscaler'.*RealESRGAN_x4plus"),
    ("RGB", {"model": "missing.safetensors"}, ModelNotFound, "not found"),
    ("RGB", {"model": 42}, InvalidInput, "model must be an upscaler name or a file path"),
])
def test_bad_input_raises_typed_errors(tmp_path, image, kwargs, error, words):
    if image == "TEXT":
        image = tmp_path / "notes.txt"
        image.write_text("not a picture")
    elif image == "RGB":
        image = noise()
    with pytest.raises(error, match=words):
        upscale(image, **kwargs)


def test_an_oversized_picture_is_refused_from_its_header_before_decoding(monkeypatch):
    import io

    from PIL import ImageFile

    from core.imaging.io import open_image

    buffer = io.BytesIO()
    Image.new("L", (16000, 16000)).save(buffer, "PNG")  # 16 KB of PNG, 256 MB of pixels
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels decoded"))
    with pytest.raises(InvalidInput, match="16000x16000 px; each side must be at most 4096 px"):
        open_image(buffer.getvalue())


def test_big_pngs_are_written_fast_and_stay_lossless(tmp_path, monkeypatch):
    from core.imaging import io as imageio

    picture = noise(size=(256, 256)).resize((512, 512), Image.Resampling.BILINEAR)
    upscaled = {"scale": 4, "model_scale": 4}  # an upscale's parameters: the user's picture, never watermarked
    normal = imageio.save_png(picture, tmp_path / "normal.png", upscaled).stat().st_size
    monkeypatch.setattr(imageio, "FAST_PNG_ABOVE_PX", 100 * 100)
    fast = imageio.save_png(picture, tmp_path / "fast.png", upscaled)
    assert fast.stat().st_size != normal  # zlib level 1, not 6
    again = Image.open(fast)
    assert np.array_equal(np.asarray(again), np.asarray(picture)) and json.loads(again.text["imagegen"]) == upscaled


def test_the_tile_follows_the_free_memory(free_memory):
    assert upscalers.tile_for_memory(2**40, 8000, 256) == 256  # plenty: the throughput cap
    assert upscalers.tile_for_memory(4 * 200 * 200 * 8000, 8000, 512) == 192  # 200 px fit: rounded down to 64s
    assert upscalers.tile_for_memory(10, 8000, 512) == 64  # nothing fits: the smallest, then OOM halving has the say
    up = upscalers.get_upscaler()
    free_memory(2**40)
    plenty = upscalers.default_tile(up)
    free_memory(4 * 100 * 100 * upscalers.bytes_per_pixel(up))
    cap = 256 if up.model.device.type == "cpu" else 512  # the Compact net's cap on this device
    assert plenty == cap and upscalers.default_tile(up) == 64
    assert upscale(noise((100, 90))).parameters["tile_limit"] == 64
