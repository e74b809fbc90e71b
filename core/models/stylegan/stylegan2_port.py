"""StyleGAN2 generator in the layout of the widely used PyTorch port (rosinality/stylegan2-pytorch).

Maths: Karras et al. 2020, arXiv:1912.04958 ("skip" generator, weight demodulation, FIR upsampling).
Key names (`style.{i}`, `input.input`, `conv1`, `to_rgb1`, `convs.{i}`, `to_rgbs.{i}`, `noises.noise_{i}`,
`...blur.kernel`, `...upsample.kernel`) follow rosinality/stylegan2-pytorch `model.py` (MIT licence);
only the names and conventions are taken from there, the code is ours.

Conventions kept from that layout: conv weights are stored (1, O, I, k, k) and scaled by 1/sqrt(fan_in)
before modulation; the stored blur kernels already include the upsampling gain (they sum to 4); noise
is `noise.weight * noises.noise_{i}` (the port's `randomize_noise=False`, so pictures are reproducible).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from core.errors import UnsafeModelFile
from core.models.stylegan.ops import EqualLinear, lrelu, modulated_conv2d, normalize_2nd_moment, upsample2d
from core.models.stylegan.torch_side import load_strict, sides_of_skip_generator

_STYLE = re.compile(r"^style\.(\d+)\.weight$")
_RGBS = re.compile(r"^to_rgbs\.(\d+)\.conv\.weight$")


class _PixelNorm(nn.Module):
    """`style.0`: unit second moment per row, (N, C) -> (N, C); no weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_2nd_moment(x)


class _Param(nn.Module):
    """Holds one tensor under `name` (the port's `noise.weight` (1,), `activate.bias` (C,))."""

    def __init__(self, name: str, value: torch.Tensor) -> None:
        super().__init__()
        self.register_parameter(name, nn.Parameter(value))


class _ModConv(nn.Module):
    """Keys weight (1, O, I, k, k), modulation.*, and blur.kernel when upsampling. (N, I, H, W) -> (N, O, H', W')."""

    def __init__(self, c_in: int, c_out: int, k: int, w_dim: int, demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.demodulate, self.up = demodulate, up
        self.weight = nn.Parameter(torch.randn(1, c_out, c_in, k, k))
        self.modulation = EqualLinear(w_dim, c_in, bias_init=1.0)
        if up:
            self.blur = nn.Module()
            self.blur.register_buffer("kernel", torch.full((4, 4), 4 / 16))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        weight = self.weight[0] * (1 / math.sqrt(self.weight[0, 0].numel()))  # (O, I, k, k), fan-in gain
        fir = self.blur.kernel if self.up else None
        return modulated_conv2d(x, weight, self.modulation(w), demodulate=self.demodulate, up=self.up,
                                fir=fir, fir_gain=1.0)


class _StyledConv(nn.Module):
    """Modulated 3x3 conv, noise, bias, leaky ReLU: keys conv.*, noise.weight, activate.bias."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, up: bool = False) -> None:
        super().__init__()
        self.conv = _ModConv(c_in, c_out, 3, w_dim, up=up)
        self.noise = _Param("weight", torch.zeros(1))
        self.activate = _Param("bias", torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """`noise` (1, 1, H', W'), the stored buffer for this layer."""
        x = self.conv(x, w) + self.noise.weight * noise
        return lrelu(x, self.activate.bias)


class _ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, + bias (1, 3, 1, 1), + the upsampled RGB so far."""

    def __init__(self, c_in: int, w_dim: int, up: bool) -> None:
        super().__init__()
        self.conv = _ModConv(c_in, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if up:
            self.upsample = nn.Module()
            self.upsample.register_buffer("kernel", torch.full((4, 4), 4 / 16))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is None:
            return out
        return out + upsample2d(skip, self.upsample.kernel, gain=1.0)  # (N, 3, 2H, 2W); the kernel sums to 4


class PortGenerator(nn.Module):
    """StyleGAN2 generator with the port's key names; follows the torch-side protocol of `torch_side`.

    Args:
        w_dim: style (and latent) length, the port's `style_dim`.
        n_mlp: mapping layers (8).
        channels: feature channels per side, from the const's side up to the resolution.
        lr_mlp: mapping learning-rate multiplier (0.01, the port's default).
    """

    def __init__(self, w_dim: int, n_mlp: int, channels: dict[int, int], lr_mlp: float = 0.01) -> None:
        super().__init__()
        sides = sorted(channels)
        self.z_dim = self.w_dim = w_dim
        self.img_resolution = sides[-1]
        self.layer_sides = sides_of_skip_generator(sides[0], len(sides) - 1)
        self.w_avg: torch.Tensor | None = None  # the checkpoint's `latent_avg`, set by the loader
        self.style = nn.Sequential(_PixelNorm(), *[EqualLinear(w_dim, w_dim, lr_mul=lr_mlp, act=True)
                                                   for _ in range(n_mlp)])
        self.input = _Param("input", torch.randn(1, channels[sides[0]], sides[0], sides[0]))
        self.conv1 = _StyledConv(channels[sides[0]], channels[sides[0]], w_dim)
        self.to_rgb1 = _ToRGB(channels[sides[0]], w_dim, up=False)
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        for before, side in zip(sides, sides[1:]):
            self.convs.append(_StyledConv(channels[before], channels[side], w_dim, up=True))
            self.convs.append(_StyledConv(channels[side], channels[side], w_dim))
            self.to_rgbs.append(_ToRGB(channels[side], w_dim, up=True))
        for i in range(2 * len(sides) - 1):  # noise i feeds conv i: conv1, then convs 0, 1, 2, ...
            side = sides[(i + 1) // 2]
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, side, side))

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """`z` (N, w_dim) -> untruncated w (N, w_dim)."""
        return self.style(z)

    def draw(self, ws: torch.Tensor) -> torch.Tensor:
        """`ws` (N, len(layer_sides), w_dim) -> RGB (N, 3, R, R), roughly in [-1, 1]."""
        noise = [getattr(self.noises, f"noise_{i}") for i in range(2 * len(self.to_rgbs) + 1)]
        x = self.input.input.expand(ws.shape[0], -1, -1, -1)  # (N, C, 4, 4)
        x = self.conv1(x, ws[:, 0], noise[0])
        img = self.to_rgb1(x, ws[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs):  # block k reads ws[2k+1 : 2k+4]
            x = self.convs[2 * k](x, ws[:, 2 * k + 1], noise[2 * k + 1])
            x = self.convs[2 * k + 1](x, ws[:, 2 * k + 2], noise[2 * k + 2])
            img = to_rgb(x, ws[:, 2 * k + 3], img)
        return img

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], latent_avg: torch.Tensor | None = None) -> PortGenerator:
        """Build from the shapes of a `g_ema` state dict and load it strictly.

        Args:
            state: the generator's keys (no `g_ema.` prefix).
            latent_avg: the checkpoint's mean style (w_dim,) or (1, w_dim), or None.

        Raises:
            UnsafeModelFile: a missing, extra or misshapen key, named in the message.
        """
        n_mlp = len([k for k in state if _STYLE.match(k)])
        for key in ["style.1.weight", "input.input", "conv1.conv.weight"]:
            if key not in state:
                raise UnsafeModelFile(f"lacks the key {key}")
        w_dim, const = state["style.1.weight"].shape[0], state["input.input"]
        if const.ndim != 4 or const.shape[2] != const.shape[3]:
            raise UnsafeModelFile(f"has input.input of shape {tuple(const.shape)}, expected (1, C, S, S)")
        side, channels = const.shape[-1], {const.shape[-1]: const.shape[1]}
        for k in range(len([key for key in state if _RGBS.match(key)])):
            side *= 2
            key = f"to_rgbs.{k}.conv.weight"
            if key not in state or state[key].ndim != 5:
                raise UnsafeModelFile(f"lacks the key {key}")
            channels[side] = state[key].shape[2]
        net = cls(w_dim, n_mlp, channels)
        load_strict(net, state)
        if latent_avg is not None:
            if latent_avg.numel() != w_dim:
                raise UnsafeModelFile(f"has latent_avg of shape {tuple(latent_avg.shape)}, expected ({w_dim},)")
            net.w_avg = latent_avg.detach().float().reshape(w_dim).clone()
        return net
