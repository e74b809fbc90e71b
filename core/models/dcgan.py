"""The DCGAN generator behind `core/generators/faces.py`: a latent vector in, a 64x64 picture out.

Architecture: Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", 2015, arXiv:1511.06434; layer layout as in the
PyTorch DCGAN tutorial (pytorch/tutorials, `beginner_source/dcgan_faces_tutorial.py`, BSD-3-Clause),
written here again so that its state-dict keys (`main.0.weight`, `main.1.running_mean`, ...) load
as they are. Five transposed convolutions grow a (nz, 1, 1) latent to 4, 8, 16, 32, 64 px; batch
norm and ReLU between them, Tanh at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from core.errors import InvalidInput, UnsafeModelFile

WIDTH_MULTIPLIERS = (8, 4, 2, 1)
"""Feature maps of the four hidden layers, in units of ngf (the tutorial's 512, 256, 128, 64 at ngf=64)."""

OUTPUT_SIZE = 64
"""Output side in px, fixed by the five layers: 4 * 2**4."""


@dataclass(frozen=True)
class DCGANConfig:
    """Hyperparameters of the generator; `from_state_dict` reads them from tensor shapes."""

    nz: int = 100  # latent size: the input is z of shape (N, nz, 1, 1), z ~ N(0, I)
    ngf: int = 64  # width of the last hidden layer; earlier ones are 8x, 4x, 2x wider
    channels: int = 3  # output channels: 3 for RGB, 1 for grey


class DCGANGenerator(nn.Module):
    """DCGAN generator: `forward(z)` maps z `(N, nz, 1, 1)` (or `(N, nz)`) to `(N, C, 64, 64)` in [-1, 1]."""

    def __init__(self, config: DCGANConfig = DCGANConfig()) -> None:
        super().__init__()
        for name in ("nz", "ngf", "channels"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"DCGANConfig.{name} must be a positive integer, got {value!r}")
        self.config = config
        widths = [config.nz] + [config.ngf * m for m in WIDTH_MULTIPLIERS]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):
            # the first layer turns 1x1 into 4x4 (stride 1, no padding); the others double the side
            stride, padding = (1, 0) if i == 0 else (2, 1)
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(config.ngf, config.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`z`: float `(N, nz, 1, 1)` or `(N, nz)` on the net's device; returns `(N, C, 64, 64)` in [-1, 1]."""
        nz = self.config.nz
        if z.ndim == 2 and z.shape[1] == nz:
            z = z.reshape(z.shape[0], nz, 1, 1)  # (N, nz) -> (N, C=nz, H=1, W=1)
        if z.ndim != 4 or tuple(z.shape[1:]) != (nz, 1, 1):
            raise InvalidInput(f"z must have shape (N, {nz}, 1, 1) or (N, {nz}), got {tuple(z.shape)}")
        return self.main(z)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "DCGANGenerator":
        """Build the generator that `state` fits, reading nz, ngf and channels from tensor shapes.

        Args:
            state: a tutorial-layout DCGAN generator state dict (`main.0.weight` of shape
                (nz, ngf*8, 4, 4), ..., `main.12.weight` of shape (ngf, C, 4, 4)).

        Returns:
            The generator with those weights, on the CPU, in training mode (call `.eval()`).

        Raises:
            UnsafeModelFile: a key is missing or unexpected, or a tensor has the wrong shape or is not
                a tensor; the message names them.
        """
        n_convs = len(WIDTH_MULTIPLIERS) + 1
        first, last = "main.0.weight", f"main.{3 * (n_convs - 1)}.weight"
        for key in (first, last):
            tensor = state.get(key)
            if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
                raise UnsafeModelFile(f"not a DCGAN generator: {key} is missing or not a 4-d tensor")
        nz, width = state[first].shape[:2]
        if width % WIDTH_MULTIPLIERS[0]:
            raise UnsafeModelFile(f"not a DCGAN generator: {first} has {width} output maps, not a multiple of 8")
        config = DCGANConfig(nz=int(nz), ngf=int(width) // WIDTH_MULTIPLIERS[0], channels=int(state[last].shape[1]))
        net = cls(config)
        expected = net.state_dict()
        problems = [f"missing {k}" for k in expected if k not in state]
        problems += [f"unexpected {k}" for k in state if k not in expected]
        problems += [
            f"{k} has shape {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}, "
            f"expected {tuple(expected[k].shape)}"
            for k, v in state.items()
            if k in expected and (not isinstance(v, torch.Tensor) or v.shape != expected[k].shape)
        ]
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise UnsafeModelFile(f"weights do not fit a DCGAN generator with {config}: {shown}")
        net.load_state_dict(dict(state), strict=True)
        return net
