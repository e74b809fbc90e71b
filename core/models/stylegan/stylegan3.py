"""StyleGAN3 generators (-T and -R) that people bring as a plain state dict, in plain PyTorch.

Architecture: Karras et al. 2021, "Alias-Free Generative Adversarial Networks", arXiv:2106.12423. The
files are NVIDIA's `G_ema.state_dict()` (NVlabs/stylegan3, NVIDIA Source Code Licence, non-commercial;
only its key names are used here), saved as safetensors or as a `weights_only` `.pt`, with or without a
`G_ema.` prefix. The layers are in `stylegan3_layers.py`, the mapping network in `nv_mapping.py`.

What the file does not store, and how it is derived (`_derive`; refused with UnsafeModelFile if the
file does not fit):

1. Layer names `synthesis.L{idx}_{size}_{channels}` give each layer's output side and channels; idx runs
   0..N and layer N is the ToRGB layer (3 channels, side = the image resolution, no filters).
2. The conv kernel is `weight.shape[-1]` (3 in -T nets, 1 in -R nets; ToRGB always 1).
3. Resampling factors: the leaky ReLU runs at LRELU_UPSAMPLING (2) times the larger sampling rate, so
   `down` = 2; a filter has `filter_size * factor` taps, so `filter_size` = down taps / 2 and `up` =
   up taps / filter_size (2 where the sampling rate stays, 4 where it doubles). A radial (-R) down
   filter is square, (taps, taps).
4. Sampling rates: a layer's output rate over its input rate is up / down; the last two layers run at
   the image resolution; walking back from there gives every rate (the input's = layer 0's).
5. Margin: side minus sampling rate, the same number of pixels for every layer but the last two.
6. Padding of the filtered leaky ReLU, relative to the upsampled image: the total makes the two "valid"
   filter convolutions and the decimation end on exactly `size` pixels, (size-1)*down + 1 + (up_taps-1)
   + (down_taps-1) - (in_size + k - 1)*up; it is split as before = (total + up) // 2, after = the rest,
   so that samples sit at pixel centres (arXiv:2106.12423, appendix C.3).
7. The input's bandwidth is FIRST_CUTOFF (2 cycles per unit, every released net); it only matters for a
   stored `transform` that stretches, and a file whose input frequencies exceed it is refused.
Also fixed by the architecture, not stored: the output scale OUTPUT_SCALE, the clamp at 256, leaky ReLU
slope 0.2 with gain sqrt(2), the mapping net's learning-rate multiplier 0.01.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from core.errors import InvalidInput, UnsafeModelFile
from core.models.stylegan.nv_mapping import MappingNetwork
from core.models.stylegan.stylegan3_layers import LRELU_UPSAMPLING, FourierInput, SynthesisLayer
from core.models.stylegan.torch_side import load_strict

PREFIX = "G_ema."
"""Prefix of files saved from the whole training pickle's `G_ema` module; stripped when every key has it."""
OUTPUT_SCALE = 0.25
"""The ToRGB output times 0.25 is the picture, roughly in [-1, 1] (NVIDIA's `output_scale`)."""
FIRST_CUTOFF = 2.0
"""Bandwidth of the Fourier-feature input, cycles per image unit (NVIDIA's `first_cutoff`)."""

_LAYER = re.compile(r"^synthesis\.L(\d+)_(\d+)_(\d+)\.")


def _strip(keys) -> list[str]:
    keys = list(keys)
    return [k[len(PREFIX):] for k in keys] if keys and all(k.startswith(PREFIX) for k in keys) else keys


def looks_like(keys: set[str]) -> bool:
    """True for the keys of a StyleGAN3 generator state dict (a `G_ema.` prefix on every key is allowed).

    Looks only at names: the mapping net's `mapping.fc0.weight`, the Fourier input's
    `synthesis.input.freqs` and at least one `synthesis.L{idx}_{size}_{channels}.*` layer.
    """
    names = set(_strip(keys))
    return ("mapping.fc0.weight" in names and "synthesis.input.freqs" in names
            and any(_LAYER.match(k) for k in names))


def _tensor(state: dict[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    """`state[key]`, which must exist and have `ndim` dimensions; UnsafeModelFile otherwise."""
    if key not in state:
        raise UnsafeModelFile(f"lacks the key {key}")
    if state[key].ndim != ndim:
        raise UnsafeModelFile(f"has {key} of shape {tuple(state[key].shape)}, expected {ndim} dimensions")
    return state[key]


def _derive(state: dict[str, torch.Tensor], w_dim: int) -> tuple[FourierInput, dict[str, SynthesisLayer], list]:
    """Derive the hyperparameters (module docstring, steps 1-7) and build the empty synthesis modules.

    Returns:
        (input module, {layer name: layer module} in order, per-layer sampling rates of layers 0..N).

    Raises:
        UnsafeModelFile: naming the key or the layer whose shape or name does not fit.
    """
    # 1. layers and their names
    named: dict[int, tuple[str, int, int]] = {}
    for key in state:
        if m := _LAYER.match(key):
            idx, size, channels = (int(g) for g in m.groups())
            name = f"L{idx}_{size}_{channels}"
            if named.setdefault(idx, (name, size, channels))[0] != name:
                raise UnsafeModelFile(f"has two layers numbered {idx}: {named[idx][0]} and {name}")
    if sorted(named) != list(range(len(named))) or len(named) < 3:
        raise UnsafeModelFile(f"has synthesis layers {sorted(named)}, expected L0 .. LN with N >= 2")
    n = len(named) - 1
    names = [named[i][0] for i in range(n + 1)]
    sizes = [named[i][1] for i in range(n + 1)]
    channels = [named[i][2] for i in range(n + 1)]
    resolution = sizes[n]
    if channels[n] != 3 or sizes[n - 1] != resolution:
        raise UnsafeModelFile(f"ends with layers {names[n - 1]}, {names[n]}; expected L{n - 1}_{resolution}_C and "
                              f"a 3-channel ToRGB layer L{n}_{resolution}_3")
    # 2. kernel; 3. resampling factors from the filter taps
    kernel = _tensor(state, f"synthesis.{names[0]}.weight", 4).shape[-1]
    first_down = _tensor(state, f"synthesis.{names[-2]}.down_filter", 1).shape[0]  # never radial: critical
    filter_size, odd = divmod(first_down, LRELU_UPSAMPLING)
    if odd or filter_size < 1:
        raise UnsafeModelFile(f"has synthesis.{names[-2]}.down_filter of {first_down} taps, expected a multiple "
                              f"of {LRELU_UPSAMPLING}")
    taps: list[tuple[int, int, bool]] = []  # (up taps, down taps, radial down filter)
    for name in names[:-1]:
        up_key, down_key = f"synthesis.{name}.up_filter", f"synthesis.{name}.down_filter"
        up_taps = _tensor(state, up_key, 1).shape[0]
        down = state.get(down_key)
        if down is None:
            raise UnsafeModelFile(f"lacks the key {down_key}")
        radial = down.ndim == 2 and down.shape[0] == down.shape[1]
        if down.shape[0] != filter_size * LRELU_UPSAMPLING or not (down.ndim == 1 or radial):
            raise UnsafeModelFile(f"has {down_key} of shape {tuple(down.shape)}, expected "
                                  f"({filter_size * LRELU_UPSAMPLING},) or a square radial filter")
        if up_taps % filter_size or up_taps // filter_size not in (2, 4):
            raise UnsafeModelFile(f"has {up_key} of {up_taps} taps, expected {2 * filter_size} or {4 * filter_size}")
        taps.append((up_taps, down.shape[0], radial))
    ups = [t[0] // filter_size for t in taps] + [1]
    downs = [LRELU_UPSAMPLING] * n + [1]
    # 4. sampling rates, walking back from the image resolution
    rates = [float(resolution)] * (n + 1)
    for i in range(n - 1, 0, -1):
        rates[i - 1] = rates[i] * downs[i] / ups[i]
    if ups[0] != downs[0]:
        raise UnsafeModelFile(f"has synthesis.{names[0]}.up_filter of {taps[0][0]} taps; layer 0 keeps its "
                              f"sampling rate, so {filter_size * LRELU_UPSAMPLING} were expected")
    # 5. one margin for all layers but the last two
    margins = {(sizes[i] - rates[i]) / 2 for i in range(n - 1)}
    if len(margins) != 1 or (margin := margins.pop()) < 0 or margin != int(margin):
        raise UnsafeModelFile("has layer sides " + ", ".join(names) + " that do not fit the sampling rates "
                              f"{[int(r) if r == int(r) else r for r in rates]} read from the filters "
                              "(expected side = rate + 2 * margin, one margin, except the last two layers)")
    # 6. layers with their padding
    layers: dict[str, SynthesisLayer] = {}
    for i, name in enumerate(names):
        torgb = i == n
        k = 1 if torgb else kernel
        up_taps, down_taps, radial = taps[i] if not torgb else (1, 1, False)
        in_size = sizes[max(i - 1, 0)]
        total = ((sizes[i] - 1) * downs[i] + 1 + (up_taps - 1) + (down_taps - 1)
                 - (in_size + k - 1) * ups[i])
        before = (total + ups[i]) // 2
        layers[name] = SynthesisLayer(
            w_dim=w_dim, in_channels=channels[max(i - 1, 0)], out_channels=channels[i], kernel=k, up_taps=up_taps, down_taps=down_taps, down_radial=radial,
            up=ups[i], down=downs[i], padding=(before, total - before), torgb=torgb)
    # 7. the Fourier-feature input
    freqs = _tensor(state, "synthesis.input.freqs", 2)
    if freqs.numel() and freqs.float().norm(dim=1).max() > FIRST_CUTOFF * (1 + 1e-5):
        raise UnsafeModelFile(f"has input frequencies up to {float(freqs.float().norm(dim=1).max()):.3g} "
                              f"cycles, above the first cutoff {FIRST_CUTOFF} of every released StyleGAN3")
    source = FourierInput(w_dim, channels[0], sizes[0], rates[0], FIRST_CUTOFF)
    return source, layers, rates


class StyleGAN3Synthesis(nn.Module):
    """ws (N, N_layers + 2, w_dim) -> pictures (N, 3, R, R): the Fourier input, then layers L0 .. LN."""

    def __init__(self, source: FourierInput, layers: dict[str, SynthesisLayer]) -> None:
        super().__init__()
        self.input = source
        self.layer_names = list(layers)
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        """`ws` float32 (N, L, w_dim) -> float32 (N, 3, R, R), roughly in [-1, 1]."""
        x = self.input(ws[:, 0])
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1])
        return x * OUTPUT_SCALE


class StyleGAN3Generator(nn.Module):
    """A StyleGAN3 generator with the torch-side protocol of `core.models.stylegan.torch_side`.

    Attributes:
        z_dim, w_dim: latent and style lengths.
        img_resolution: output side R in px.
        layer_sides: the sampling rate (feature side without margin) that reads each style input:
            the input's (= layer 0's), then layers 0 .. N; non-decreasing; len = number of ws.
        w_avg: the stored mean style (w_dim,), or None if the file has none.
    """

    def __init__(self, mapping: MappingNetwork, synthesis: StyleGAN3Synthesis, rates: list[float]) -> None:
        super().__init__()
        self.mapping, self.synthesis = mapping, synthesis
        self.z_dim, self.w_dim = mapping.z_dim, mapping.w_dim
        self.img_resolution = int(rates[-1])
        self.layer_sides = tuple(int(r) for r in [rates[0], *rates])

    @property
    def w_avg(self) -> torch.Tensor | None:
        return self.mapping.w_avg if getattr(self.mapping, "has_w_avg", True) else None

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """Latents `z` float32 (N, z_dim), z ~ N(0, I) -> untruncated styles float32 (N, w_dim)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise InvalidInput(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        return self.mapping(z)

    def draw(self, ws: torch.Tensor) -> torch.Tensor:
        """Styles `ws` float32 (N, len(layer_sides), w_dim) -> float32 (N, 3, R, R), roughly in [-1, 1].

        Deterministic (the net has no noise inputs); a picture does not depend on the rest of its batch.
        """
        want = (len(self.layer_sides), self.w_dim)
        if ws.ndim != 3 or tuple(ws.shape[1:]) != want:
            raise InvalidInput(f"ws must have shape (N, {want[0]}, {want[1]}), got {tuple(ws.shape)}")
        return self.synthesis(ws)


def from_state_dict(state: dict[str, torch.Tensor]) -> StyleGAN3Generator:
    """Build a StyleGAN3 generator from NVIDIA's `G_ema.state_dict()` and load it strictly, in float32.

    Args:
        state: tensor name -> tensor, keys as in the module docstring, optionally all with `G_ema.`.

    Returns:
        StyleGAN3Generator on the CPU, eval mode (the caller moves it and turns off gradients).

    Raises:
        UnsafeModelFile: a conditional net (`mapping.embed.*`), a non-float tensor, hyperparameters that
            cannot be derived (see the module docstring), or a missing, unexpected or misshapen key;
            the message names the key (the loader adds the file name).
    """
    # 1. names and types
    state = dict(zip(_strip(state), state.values()))
    if any(k.startswith("mapping.embed.") for k in state):
        raise UnsafeModelFile("is a conditional generator (mapping.embed.* present); only unconditional "
                              "face generators are supported")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise UnsafeModelFile(f"has {key} that is not a floating-point tensor")
    other = sorted(k for k in state if not k.startswith(("mapping.", "synthesis.")))
    if other:
        raise UnsafeModelFile(f"has an unexpected key {other[0]}")
    # 2. mapping, then the synthesis net built from derived hyperparameters, each loaded strictly
    mapping = MappingNetwork.from_state_dict(state, "mapping.")
    source, layers, rates = _derive(state, mapping.w_dim)
    synthesis = StyleGAN3Synthesis(source, layers)
    load_strict(synthesis, {k[len("synthesis."):]: v for k, v in state.items() if k.startswith("synthesis.")},
                "synthesis.")
    return StyleGAN3Generator(mapping, synthesis, rates).eval()
