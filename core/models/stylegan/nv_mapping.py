"""The mapping network of NVIDIA's StyleGAN2-ADA / StyleGAN3 layout: z (N, z_dim) -> w (N, w_dim).

Maths: normalize z to unit second moment, then `num_layers` equalized-lr linear layers with leaky ReLU
(0.2, gain sqrt(2)) and a learning-rate multiplier of 0.01 (Karras et al. 2019, arXiv:1812.04948,
section 2 and appendix C; Karras et al. 2020, arXiv:1912.04958). Key names `mapping.fc{i}.weight/bias`
and `mapping.w_avg` follow NVlabs/stylegan2-ada-pytorch and NVlabs/stylegan3 (NVIDIA Source Code
Licence); only the names are taken from there, the code is ours.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from core.errors import UnsafeModelFile
from core.models.stylegan.ops import EqualLinear, normalize_2nd_moment
from core.models.stylegan.torch_side import load_strict

_FC = re.compile(r"^fc(\d+)\.weight$")


class MappingNetwork(nn.Module):
    """z -> w for the NVIDIA layout: submodules `fc0` .. `fc{num_layers-1}` and a buffer `w_avg` (w_dim,).

    Args:
        z_dim: latent length (512 in every released net).
        w_dim: style length (512).
        num_layers: linear layers (8 in StyleGAN2, 2 in StyleGAN3).
        lr_multiplier: the training learning-rate multiplier, folded into the weight and bias gains.
        hidden: width of the hidden layers; None means `w_dim` (NVIDIA's default).
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float = 0.01,
                 hidden: int | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.z_dim, self.w_dim, self.num_layers = z_dim, w_dim, num_layers
        widths = [z_dim] + [hidden or w_dim] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            self.add_module(f"fc{i}", EqualLinear(widths[i], widths[i + 1], lr_mul=lr_multiplier, act=True))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`z` float32 (N, z_dim), z ~ N(0, I) -> untruncated styles float32 (N, w_dim)."""
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], prefix: str = "mapping.",
                        lr_multiplier: float = 0.01) -> MappingNetwork:
        """Build the net from the shapes of `state`'s keys under `prefix` and load them strictly.

        The caller passes only the keys it has not used elsewhere; keys under `prefix` that the net
        does not have (e.g. `mapping.embed.*`) are reported.

        Raises:
            UnsafeModelFile: no `{prefix}fc0.weight`, a conditional net (`embed`, c_dim > 0), a
                missing, extra or misshapen key (the message names the key, without the file name:
                the loader adds it).
        """
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if any(k.startswith("embed.") for k in sub):
            raise UnsafeModelFile(f"is a conditional generator ({prefix}embed.* present, c_dim > 0); "
                                  "only unconditional face generators are supported")
        layers = sorted(int(m.group(1)) for k in sub if (m := _FC.match(k)))
        if not layers or layers != list(range(len(layers))):
            raise UnsafeModelFile(f"has no mapping layers {prefix}fc0.weight, {prefix}fc1.weight, ...")
        first, last = sub["fc0.weight"], sub[f"fc{layers[-1]}.weight"]
        if first.ndim != 2 or last.ndim != 2:
            raise UnsafeModelFile(f"{prefix}fc0.weight should be 2-D, got shape {tuple(first.shape)}")
        net = cls(first.shape[1], last.shape[0], len(layers), lr_multiplier, hidden=first.shape[0])
        if "w_avg" not in sub:  # optional in files saved without it: keep zeros, flag as absent
            sub["w_avg"] = torch.zeros(net.w_dim)
            net.has_w_avg = False
        else:
            net.has_w_avg = True
        load_strict(net, sub, prefix)
        return net

