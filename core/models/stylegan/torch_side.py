"""The torch side of the StyleGAN2/StyleGAN3 generators: the module protocol they share, strict loading,
and the numpy adapter `TorchStyleGenerator` that the faces generator sees.
"""

from __future__ import annotations

import torch
from torch import nn

from core.errors import UnsafeModelFile


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
