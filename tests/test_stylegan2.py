"""StyleGAN2 generators for files people bring (core.models.stylegan): both layouts, all file forms.

The state dicts are written here by their own key names (rosinality/stylegan2-pytorch's `Generator`,
NVIDIA's `G_ema.state_dict()`), at 256 px with small channel widths, random under fixed seeds; they
are loaded through `load_style_file` only. Offline, CPU.
"""

from __future__ import annotations

import argparse
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.errors import InvalidInput, UnsafeModelFile
from core.models.style_generator import MEAN_STYLE_SAMPLES, MEAN_STYLE_SEED, layer_groups
from core.models.stylegan import describe, is_style_file, load_style_file
from core.models.stylegan.ops import EqualLinear, modulated_conv2d, upfirdn2d, upsample2d
from core.models.stylegan.torch_side import WAVES

pytestmark = pytest.mark.usefixtures("offline")

RES, W_DIM, MLP = 256, 32, 2
SIDES = [4, 8, 16, 32, 64, 128, 256]
CHANNELS = {4: 32, 8: 32, 16: 24, 32: 16, 64: 16, 128: 8, 256: 8}
FIR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))  # un-normalized [1,3,3,1] 2-D


def _randn(gen: torch.Generator, *shape: int, scale: float = 1.0, mean: float = 0.0) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * scale + mean


def nv_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random NVIDIA-layout `G_ema.state_dict()` at 256 px, by key name."""
    g, s = torch.Generator().manual_seed(seed), {}
    for i in range(MLP):
        s[f"mapping.fc{i}.weight"] = _randn(g, W_DIM, W_DIM, scale=100.0)  # stored / lr_multiplier 0.01
        s[f"mapping.fc{i}.bias"] = _randn(g, W_DIM, scale=1.0)
    s["mapping.w_avg"] = _randn(g, W_DIM)

    def layer(pre: str, c_in: int, c_out: int, side: int) -> None:
        s[pre + "resample_filter"] = FIR / 64
        s[pre + "affine.weight"] = _randn(g, c_in, W_DIM)
        s[pre + "affine.bias"] = _randn(g, c_in, scale=0.1, mean=1.0)
        s[pre + "weight"] = _randn(g, c_out, c_in, 3, 3)
        s[pre + "noise_const"] = _randn(g, side, side)
        s[pre + "noise_strength"] = _randn(g, scale=0.1)
        s[pre + "bias"] = _randn(g, c_out, scale=0.1)

    for i, side in enumerate(SIDES):
        pre, c = f"synthesis.b{side}.", CHANNELS[side]
        if i == 0:
            s[pre + "const"] = _randn(g, c, side, side)
        else:
            layer(pre + "conv0.", CHANNELS[SIDES[i - 1]], c, side)
        layer(pre + "conv1.", c, c, side)
        s[pre + "torgb.affine.weight"] = _randn(g, c, W_DIM)
        s[pre + "torgb.affine.bias"] = _randn(g, c, scale=0.1, mean=1.0)
        s[pre + "torgb.weight"] = _randn(g, 3, c, 1, 1)
        s[pre + "torgb.bias"] = _randn(g, 3, scale=0.1)
        s[pre + "resample_filter"] = FIR / 64
    return s


def port_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random stylegan2-pytorch `Generator.state_dict()` (g_ema) at 256 px, by key name."""
    g, s = torch.Generator().manual_seed(seed), {}
    for i in range(1, MLP + 1):
        s[f"style.{i}.weight"] = _randn(g, W_DIM, W_DIM, scale=100.0)  # stored / lr_mul 0.01
        s[f"style.{i}.bias"] = _randn(g, W_DIM)

    def modconv(pre: str, c_in: int, c_out: int, k: int) -> None:
        s[pre + "weight"] = _randn(g, 1, c_out, c_in, k, k)
        s[pre + "modulation.weight"] = _randn(g, c_in, W_DIM)
        s[pre + "modulation.bias"] = _randn(g, c_in, scale=0.1, mean=1.0)

    def styled(pre: str, c_in: int, c_out: int, up: bool) -> None:
        modconv(pre + "conv.", c_in, c_out, 3)
        if up:
            s[pre + "conv.blur.kernel"] = FIR / 64 * 4
        s[pre + "noise.weight"] = _randn(g, 1, scale=0.1)
        s[pre + "activate.bias"] = _randn(g, c_out, scale=0.1)

    c4 = CHANNELS[4]
    s["input.input"] = _randn(g, 1, c4, 4, 4)
    styled("conv1.", c4, c4, False)
    modconv("to_rgb1.conv.", c4, 3, 1)
    s["to_rgb1.bias"] = _randn(g, 1, 3, 1, 1, scale=0.1)
    for k, side in enumerate(SIDES[1:]):
        before = CHANNELS[SIDES[k]]
        styled(f"convs.{2 * k}.", before, CHANNELS[side], True)
        styled(f"convs.{2 * k + 1}.", CHANNELS[side], CHANNELS[side], False)
        modconv(f"to_rgbs.{k}.conv.", CHANNELS[side], 3, 1)
        s[f"to_rgbs.{k}.bias"] = _randn(g, 1, 3, 1, 1, scale=0.1)
        s[f"to_rgbs.{k}.upsample.kernel"] = FIR / 64 * 4
    for i in range(2 * len(SIDES) - 1):
        side = SIDES[(i + 1) // 2]
        s[f"noises.noise_{i}"] = _randn(g, 1, 1, side, side)
    return s


def _faces(gen, n: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    z = np.random.default_rng(seed).standard_normal((n, gen.z_dim), dtype=np.float32)
    w = gen.mapping(z)
    ws = np.repeat(w[:, None], gen.num_layers, axis=1)
    return ws, gen.synthesis(ws)


def _check_generator(gen) -> np.ndarray:
    """Shape, finiteness, determinism and batch independence; returns the pictures."""
    assert (gen.z_dim, gen.w_dim, gen.resolution) == (W_DIM, W_DIM, RES)
    ws, img = _faces(gen)
    assert img.shape == (3, 3, RES, RES) and img.dtype == np.float32
    assert np.isfinite(img).all() and img.std() > 0
    assert np.array_equal(gen.synthesis(ws), img)
    scale = np.abs(img).max()
    for i in range(3):
        np.testing.assert_allclose(gen.synthesis(ws[i:i + 1])[0], img[i], rtol=1e-5, atol=1e-5 * scale)
    return img


FORMS = {
    "nv-safetensors": lambda p: save_file(nv_state(), p / "g.safetensors") or p / "g.safetensors",
    "nv-prefixed-safetensors": lambda p: save_file({"G_ema." + k: v for k, v in nv_state().items()},
                                                   p / "g.safetensors") or p / "g.safetensors",
    "nv-pt": lambda p: torch.save(nv_state(), p / "g.pt") or p / "g.pt",
    "port-safetensors": lambda p: save_file(port_state(), p / "g.safetensors") or p / "g.safetensors",
    "port-flat-checkpoint-safetensors": lambda p: save_file(
        {**{"g_ema." + k: v for k, v in port_state().items()}, **{"g." + k: v for k, v in port_state(5).items()},
         "latent_avg": torch.ones(W_DIM)}, p / "g.safetensors") or p / "g.safetensors",
    "port-pth": lambda p: torch.save(port_state(), p / "g.pth") or p / "g.pth",
    "port-checkpoint-pt": lambda p: torch.save(
        {"g_ema": port_state(), "g": port_state(5), "d": {"x.weight": torch.ones(2)}, "latent_avg": torch.ones(W_DIM),
         "args": argparse.Namespace(size=RES, n_mlp=MLP), "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]}},
        p / "g.pt") or p / "g.pt",
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_loads_and_draws(tmp_path, form):
    gen = load_style_file(FORMS[form](tmp_path))
    _check_generator(gen)
    assert gen.layer_sides == (4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256)
    assert layer_groups(gen.layer_sides) == {"coarse": (0, 3), "middle": (4, 7), "fine": (8, 13)}
    assert gen.wave == WAVES[gen.device.type] and "g." in gen.source and "StyleGAN2" in gen.source
    if "checkpoint" in form:  # the checkpoint's latent_avg is the mean style
        assert np.array_equal(gen.mean_style(), np.ones(W_DIM, np.float32))


@pytest.mark.parametrize("layout", ["nv", "port"])
def test_round_trip_gives_equal_state_and_pictures(tmp_path, layout):
    state = nv_state() if layout == "nv" else port_state()
    save_file(state, tmp_path / "a.safetensors")
    first = load_style_file(tmp_path / "a.safetensors")
    saved = first.net.state_dict()
    assert set(saved) == set(state) and all(torch.equal(saved[k], state[k]) for k in state)
    torch.save(dict(saved), tmp_path / "b.pt")
    second = load_style_file(tmp_path / "b.pt")
    assert all(torch.equal(second.net.state_dict()[k], state[k]) for k in state)
    assert np.array_equal(_faces(first)[1], _faces(second)[1])


def test_mean_style_is_the_files_w_avg_or_the_seeded_mean(tmp_path):
    state = nv_state()
    save_file(state, tmp_path / "nv.safetensors")
    assert np.array_equal(load_style_file(tmp_path / "nv.safetensors").mean_style(), state["mapping.w_avg"].numpy())
    save_file(port_state(), tmp_path / "port.safetensors")
    gen = load_style_file(tmp_path / "port.safetensors")  # a bare g_ema state dict: no latent_avg
    z = np.random.default_rng(MEAN_STYLE_SEED).standard_normal((MEAN_STYLE_SAMPLES, W_DIM), dtype=np.float32)
    np.testing.assert_allclose(gen.mean_style(), gen.mapping(z).mean(axis=0), rtol=1e-4, atol=1e-4)
    assert gen.mean_style() is not gen.mean_style() and np.array_equal(gen.mean_style(), gen.mean_style())


def test_bad_inputs_are_refused(tmp_path):
    save_file(port_state(), tmp_path / "g.safetensors")
    gen = load_style_file(tmp_path / "g.safetensors")
    with pytest.raises(InvalidInput, match="ws must have shape"):
        gen.synthesis(np.zeros((1, 3, W_DIM), np.float32))
    with pytest.raises(InvalidInput, match="z must have shape"):
        gen.mapping(np.zeros((1, W_DIM + 1), np.float32))


@pytest.mark.parametrize("layout,change,words", [
    ("nv", lambda s: s.pop("synthesis.b64.conv0.noise_strength"), "lacks the key synthesis.b64.conv0.noise_strength"),
    ("nv", lambda s: s.pop("mapping.fc1.bias"), "lacks the key mapping.fc1.bias"),
    ("nv", lambda s: s.update({"synthesis.b8.conv1.bias": torch.zeros(5)}), "synthesis.b8.conv1.bias of shape"),
    ("nv", lambda s: s.update({"synthesis.b8.extra": torch.zeros(5)}), "unexpected key synthesis.b8.extra"),
    ("port", lambda s: s.pop("convs.3.activate.bias"), "lacks the key convs.3.activate.bias"),
    ("port", lambda s: s.pop("noises.noise_4"), "lacks the key noises.noise_4"),
    ("port", lambda s: s.update({"to_rgb1.bias": torch.zeros(3)}), "to_rgb1.bias of shape"),
])
def test_wrong_or_missing_key_names_the_key(tmp_path, layout, change, words):
    state = nv_state() if layout == "nv" else port_state()
    change(state)
    save_file(state, tmp_path / "bad.safetensors")
    with pytest.raises(UnsafeModelFile, match="bad.safetensors") as err:
        load_style_file(tmp_path / "bad.safetensors")
    assert words in str(err.value) and str(tmp_path) not in str(err.value)


def test_conditional_resnet_and_unknown_files_are_refused(tmp_path):
    cond = nv_state()
    cond["mapping.embed.weight"], cond["mapping.embed.bias"] = torch.zeros(W_DIM, 10), torch.zeros(W_DIM)
    cond["mapping.fc0.weight"] = torch.zeros(W_DIM, 2 * W_DIM)
    save_file(cond, tmp_path / "cond.safetensors")
    with pytest.raises(UnsafeModelFile, match="cond.safetensors.*conditional"):
        load_style_file(tmp_path / "cond.safetensors")
    resnet = nv_state()
    resnet["synthesis.b8.skip.weight"] = torch.zeros(CHANNELS[8], CHANNELS[4], 1, 1)
    save_file(resnet, tmp_path / "resnet.safetensors")
    with pytest.raises(UnsafeModelFile, match="resnet.*skip"):
        load_style_file(tmp_path / "resnet.safetensors")
    save_file({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.safetensors")
    with pytest.raises(UnsafeModelFile, match="other.safetensors is no StyleGAN2/StyleGAN3 generator"):
        load_style_file(tmp_path / "other.safetensors")
    assert describe(tmp_path / "other.safetensors") is None


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickles_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    with open(tmp_path / "network.pkl", "wb") as handle:
        pickle.dump({"G_ema": _Payload(str(marker))}, handle)
    with pytest.raises(UnsafeModelFile) as err:
        load_style_file(tmp_path / "network.pkl")
    text = str(err.value)
    assert "network.pkl" in text and "torch.save(G.state_dict()" in text and "save_file" in text
    torch.save({"g_ema": port_state(), "evil": _Payload(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeModelFile, match="evil.pt needs unpickling of code"):
        load_style_file(tmp_path / "evil.pt")
    assert describe(tmp_path / "evil.pt") is None
    assert not marker.exists()


def test_describe_and_is_style_file(tmp_path):
    save_file(nv_state(), tmp_path / "nv.safetensors")
    torch.save({"g_ema": port_state(), "latent_avg": torch.ones(W_DIM)}, tmp_path / "port.pt")
    assert describe(tmp_path / "nv.safetensors") == "StyleGAN2 256 px (NVIDIA layout)"
    assert describe(tmp_path / "port.pt") == "StyleGAN2 256 px (stylegan2-pytorch layout)"
    assert "convert" in describe(tmp_path / "x.pkl")
    assert is_style_file(nv_state()) and is_style_file(["g_ema." + k for k in port_state()])
    assert not is_style_file(["model.diffusion_model.x", "lora_unet.y"])


def test_scan_lists_face_files(models_dir):
    save_file(nv_state(), models_dir / "nv.safetensors")
    save_file({"conv.weight": torch.zeros(1)}, models_dir / "upscaler.safetensors")
    (models_dir / "stylegan").mkdir()
    torch.save(port_state(), models_dir / "stylegan" / "port.pt")
    (models_dir / "stylegan" / "network.pkl").write_bytes(b"not read")
    torch.save(nv_state(), models_dir / "elsewhere.pt")
    from core.models import files

    assert files.scan("face") == ["elsewhere.pt", "nv.safetensors", "stylegan/network.pkl", "stylegan/port.pt"]
    assert files.scan("upscaler") == ["upscaler.safetensors"]


def test_modulated_conv_equals_a_plain_conv_with_explicit_weights():
    gen = torch.Generator().manual_seed(3)
    x, weight, styles = torch.randn(2, 4, 6, 6, generator=gen), torch.randn(5, 4, 3, 3, generator=gen), \
        torch.randn(2, 4, generator=gen)
    got = modulated_conv2d(x, weight, styles)
    got_up = modulated_conv2d(x, weight, styles, up=True, fir=FIR / 64, fir_gain=4.0)
    assert got_up.shape == (2, 5, 12, 12)
    for n in range(2):
        w = weight * styles[n].reshape(1, 4, 1, 1)  # modulate the input channels
        w = w / torch.sqrt((w ** 2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)  # demodulate each output
        torch.testing.assert_close(got[n], F.conv2d(x[n:n + 1], w, padding=1)[0], rtol=1e-5, atol=1e-5)
        # up: zero insertion (2H-1), a full conv with the flipped kernel, then the FIR blur padded (1, 1)
        stuffed = torch.zeros(1, 4, 11, 11)
        stuffed[:, :, ::2, ::2] = x[n:n + 1]
        full = F.conv2d(stuffed, w.flip(2, 3), padding=2)  # (1, 5, 13, 13) == conv_transpose2d stride 2
        blurred = F.conv2d(F.pad(full, [1, 1, 1, 1]), (FIR / 16).expand(5, 1, 4, 4), groups=5)
        torch.testing.assert_close(got_up[n], blurred[0], rtol=1e-5, atol=1e-5)
    plain = modulated_conv2d(x, weight, styles, demodulate=False)
    torch.testing.assert_close(plain[1], F.conv2d(x[1:2], weight * styles[1].reshape(1, 4, 1, 1), padding=1)[0])


def test_fir_upsample_keeps_a_constant_image_constant():
    # NVIDIA's setup_filter([1,3,3,1]) = the outer product normalized to sum 1: entries k_i k_j / 64
    nv_filter = FIR / FIR.sum()
    assert FIR.sum() == 64 and torch.isclose(nv_filter.sum(), torch.tensor(1.0))
    img = torch.full((1, 2, 8, 8), 0.7)
    up = upsample2d(img, nv_filter)  # gain 4: each output pixel gets a quarter of the taps
    assert up.shape == (1, 2, 16, 16)
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.full((1, 2, 12, 12), 0.7))
    sep = upfirdn2d(img, torch.tensor([1.0, 3, 3, 1]) / 8, up=2, pad=(2, 1), gain=4.0)  # separable form
    torch.testing.assert_close(sep, up)


def test_equalized_lr_scale_is_lr_mul_over_sqrt_fan_in():
    layer = EqualLinear(16, 2, lr_mul=0.01)
    with torch.no_grad():
        layer.weight.fill_(100.0)  # stored weight = effective / lr_mul
        layer.bias.fill_(100.0)
    out = layer(torch.ones(1, 16))
    # effective weight 100 * 0.01 / sqrt(16) = 0.25, times 16 inputs = 4; effective bias 100 * 0.01 = 1
    torch.testing.assert_close(out, torch.full((1, 2), 5.0))
    act = EqualLinear(16, 2, act=True)
    with torch.no_grad():
        act.weight.fill_(-1.0)
    assert torch.allclose(act(torch.ones(1, 16)), torch.full((1, 2), -4.0 * 0.2 * math.sqrt(2)))


def test_importing_and_scanning_loads_no_torch(tmp_path):
    save_file(nv_state(), tmp_path / "nv.safetensors")
    code = ("import sys; from pathlib import Path; import core.models.stylegan as s; from core.models import files; "
            f"assert files.kind_of(Path({str(tmp_path / 'nv.safetensors')!r})) == 'face'; "
            "assert s.is_style_file(['mapping.fc0.weight', 'synthesis.b4.const']); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1], timeout=60)


def test_a_file_in_the_models_folder_makes_faces_mixes_and_morphs(models_dir, tmp_path):
    """End to end through core: a StyleGAN2 file people bring is listed, draws, mixes and morphs."""
    from core import UnsafeModelFile as Refused
    from core import catalog, generate_faces, interpolate_faces

    (models_dir / "stylegan").mkdir()
    save_file(nv_state(), models_dir / "stylegan" / "ffhq-tiny.safetensors")
    (models_dir / "stylegan" / "network.pkl").write_bytes(b"\x80\x04K\x01.")
    labels = dict((model, label) for label, model in catalog.face_models())
    assert labels["stylegan/ffhq-tiny.safetensors"].endswith("(StyleGAN2 256 px (NVIDIA layout))")
    model = "stylegan/ffhq-tiny.safetensors"
    batch = generate_faces(count=2, seed=3, model=model, truncation_psi=0.8)
    assert [im.size for im in batch.images] == [(256, 256)] * 2 and batch.parameters["layers"] == 14
    alone = generate_faces(count=1, seed=4, model=model, truncation_psi=0.8)
    assert np.array_equal(np.asarray(batch.images[1]), np.asarray(alone.images[0]))
    mixed = generate_faces(count=1, seed=3, model=model, mix_seed=9, mix_layers="all", truncation_psi=0.8)
    other = generate_faces(count=1, seed=9, model=model, truncation_psi=0.8)
    assert np.array_equal(np.asarray(mixed.images[0]), np.asarray(other.images[0]))
    morph = interpolate_faces(3, 9, frames=3, model=model, truncation_psi=0.8, size=128,
                              gif_path=tmp_path / "m.gif", video_path=tmp_path / "m.mp4")
    assert len(morph.images) == 3 and morph.images[0].size == (128, 128)
    with pytest.raises(Refused, match="Convert it once"):
        generate_faces(count=1, model="stylegan/network.pkl")
