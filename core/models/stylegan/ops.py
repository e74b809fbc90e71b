"""Layer maths that the StyleGAN2/StyleGAN3 nets share: equalized learning rate, leaky ReLU with gain,
modulated convolution and FIR up/downsampling, in plain PyTorch (no custom CUDA kernels).

Source of the maths: Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"
(arXiv:1912.04958): equalized learning rate (section B of Karras et al. 2018, arXiv:1710.10196), weight
demodulation (section 2.2) and the FIR resampling filters of StyleGAN (arXiv:1812.04948, section 2).
Written here from the papers; the public repositories (rosinality/stylegan2-pytorch, MIT;
NVlabs/stylegan2-ada-pytorch, NVIDIA Source Code Licence) were read only for key names and conventions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
"""Leaky ReLU after every non-linear layer: slope 0.2, output times sqrt(2) so the signal keeps unit
variance (both StyleGAN2 code bases use these values)."""


def lrelu(x: torch.Tensor, bias: torch.Tensor | None = None, clamp: float | None = None) -> torch.Tensor:
    """Add `bias` (C,) along dim 1, leaky ReLU (0.2), times sqrt(2), then clamp to ±`clamp` if given.

    `x`: float32 (N, C, ...) ; returns the same shape.
    """
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))  # (1, C, 1, 1...)
    x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def equal_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 lr_mul: float = 1.0) -> torch.Tensor:
    """Equalized-learning-rate linear layer: y = x @ (weight * lr_mul / sqrt(fan_in)).T + bias * lr_mul.

    Args:
        x: float32 (N, in). weight: stored (out, in). bias: stored (out,) or None.
        lr_mul: learning-rate multiplier the weights were trained with (0.01 in the mapping nets).

    Returns:
        float32 (N, out), before any activation.
    """
    w = weight * (lr_mul / math.sqrt(weight.shape[1]))
    b = None if bias is None else bias * lr_mul
    return F.linear(x, w, b)


class EqualLinear(nn.Module):
    """Equalized-lr linear layer with stored `weight` (out, in) and `bias` (out,), optional leaky ReLU.

    The key names `weight`/`bias` are those of the mapping layers (`mapping.fc{i}`, `style.{i}`) and
    the style affines (`affine`, `modulation`) of both layouts. `bias_init` only sets the fresh value.
    `x` (N, in) -> (N, out).
    """

    def __init__(self, in_features: int, out_features: int, *, lr_mul: float = 1.0, act: bool = False,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.lr_mul = lr_mul
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` float32 (N, in) -> (N, out)."""
        if not self.act:
            return equal_linear(x, self.weight, self.bias, self.lr_mul)
        return lrelu(equal_linear(x, self.weight, None, self.lr_mul), self.bias * self.lr_mul)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of `x` (N, C) to unit mean square (the "pixel norm" of a latent). Returns (N, C)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def upfirdn2d(x: torch.Tensor, fir: torch.Tensor, *, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
              gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with a FIR filter, then keep every `down`-th pixel.

    The filter is applied as a true convolution (flipped), channel by channel; both StyleGAN2 filters
    are symmetric, so this only matters for filters someone else brings.

    Args:
        x: float32 (N, C, H, W).
        fir: (k, k) filter, or (k,) for a separable one applied along both axes.
        up: zero-insertion factor (each pixel is followed by up-1 zeros along each axis).
        pad: (before, after) pixels added on both axes after upsampling; negative values crop.
        gain: overall gain; multiplies a 2-D filter by `gain`, a 1-D one by sqrt(`gain`) per axis.

    Returns:
        float32 (N, C, (H*up + pad0 + pad1 - k + 1) // down, same for W) (rounded up when down > 1).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)  # (N, C, H, 1, W, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])  # (N, C, H, up, W, up)
        x = x.reshape(n, c, h * up, w * up)  # (N, C, H*up, W*up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0):x.shape[2] - max(-p1, 0), max(-p0, 0):x.shape[3] - max(-p1, 0)]
    fir = (fir * gain ** (fir.ndim / 2)).flip(list(range(fir.ndim))).to(x.dtype)
    if fir.ndim == 2:
        x = F.conv2d(x, fir[None, None].repeat(c, 1, 1, 1), groups=c)  # filter (C, 1, k, k)
    else:
        x = F.conv2d(x, fir[None, None, None, :].repeat(c, 1, 1, 1), groups=c)  # along W
        x = F.conv2d(x, fir[None, None, :, None].repeat(c, 1, 1, 1), groups=c)  # along H
    return x[:, :, ::down, ::down] if down > 1 else x


def upsample2d(x: torch.Tensor, fir: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """Double the side of `x` (N, C, H, W) -> (N, C, 2H, 2W) with FIR interpolation (zero insertion, then
    the filter times `gain`; 4 keeps a constant image constant when the filter sums to 1)."""
    k = fir.shape[0]
    return upfirdn2d(x, fir, up=2, pad=((k + 1) // 2, (k - 2) // 2), gain=gain)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True,
                     up: bool = False, fir: torch.Tensor | None = None, fir_gain: float = 4.0,
                     eps: float = 1e-8) -> torch.Tensor:
    """Modulated (and optionally demodulated) convolution, as one grouped conv over the batch.

    w'[n, o, i] = weight[o, i] * styles[n, i]; with `demodulate`, each w'[n, o] is divided by
    sqrt(sum(w'[n, o]^2) + eps) (arXiv:1912.04958, equations 1-3). The caller folds any equalized-lr
    gain into `weight` or `styles` beforehand (the two layouts do it in different places).

    Args:
        x: float32 (N, I, H, W).
        weight: (O, I, k, k), already scaled, k odd.
        styles: (N, I), the per-sample input-channel scales.
        up: stride-2 transposed conv, then the FIR `fir` ((m, m) or (m,)) times `fir_gain`, padded so
            that the output is exactly (2H, 2W); otherwise a "same" conv (padding k // 2).

    Returns:
        float32 (N, O, H, W), or (N, O, 2H, 2W) with `up`.
    """
    n, i, h, w_ = x.shape
    o, _, kh, kw = weight.shape
    wts = weight.unsqueeze(0) * styles.reshape(n, 1, i, 1, 1)  # (N, O, I, k, k)
    if demodulate:
        wts = wts * torch.rsqrt(wts.square().sum(dim=[2, 3, 4], keepdim=True) + eps)
    x = x.reshape(1, n * i, h, w_)  # (1, N*I, H, W): the batch becomes conv groups
    if up:
        if fir is None:
            raise ValueError("modulated_conv2d(up=True) needs a FIR filter")
        wts = wts.transpose(1, 2).reshape(n * i, o, kh, kw)  # (N*I, O, k, k) as conv_transpose wants
        x = F.conv_transpose2d(x, wts, stride=2, groups=n)  # (1, N*O, 2H+k-2, 2W+k-2)
        p = fir.shape[0] - 2 - (kh - 1)
        x = upfirdn2d(x, fir, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=fir_gain)  # (1, N*O, 2H, 2W)
    else:
        x = F.conv2d(x, wts.reshape(n * o, i, kh, kw), padding=kh // 2, groups=n)  # (1, N*O, H, W)
    return x.reshape(n, o, x.shape[2], x.shape[3])  # (N, O, H', W')
