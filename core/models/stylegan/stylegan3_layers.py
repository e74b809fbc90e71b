"""The layers of StyleGAN3's synthesis network in plain PyTorch: Fourier-feature input, modulated
convolution and the filtered leaky ReLU (no custom CUDA kernels).

Maths: Karras et al. 2021, "Alias-Free Generative Adversarial Networks", arXiv:2106.12423 (section 3,
appendices D-F). NVlabs/stylegan3 (NVIDIA Source Code Licence, non-commercial) was read for its
parameter and buffer names and to check the order of operations of its reference path; the code is ours.
The net is assembled, and its hyperparameters derived from a state dict, in `stylegan3.py`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.models.stylegan.ops import EqualLinear, lrelu

CONV_CLAMP = 256.0
"""Every layer clamps its output to [-256, 256] (NVIDIA's `conv_clamp`, the same in every released net)."""
LRELU_UPSAMPLING = 2
"""The leaky ReLU runs at twice the larger of a layer's two sampling rates (arXiv:2106.12423, section 3.2),
so a layer downsamples by exactly 2 after it; NVIDIA's training code has no other setting."""


def modulated_conv(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool,
                   input_gain: torch.Tensor) -> torch.Tensor:
    """Modulated convolution with "full" padding (k - 1): the output grows by k - 1 px per side pair.

    With `demodulate`, `weight` is first scaled to unit mean square per output channel and each
    sample's styles to unit mean square (NVIDIA scales the styles by the mean over the whole batch;
    the demodulation cancels that scale except for its 1e-8 term, and per sample keeps a face
    independent of its batch), then w'[n, o] = weight[o] * styles[n] / sqrt(sum(w'[n, o]^2) + 1e-8)
    (arXiv:1912.04958, equations 1-3). Finally every weight is multiplied by `input_gain`.

    Args:
        x: float32 (N, I, H, W).
        weight: (O, I, k, k).
        styles: (N, I).
        demodulate: False for the ToRGB layer.
        input_gain: scalar tensor, 1/sqrt of the layer's stored input magnitude (`magnitude_ema`).

    Returns:
        float32 (N, O, H + k - 1, W + k - 1).
    """
    n, i, h, w = x.shape
    o, _, k, _ = weight.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    wts = weight.unsqueeze(0) * styles.reshape(n, 1, i, 1, 1)  # (N, O, I, k, k)
    if demodulate:
        wts = wts * (wts.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    wts = wts * input_gain
    x = x.reshape(1, n * i, h, w)  # (1, N*I, H, W): the batch becomes conv groups
    x = F.conv2d(x, wts.reshape(n * o, i, k, k), padding=k - 1, groups=n)  # (1, N*O, H+k-1, W+k-1)
    return x.reshape(n, o, x.shape[2], x.shape[3])  # (N, O, H', W')


def _depthwise(f: torch.Tensor, c: int, axis: str) -> torch.Tensor:
    """Filter `f` (k,) or (k, k) as a depthwise conv weight (C, 1, kh, kw); a 1-D one along `axis` "h" or "w"."""
    if f.ndim == 2:
        return f.reshape(1, 1, *f.shape).repeat(c, 1, 1, 1)
    return f.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1) if axis == "h" else f.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1)


def upsample(x: torch.Tensor, f: torch.Tensor, up: int, padding: tuple[int, int]) -> torch.Tensor:
    """Zero insertion (up-1 zeros after each pixel), pad by `padding` (negative crops), "valid" true
    convolution with `f` times up^2: one strided transposed conv per axis, which skips the zeros.

    `x` float32 (N, C, H, W); `f` (k,) or (k, k) -> (N, C, H*up + before + after - k + 1, same for W).
    """
    c, k = x.shape[1], f.shape[-1]
    if f.ndim == 1:  # the transposed conv is the true convolution of the zero-inserted signal, unflipped
        x = F.conv_transpose2d(x, _depthwise(f * up, c, "w"), stride=(1, up), groups=c)
        x = F.conv_transpose2d(x, _depthwise(f * up, c, "h"), stride=(up, 1), groups=c)
    else:
        x = F.conv_transpose2d(x, _depthwise(f * up ** 2, c, "h"), stride=up, groups=c)
    # the transposed conv covers (H-1)*up + k samples starting k-1 before the padded image's first output
    before, after = padding[0] - k + 1, padding[1] - k + up
    return F.pad(x, [before, after, before, after])


def downsample(x: torch.Tensor, f: torch.Tensor, down: int) -> torch.Tensor:
    """"Valid" true convolution with `f` (k,) or (k, k), keeping every `down`-th pixel (a strided conv).

    `x` float32 (N, C, H, W) -> (N, C, (H - k) // down + 1, same for W).
    """
    c = x.shape[1]
    f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv2d(x, _depthwise(f, c, "h"), stride=down, groups=c)
    x = F.conv2d(x, _depthwise(f, c, "w"), stride=(1, down), groups=c)
    return F.conv2d(x, _depthwise(f, c, "h"), stride=(down, 1), groups=c)


def filtered_lrelu(x: torch.Tensor, bias: torch.Tensor, up_filter: torch.Tensor | None,
                   down_filter: torch.Tensor | None, *, up: int, down: int, padding: tuple[int, int],
                   linear: bool = False) -> torch.Tensor:
    """Bias, upsample, leaky ReLU, clamp, downsample: the alias-free non-linearity (arXiv:2106.12423, 3.2).

    Steps: add `bias` per channel; insert up-1 zeros after every pixel, pad by `padding` (negative
    crops) and convolve with `up_filter` times up^2; leaky ReLU (0.2) times sqrt(2), or nothing if
    `linear`; clamp to ±CONV_CLAMP; convolve with `down_filter` and keep every `down`-th pixel. Each
    filter convolution is "valid" (no padding of its own).

    Args:
        x: float32 (N, C, H, W). bias: (C,).
        up_filter, down_filter: (k,) separable or (k, k) (a radial down filter), or None for the
            identity (only with up == down == 1, the ToRGB layer).
        padding: (before, after) pixels on both axes, relative to the upsampled image.
        linear: the ToRGB layer: no activation, only the clamp.

    Returns:
        float32 (N, C, H', W') with H' = (H*up + before + after - (ku-1) - (kd-1) + down-1) // down.
    """
    x = x + bias.reshape(1, -1, 1, 1)
    if up_filter is None:
        x = F.pad(x, [padding[0], padding[1], padding[0], padding[1]])
    else:
        x = upsample(x, up_filter, up, padding)
    x = x.clamp(-CONV_CLAMP, CONV_CLAMP) if linear else lrelu(x, clamp=CONV_CLAMP)
    return x if down_filter is None else downsample(x, down_filter, down)


class FourierInput(nn.Module):
    """The first "layer": `channels` sinusoids at fixed frequencies, turned and shifted by the style.

    Stored: `weight` (C, C) channel mix, `affine` (4, w_dim) style -> (cos, sin, tx, ty), buffers
    `transform` (3, 3) user transform, `freqs` (C, 2) cycles per image unit, `phases` (C,) cycles.
    Feature c at image point (x, y) is amp_c * sin(2 pi (f'_c . (x, y) + phi'_c)) where f' and phi'
    are the frequencies and phases after the (inverse) rotation, translation and user transform, and
    amp_c fades out frequencies above `bandwidth` (arXiv:2106.12423, section 3.1 and appendix D).
    Pixel j's centre sits at (j + 0.5 - size/2) / sampling_rate.
    """

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.size, self.sampling_rate, self.bandwidth = size, sampling_rate, bandwidth
        self.weight = nn.Parameter(torch.zeros(channels, channels))
        self.affine = EqualLinear(w_dim, 4)
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", torch.zeros(channels, 2))
        self.register_buffer("phases", torch.zeros(channels))

    def features(self, w: torch.Tensor) -> torch.Tensor:
        """The sinusoids before the channel mix: `w` (N, w_dim) -> float32 (N, C, size, size)."""
        t = self.affine(w)  # (N, 4)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(dim=1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        rotate = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
        shift = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(-1, 3, 3)
        m = rotate @ shift @ self.transform  # (N, 3, 3): rotate the picture, then shift, then the user's
        phases = self.phases + (self.freqs @ m[:, :2, 2:]).squeeze(2)  # (N, C)
        freqs = self.freqs @ m[:, :2, :2]  # (N, C, 2)
        amp = 1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        amp = amp.clamp(0, 1)  # (N, C)
        pos = (torch.arange(self.size, device=w.device, dtype=w.dtype) + 0.5 - self.size / 2) / self.sampling_rate
        cycles = (freqs[:, :, 0, None, None] * pos.reshape(1, 1, 1, -1)  # x along the width
                  + freqs[:, :, 1, None, None] * pos.reshape(1, 1, -1, 1)  # y along the height
                  + phases[:, :, None, None])  # (N, C, size, size)
        return torch.sin(cycles * (2 * math.pi)) * amp[:, :, None, None]

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """`w` (N, w_dim) -> float32 (N, C, size, size)."""
        mix = self.weight / math.sqrt(self.weight.shape[0])
        return torch.einsum("oc,nchw->nohw", mix, self.features(w))


class SynthesisLayer(nn.Module):
    """One StyleGAN3 layer: style affine, modulated conv, filtered leaky ReLU (or the linear ToRGB).

    Stored: `affine` (I, w_dim), `weight` (O, I, k, k), `bias` (O,), buffer `magnitude_ema` () and,
    except in ToRGB, buffers `up_filter` and `down_filter` ((taps,) or a radial (taps, taps) down filter).

    Args:
        w_dim, in_channels, out_channels, kernel: the shapes above.
        up_taps, down_taps, down_radial: the filter shapes; (1, 1, False) for ToRGB (no filters).
        up, down: resampling factors of the filtered leaky ReLU (1, 1 for ToRGB).
        padding: (before, after) of the filtered leaky ReLU.
        torgb: the last layer: styles scaled by 1/sqrt(I k^2), no demodulation, no activation.
    """

    def __init__(self, *, w_dim: int, in_channels: int, out_channels: int, kernel: int, up_taps: int,
                 down_taps: int, down_radial: bool, up: int, down: int, padding: tuple[int, int],
                 torgb: bool) -> None:
        super().__init__()
        self.up, self.down, self.padding, self.torgb = up, down, padding, torgb
        self.affine = EqualLinear(w_dim, in_channels)
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        if torgb:  # no filters: plain attributes, not buffers, so the state dict has no such keys
            self.up_filter: torch.Tensor | None = None
            self.down_filter: torch.Tensor | None = None
        else:
            self.register_buffer("up_filter", torch.zeros(up_taps))
            self.register_buffer("down_filter", torch.zeros((down_taps,) * (2 if down_radial else 1)))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """`x` float32 (N, I, in_size, in_size), `w` (N, w_dim) -> float32 (N, O, out_size, out_size)."""
        styles = self.affine(w)  # (N, I)
        if self.torgb:
            styles = styles / math.sqrt(self.weight[0].numel())
        x = modulated_conv(x, self.weight, styles, demodulate=not self.torgb,
                           input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.bias, self.up_filter, self.down_filter, up=self.up, down=self.down,
                              padding=self.padding, linear=self.torgb)
