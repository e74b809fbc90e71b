"""StyleGAN2 generator in NVIDIA's PyTorch layout (stylegan2-ada-pytorch / stylegan3, `G_ema.state_dict()`).

Maths: Karras et al. 2020, arXiv:1912.04958 (StyleGAN2, "skip" generator: each block doubles the side
with a modulated transposed conv and FIR filter, and adds its RGB to the upsampled RGB of the blocks
before). Key names (`mapping.fc{i}`, `synthesis.b{res}.conv0/conv1/torgb`, `noise_const`,
`resample_filter`, ...) follow NVlabs/stylegan2-ada-pytorch `training/networks.py` (NVIDIA Source Code
Licence, non-commercial); only the names and conventions are taken from there, the code is ours.

Conventions kept from that layout: the conv weights are demodulated without a fan-in gain, the ToRGB
styles carry 1/sqrt(fan_in), noise is `noise_const * noise_strength` ("const" noise mode, so pictures
are reproducible), `resample_filter` is stored normalized to sum 1 and used with gain 4 when upsampling.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from core.errors import UnsafeModelFile
from core.models.stylegan.nv_mapping import MappingNetwork
from core.models.stylegan.ops import EqualLinear, lrelu, modulated_conv2d, upsample2d
from core.models.stylegan.torch_side import load_strict, sides_of_skip_generator

_BLOCK = re.compile(r"^synthesis\.b(\d+)\.")


class _Layer(nn.Module):
    """Modulated 3x3 conv (+ noise, bias, leaky ReLU): keys weight, bias, affine.*, noise_const,
    noise_strength, resample_filter. `x` (N, I, H, W), `w` (N, w_dim) -> (N, O, H*up, W*up)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, side: int, up: bool, noise: bool,
                 conv_clamp: float | None) -> None:
        super().__init__()
        self.up, self.use_noise, self.conv_clamp = up, noise, conv_clamp
        self.register_buffer("resample_filter", torch.full((4, 4), 1 / 16))
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        if noise:
            self.register_buffer("noise_const", torch.randn(side, side))
            self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, fir=self.resample_filter, fir_gain=4.0)
        if self.use_noise:
            x = x + self.noise_const * self.noise_strength  # (N, O, H, W) + (H, W)
        return lrelu(x, self.bias, self.conv_clamp)


class _ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation: keys weight, bias, affine.*. -> (N, 3, H, W)."""

    def __init__(self, c_in: int, w_dim: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * (1 / math.sqrt(self.weight[0].numel()))  # fan-in gain on the styles
        x = modulated_conv2d(x, self.weight, styles, demodulate=False) + self.bias.reshape(1, -1, 1, 1)
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class _Block(nn.Module):
    """One resolution: `const` (first block) or an upsampling `conv0`, then `conv1`, then `torgb`."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, side: int, noise: bool, conv_clamp: float | None) -> None:
        super().__init__()
        self.first = c_in == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(c_out, side, side))
        else:
            self.conv0 = _Layer(c_in, c_out, w_dim, side, True, noise, conv_clamp)
        self.conv1 = _Layer(c_out, c_out, w_dim, side, False, noise, conv_clamp)
        self.torgb = _ToRGB(c_out, w_dim, conv_clamp)
        self.register_buffer("resample_filter", torch.full((4, 4), 1 / 16))

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor):
        """`ws` (N, 2 or 3, w_dim): the styles of this block's convs and its torgb."""
        if self.first:
            x = self.conv1(self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1), ws[:, 0])  # (N, C, 4, 4)
        else:
            x = self.conv1(self.conv0(x, ws[:, 0]), ws[:, 1])  # (N, C, 2H, 2W)
        y = self.torgb(x, ws[:, -1])
        return x, (y if img is None else upsample2d(img, self.resample_filter) + y)


class NVGenerator(nn.Module):
    """StyleGAN2 "skip" generator with NVIDIA's key names; follows the torch-side protocol of `torch_side`.

    Built by `from_state_dict`; `channels` maps each side (4, 8, ..., resolution) to its channel count.
    """

    def __init__(self, z_dim: int, w_dim: int, mapping_layers: int, channels: dict[int, int],
                 noise: bool = True, conv_clamp: float | None = None, mapping_hidden: int | None = None) -> None:
        super().__init__()
        sides = sorted(channels)
        self.z_dim, self.w_dim, self.img_resolution = z_dim, w_dim, sides[-1]
        self.layer_sides = sides_of_skip_generator(sides[0], len(sides) - 1)
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, 0.01, hidden=mapping_hidden)
        self.synthesis = nn.Module()
        for i, side in enumerate(sides):
            block = _Block(channels[sides[i - 1]] if i else 0, channels[side], w_dim, side, noise, conv_clamp)
            self.synthesis.add_module(f"b{side}", block)
        self._sides = sides

    @property
    def w_avg(self) -> torch.Tensor | None:
        """The file's `mapping.w_avg` (w_dim,), or None when it had none."""
        return self.mapping.w_avg if getattr(self.mapping, "has_w_avg", True) else None

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """`z` (N, z_dim) -> untruncated w (N, w_dim)."""
        return self.mapping(z)

    def draw(self, ws: torch.Tensor) -> torch.Tensor:
        """`ws` (N, len(layer_sides), w_dim) -> RGB (N, 3, R, R), roughly in [-1, 1]."""
        x = img = None
        for i, side in enumerate(self._sides):
            first = 2 * i - 1 if i else 0  # block i reads ws[2i-1 : 2i+2] (block 0: ws[0:2])
            x, img = getattr(self.synthesis, f"b{side}")(x, img, ws[:, first:2 * i + 2])
        return img

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> NVGenerator:
        """Build from the shapes in a `G_ema.state_dict()` (prefix already stripped) and load strictly.

        Raises:
            UnsafeModelFile: a conditional net, a "resnet"/"orig" architecture, or a missing, extra
                or misshapen key (named in the message; the loader adds the file's name).
        """
        if any(".skip.weight" in k for k in state):
            raise UnsafeModelFile("is a StyleGAN2 generator of the 'resnet' architecture; only the default "
                                  "'skip' architecture is supported")
        sides = sorted({int(m.group(1)) for k in state if (m := _BLOCK.match(k))})
        if not sides or f"synthesis.b{sides[0]}.const" not in state:
            raise UnsafeModelFile(f"lacks the key synthesis.b{sides[0] if sides else 4}.const")
        if any(f"synthesis.b{s}.torgb.weight" not in state for s in sides[:-1]):
            raise UnsafeModelFile("is a StyleGAN2 generator of the 'orig' architecture (no torgb in every "
                                  "block); only the default 'skip' architecture is supported")
        bad = [s for s in sides if s != sides[0] * 2 ** sides.index(s)]
        if bad:
            raise UnsafeModelFile(f"has a block synthesis.b{bad[0]} that is not a doubling of the one before")
        mapping = MappingNetwork.from_state_dict(state)
        channels = {s: state[f"synthesis.b{s}.conv1.weight"].shape[0] for s in sides
                    if f"synthesis.b{s}.conv1.weight" in state}
        if len(channels) != len(sides):
            missing = next(s for s in sides if s not in channels)
            raise UnsafeModelFile(f"lacks the key synthesis.b{missing}.conv1.weight")
        noise = f"synthesis.b{sides[0]}.conv1.noise_const" in state
        net = cls(mapping.z_dim, mapping.w_dim, mapping.num_layers, channels, noise,
                  mapping_hidden=mapping.fc0.weight.shape[0])
        net.mapping = mapping
        load_strict(net.synthesis, {k[10:]: v for k, v in state.items() if k.startswith("synthesis.")},
                    "synthesis.")
        rest = sorted(k for k in state if not k.startswith(("synthesis.", "mapping.")))
        if rest:
            raise UnsafeModelFile(f"has an unexpected key {rest[0]}")
        return net
