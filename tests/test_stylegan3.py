"""StyleGAN3 for files people bring (core.models.stylegan.stylegan3): tiny random nets, designed the way
NVIDIA's training configuration designs them (arXiv:2106.12423, appendix F), saved and loaded offline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from core.errors import UnsafeModelFile
from core.models.stylegan import stylegan3
from core.models.stylegan.stylegan3_layers import FourierInput, filtered_lrelu

Z_DIM, W_DIM = 24, 32


# ---- filter design (scipy is not installed: Kaiser-windowed sinc and jinc written here) ----

def _kaiser_beta(taps: int, width: float) -> float:
    """Kaiser window beta for `taps` taps and a transition band `width` relative to Nyquist (Kaiser 1974)."""
    atten = 2.285 * (taps - 1) * math.pi * width + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21) if atten > 21 else 0.0


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel J1 by its power series, sum_k (-1)^k (x/2)^(2k+1) / (k! (k+1)!); exact enough for x < 20."""
    term = x / 2
    total = term.copy()
    for k in range(60):
        term = term * -(x / 2) ** 2 / ((k + 1) * (k + 2))
        total += term
    return total


def _lowpass(taps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """Windowed-sinc low-pass of unit DC gain, (taps,); the radial one is a windowed jinc, (taps, taps)."""
    if taps == 1:
        return None
    beta = _kaiser_beta(taps, width / (fs / 2))
    window = np.kaiser(taps, beta)
    if not radial:
        m = np.arange(taps) - (taps - 1) / 2
        h = (2 * cutoff / fs) * np.sinc(2 * cutoff / fs * m) * window
        return torch.tensor(h / h.sum(), dtype=torch.float32)
    x = (np.arange(taps) - (taps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    h = _bessel_j1(2 * math.pi * cutoff * r) / (math.pi * r) * np.outer(window, window)
    return torch.tensor(h / h.sum(), dtype=torch.float32)


def design(resolution: int = 256, channel_base: int = 512, channel_max: int = 8, num_layers: int = 14,
           radial: bool = False, margin: int = 10) -> list[dict]:
    """Per-layer hyperparameters of a StyleGAN3 synthesis net: cutoffs and stopbands in a geometric
    progression from 2 / 2**2.1 to R/2 / R/2 * 2**0.3, the last two layers critically sampled."""
    critical = 2
    ramp = np.minimum(np.arange(num_layers + 1) / (num_layers - critical), 1)
    cutoffs = 2 * (resolution / 2 / 2) ** ramp
    stopbands = 2 ** 2.1 * (resolution / 2 * 2 ** 0.3 / 2 ** 2.1) ** ramp
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + 2 * margin
    sizes[-2:] = resolution
    channels = np.rint(np.minimum(channel_base / 2 / cutoffs, channel_max)).astype(int)
    channels[-1] = 3
    layers = []
    for i in range(num_layers + 1):
        p, torgb = max(i - 1, 0), i == num_layers
        tmp = max(rates[p], rates[i]) * (1 if torgb else 2)
        up, down = int(tmp / rates[p]), int(tmp / rates[i])
        up_taps, down_taps = (1, 1) if torgb else (6 * up, 6 * down)
        k = 1 if torgb else (1 if radial else 3)
        total = (sizes[i] - 1) * down + 1 - (sizes[p] + k - 1) * up + up_taps + down_taps - 2
        layers.append(dict(
            name=f"L{i}_{int(sizes[i])}_{channels[i]}", in_channels=int(channels[p]), out_channels=int(channels[i]),
            kernel=k, rate=int(rates[i]), up=up, down=down, padding=(int((total + up) // 2), int(total - (total + up) // 2)),
            up_filter=_lowpass(up_taps, cutoffs[p], half_widths[p] * 2, tmp),
            down_filter=_lowpass(down_taps, cutoffs[i], half_widths[i] * 2, tmp, radial and i < num_layers - critical),
            input=dict(channels=int(channels[0]), size=int(sizes[0]), rate=float(rates[0]), bandwidth=float(cutoffs[0]))))
    return layers


def random_state(seed: int = 0, **kwargs) -> dict[str, torch.Tensor]:
    """A random StyleGAN3 generator state dict under NVIDIA's key names (`design(**kwargs)`)."""
    g = torch.Generator().manual_seed(seed)
    layers = design(**kwargs)
    state = {}
    for i, fan_in in enumerate([Z_DIM, W_DIM]):
        state[f"mapping.fc{i}.weight"] = torch.randn(W_DIM, fan_in, generator=g) * 100  # lr multiplier 0.01
        state[f"mapping.fc{i}.bias"] = torch.randn(W_DIM, generator=g) * 10
    state["mapping.w_avg"] = torch.randn(W_DIM, generator=g)
    source = layers[0]["input"]
    c = source["channels"]
    freqs = torch.randn(c, 2, generator=g)
    radii = freqs.norm(dim=1, keepdim=True)
    state.update({
        "synthesis.input.weight": torch.randn(c, c, generator=g),
        "synthesis.input.affine.weight": torch.randn(4, W_DIM, generator=g) * 0.3,
        "synthesis.input.affine.bias": torch.tensor([1.0, 0, 0, 0]),
        "synthesis.input.transform": torch.eye(3),
        "synthesis.input.freqs": freqs / (radii * radii.square().exp().pow(0.25)) * source["bandwidth"],
        "synthesis.input.phases": torch.rand(c, generator=g) - 0.5})
    for layer in layers:
        key = f"synthesis.{layer['name']}."
        o, i, k = layer["out_channels"], layer["in_channels"], layer["kernel"]
        state.update({
            key + "weight": torch.randn(o, i, k, k, generator=g),
            key + "bias": torch.randn(o, generator=g) * 0.1,
            key + "affine.weight": torch.randn(i, W_DIM, generator=g),
            key + "affine.bias": torch.ones(i),
            key + "magnitude_ema": torch.rand([], generator=g) + 0.5})
        for name in ("up_filter", "down_filter"):
            if layer[name] is not None:
                state[key + name] = layer[name]
    return state


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state()


@pytest.fixture(scope="module")
def net(state):
    return stylegan3.from_state_dict(state)


def _ws(net, n: int, seed: int = 1) -> torch.Tensor:
    z = torch.randn(n, net.z_dim, generator=torch.Generator().manual_seed(seed))
    w = net.map(z)  # (N, w_dim)
    return w.unsqueeze(1).repeat(1, len(net.layer_sides), 1)  # (N, L, w_dim)


# ---- the net ----

@torch.no_grad()
def test_draw_shape_finite_deterministic_and_batch_independent(net):
    ws = _ws(net, 3)
    images = net.draw(ws)
    assert images.shape == (3, 3, 256, 256)
    assert torch.isfinite(images).all() and images.std() > 0
    assert torch.equal(images, net.draw(ws))
    for i in range(3):
        torch.testing.assert_close(net.draw(ws[i:i + 1]), images[i:i + 1], rtol=1e-5, atol=1e-5)


def test_hyperparameters_derived_from_the_file(net):
    layers = design()
    assert (net.z_dim, net.w_dim, net.img_resolution) == (Z_DIM, W_DIM, 256)
    assert net.layer_sides == (layers[0]["rate"], *(layer["rate"] for layer in layers))
    assert len(net.layer_sides) == len(layers) + 1 and list(net.layer_sides) == sorted(net.layer_sides)
    assert net.layer_sides[0] == 16 and net.layer_sides[-1] == 256
    assert net.w_avg is not None and net.w_avg.shape == (W_DIM,)
    for layer in layers:
        got = getattr(net.synthesis, layer["name"])
        assert (got.up, got.down, got.padding) == (layer["up"], layer["down"], layer["padding"]), layer["name"]
    source = net.synthesis.input
    assert (source.size, source.sampling_rate, source.bandwidth) == (36, 16, 2)


@torch.no_grad()
def test_radial_r_config_loads_and_draws():
    state = random_state(seed=3, radial=True, channel_base=256, channel_max=6)
    assert any(v.ndim == 2 for k, v in state.items() if k.endswith("down_filter"))
    net = stylegan3.from_state_dict(state)
    images = net.draw(_ws(net, 1))
    assert images.shape == (1, 3, 256, 256) and torch.isfinite(images).all()
    assert net.synthesis.L0_36_6.weight.shape[-1] == 1


@torch.no_grad()
def test_safetensors_and_weights_only_round_trip(net, state, tmp_path):
    ws = _ws(net, 2)
    expected = net.draw(ws)
    save_file(state, tmp_path / "g.safetensors")
    torch.save({stylegan3.PREFIX + k: v for k, v in state.items()}, tmp_path / "g.pt")
    for loaded in (load_file(tmp_path / "g.safetensors"), torch.load(tmp_path / "g.pt", weights_only=True)):
        assert stylegan3.looks_like(set(loaded))
        assert torch.equal(stylegan3.from_state_dict(loaded).draw(ws), expected)


def test_looks_like(state):
    assert stylegan3.looks_like(set(state))
    assert not stylegan3.looks_like({"mapping.fc0.weight", "synthesis.b4.const", "synthesis.b4.conv1.weight"})
    assert not stylegan3.looks_like(set())


def _changed(state, drop=(), **extra) -> dict[str, torch.Tensor]:
    out = {k: v for k, v in state.items() if k not in drop}
    out.update({k.replace("__", "."): v for k, v in extra.items()})
    return out


@pytest.mark.parametrize("change, key", [
    (dict(drop=["synthesis.L5_84_8.weight"]), "synthesis.L5_84_8.weight"),
    (dict(drop=["synthesis.L3_52_8.up_filter"]), "synthesis.L3_52_8.up_filter"),
    (dict(drop=["synthesis.input.phases"]), "synthesis.input.phases"),
    (dict(drop=["mapping.fc1.bias"]), "mapping.fc1.bias"),
    ({"synthesis__L2_36_8__extra": torch.zeros(2)}, "synthesis.L2_36_8.extra"),
    ({"synthesis__L14_256_3__up_filter": torch.ones(1)}, "synthesis.L14_256_3.up_filter"),
    ({"decoder__weight": torch.zeros(2)}, "decoder.weight"),
    ({"synthesis__L4_52_8__bias": torch.zeros(7)}, "synthesis.L4_52_8.bias"),
    ({"synthesis__L6_84_8__weight": torch.zeros(8, 8, 5, 5)}, "synthesis.L6_84_8.weight"),
    ({"synthesis__L5_84_8__down_filter": torch.ones(10) / 10}, "synthesis.L5_84_8.down_filter"),
    ({"synthesis__input__freqs": torch.full((8, 2), 3.0)}, "frequencies"),
    ({"synthesis__L3_99_8__bias": torch.zeros(8)}, "L3_99_8"),
])
def test_bad_files_are_refused_naming_the_key(state, change, key):
    with pytest.raises(UnsafeModelFile, match=key.replace(".", r"\.")):
        stylegan3.from_state_dict(_changed(state, **change))


def test_conditional_generator_refused(state):
    bad = dict(state, **{"mapping.embed.weight": torch.zeros(W_DIM, 10), "mapping.embed.bias": torch.zeros(W_DIM)})
    with pytest.raises(UnsafeModelFile, match="conditional"):
        stylegan3.from_state_dict(bad)


# ---- the layer maths against explicit computations ----

def _slow_conv(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """True 2-D convolution of each (H, W) plane of x (C, H, W) with f (k, k), output "valid"."""
    k = f.shape[0]
    flipped = f[::-1, ::-1]
    out = np.zeros((x.shape[0], x.shape[1] - k + 1, x.shape[2] - k + 1))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = (x[:, i:i + k, j:j + k] * flipped).sum(axis=(1, 2))
    return out


def _slow_filtered_lrelu(x, bias, fu, fd, up, down, padding, linear):
    x = x[0].double().numpy() + bias.double().numpy()[:, None, None]  # (C, H, W)
    c, h, w = x.shape
    u = np.zeros((c, h * up, w * up))
    u[:, ::up, ::up] = x  # zero insertion
    p0, p1 = padding
    u = np.pad(u, [(0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0))])
    u = u[:, max(-p0, 0):u.shape[1] - max(-p1, 0), max(-p0, 0):u.shape[2] - max(-p1, 0)]
    if fu is not None:
        u = _slow_conv(u, np.outer(fu, fu) * up ** 2)
    u = np.clip(u if linear else np.where(u >= 0, u, 0.2 * u) * math.sqrt(2), -256, 256)
    if fd is not None:
        f2 = fd.double().numpy() if fd.ndim == 2 else np.outer(fd, fd)
        u = _slow_conv(u, f2)[:, ::down, ::down]
    return torch.from_numpy(u)[None]


@pytest.mark.parametrize("up, down, padding, radial, linear", [
    (2, 2, (7, 4), False, False), (4, 2, (9, 6), False, False), (2, 2, (-1, -2), True, False),
    (1, 1, (0, 0), False, True)])
def test_filtered_lrelu_matches_explicit_reference(up, down, padding, radial, linear):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 2, 7, 7, generator=g) * 150  # big enough for the clamp at 256 to act
    bias = torch.randn(2, generator=g) * 20
    fu = torch.rand(3 * up, generator=g) if not linear else None  # asymmetric: checks the flip
    fd = None if linear else torch.rand((3 * down,) * (2 if radial else 1), generator=g)
    got = filtered_lrelu(x, bias, fu, fd, up=up, down=down, padding=padding, linear=linear)
    want = _slow_filtered_lrelu(x, bias, fu, fd, up, down, padding, linear)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-3)
    assert want.abs().max() > 100


@pytest.mark.parametrize("angle, shift", [(0.0, (0.0, 0.0)), (0.0, (0.3, -0.7)), (0.6, (0.2, 0.1))])
def test_fourier_input_is_sinusoids_of_the_stored_frequencies(angle, shift):
    g = torch.Generator().manual_seed(5)
    c, size, rate = 5, 36, 16.0
    source = FourierInput(8, c, size, rate, 2.0)
    with torch.no_grad():
        source.weight.copy_(torch.randn(c, c, generator=g))
        source.affine.weight.zero_()
        source.affine.bias.copy_(torch.tensor([math.cos(angle), math.sin(angle), *shift]))  # a turn, a shift
        source.freqs.copy_((torch.rand(c, 2, generator=g) - 0.5) * 2)
        source.phases.copy_(torch.rand(c, generator=g) - 0.5)
        got = source(torch.randn(2, 8, generator=g))
    pos = (np.arange(size) + 0.5 - size / 2) / rate  # pixel centres in image units
    f, phi = source.freqs.double().numpy(), source.phases.double().numpy()
    y, x = np.meshgrid(pos, pos, indexing="ij")
    x, y = x - shift[0], y - shift[1]
    x, y = math.cos(angle) * x - math.sin(angle) * y, math.sin(angle) * x + math.cos(angle) * y
    waves = np.stack([np.sin(2 * np.pi * (f[i, 0] * x + f[i, 1] * y + phi[i]))
                      for i in range(c)])  # (C, H, W) at identity: sin(2 pi (f . p + phase)), phase in cycles
    want = np.einsum("oc,chw->ohw", source.weight.detach().double().numpy() / math.sqrt(c), waves)
    assert got.shape == (2, c, size, size)
    torch.testing.assert_close(got.double(), torch.from_numpy(want)[None].expand(2, -1, -1, -1), rtol=0, atol=1e-5)
