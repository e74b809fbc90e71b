"""The torch side of the StyleGAN2/StyleGAN3 generators: the module protocol they share, strict loading,
and the numpy adapter `TorchStyleGenerator` that the faces generator sees.

Torch-side protocol (`StyleModule`), met by `stylegan2_port.PortGenerator`, `stylegan2_nv.NVGenerator`
and the StyleGAN3 module: an `nn.Module` with

- `z_dim`, `w_dim`, `img_resolution` (int) and `layer_sides` (tuple of int, one per style input: the
  feature side of the first layer that reads it, as `StyleGenerator.layer_sides`);
- `w_avg`: the file's mean style, float32 (w_dim,), or None when the file stores none;
- `map(z)`: float32 (N, z_dim) -> untruncated styles (N, w_dim);
- `draw(ws)`: float32 (N, len(layer_sides), w_dim) -> RGB (N, 3, R, R) roughly in [-1, 1],
  deterministic (stored noise buffers, no random noise) and the same for a face whatever N is.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from core.errors import InvalidInput, UnsafeModelFile
from core.models.style_generator import MEAN_STYLE_SAMPLES, MEAN_STYLE_SEED, StyleGenerator

WAVES = {"cuda": 8, "mps": 4, "cpu": 1}
"""Faces per synthesis call by device type: enough to fill a GPU, one at a time on a CPU."""


@runtime_checkable
class StyleModule(Protocol):
    """What `TorchStyleGenerator` needs from a torch net (see the module docstring)."""

    z_dim: int
    w_dim: int
    img_resolution: int
    layer_sides: tuple[int, ...]
    w_avg: torch.Tensor | None

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z_dim) -> (N, w_dim)."""

    def draw(self, ws: torch.Tensor) -> torch.Tensor:
        """(N, L, w_dim) -> (N, 3, R, R)."""


def sides_of_skip_generator(start: int, doublings: int) -> tuple[int, ...]:
    """Layer sides of a StyleGAN2 generator whose const is `start` px and that doubles `doublings` times:
    (start, start, 2*start, 2*start, ..., R, R), 2 + 2*doublings entries (18 for 4 -> 1024 px)."""
    return tuple(start * 2 ** (i // 2) for i in range(2 + 2 * doublings))


class TorchStyleGenerator(StyleGenerator):
    """A `StyleModule` behind numpy arrays, float32 on `device`, run under `torch.inference_mode()`.

    Args:
        net: the torch net (moved to `device`, put in eval mode, cast to float32).
        source: one line on where the weights came from, for the Result.
        device: None for `core.models.devices.default_device()`.
    """

    def __init__(self, net: nn.Module, source: str = "", device: torch.device | str | None = None) -> None:
        if device is None:
            from core.models.devices import default_device
            device = default_device()
        self.device = torch.device(device)
        self.net = net.to(device=self.device, dtype=torch.float32).eval()
        self.z_dim, self.w_dim = int(net.z_dim), int(net.w_dim)
        self.resolution = int(net.img_resolution)
        self.layer_sides = tuple(int(s) for s in net.layer_sides)
        self.wave = WAVES.get(self.device.type, 1)
        self.source = source
        self._mean: np.ndarray | None = None

    def mapping(self, z: np.ndarray) -> np.ndarray:
        """`z` float32 (N, z_dim) -> styles float32 (N, w_dim), untruncated; each row alone (batch 1),
        as matrix kernels block by batch size and would move a face's style by a rounding error.
        Raises InvalidInput on a bad shape."""
        z = _check_array("z", z, (self.z_dim,))
        return np.concatenate([self._map(row[None]) for row in z])

    def _map(self, z: np.ndarray) -> np.ndarray:
        """The mapping network on a batch `z` float32 (N, z_dim): (N, w_dim)."""
        with torch.inference_mode():
            w = self.net.map(torch.from_numpy(z).to(self.device))
        return w.float().cpu().numpy()

    def mean_style(self) -> np.ndarray:
        """The file's w_avg (w_dim,), else the mean of MEAN_STYLE_SAMPLES styles of seeded latents; cached."""
        if self._mean is None:
            w_avg = getattr(self.net, "w_avg", None)
            if w_avg is not None:
                self._mean = w_avg.detach().float().cpu().numpy().reshape(self.w_dim).copy()
            else:
                z = np.random.default_rng(MEAN_STYLE_SEED).standard_normal((MEAN_STYLE_SAMPLES, self.z_dim),
                                                                           dtype=np.float32)
                total = np.zeros(self.w_dim, dtype=np.float64)
                for start in range(0, len(z), 512):  # chunks keep peak memory small
                    total += self._map(z[start:start + 512]).astype(np.float64).sum(axis=0)
                self._mean = (total / len(z)).astype(np.float32)
        return self._mean.copy()

    def synthesis(self, ws: np.ndarray) -> np.ndarray:
        """`ws` float32 (N, num_layers, w_dim) -> RGB float32 (N, 3, R, R), roughly [-1, 1]. Raises InvalidInput."""
        ws = _check_array("ws", ws, (self.num_layers, self.w_dim))
        with torch.inference_mode():
            img = self.net.draw(torch.from_numpy(ws).to(self.device))
        return img.float().cpu().numpy()


def _check_array(name: str, a: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
    """`a` as a C-contiguous float32 array of shape (N, *tail), N >= 1, all finite, else InvalidInput."""
    a = np.asarray(a)
    if a.ndim != 1 + len(tail) or tuple(a.shape[1:]) != tail or a.shape[0] < 1:
        raise InvalidInput(f"{name} must have shape (N, {', '.join(map(str, tail))}), got {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InvalidInput(f"{name} must be finite numbers")
    return a


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], prefix: str = "") -> None:
    """Copy `state` into `net`, every key present with its exact shape, nothing left over.

    Raises:
        UnsafeModelFile: naming the first missing, unexpected or misshapen key (with `prefix`).
    """
    own = net.state_dict()
    for key, value in own.items():
        if key not in state:
            raise UnsafeModelFile(f"lacks the key {prefix}{key} (shape {tuple(value.shape)})")
        if tuple(state[key].shape) != tuple(value.shape):
            raise UnsafeModelFile(f"has {prefix}{key} of shape {tuple(state[key].shape)}, "
                                  f"expected {tuple(value.shape)}")
    extra = sorted(set(state) - set(own))
    if extra:
        raise UnsafeModelFile(f"has an unexpected key {prefix}{extra[0]}" +
                              (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
