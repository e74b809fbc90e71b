"""What every style-based face generator offers the faces generator: the interface and the layer groups.

A style-based generator (StyleGAN, Karras et al. 2019, arXiv:1812.04948; StyleGAN2, Karras et al.
2020, arXiv:1912.04958; StyleGAN3, Karras et al. 2021, arXiv:2106.12423; MobileStyleGAN, Belousov
2021, arXiv:2104.04767) has two parts:

- the *mapping* network turns a latent z ~ N(0, I) of `z_dim` numbers into a style w of `w_dim`;
- the *synthesis* network draws the picture from one style per layer, `ws` of shape
  (N, num_layers, w_dim). Giving every layer the same w draws the face of that w; giving the coarse
  layers the w of one seed and the others the w of another is *style mixing*.

Implementations: `core.models.mobilestylegan` (OpenVINO IR, the default), and the PyTorch
StyleGAN2/StyleGAN3 nets for files people bring (`core.models.stylegan`). The faces generator
(`core.generators.faces`) only talks to this interface, with numpy arrays, so an OpenVINO net and a
torch net on a GPU are used the same way. Importing this module loads no torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

GROUPS = ("coarse", "middle", "fine")
"""Style-mixing layer groups, as in StyleGAN (Karras et al. 2019, section 3.1 and Figure 3): coarse
layers (4-8 px in StyleGAN) set pose, face shape and hair style; middle ones (16-32 px) facial
features and expression; fine ones (64 px and up) colours and micro-structure."""

MEAN_STYLE_SAMPLES = 4096
"""Latents averaged for the mean style of a net whose file stores none (MobileStyleGAN's own
setting, random_face/configs: `n_samples` 4096)."""
MEAN_STYLE_SEED = 0
"""Seed of the numpy generator (`np.random.default_rng`) that draws those latents, so the mean, and
every truncated face, is the same on every run."""


class StyleGenerator(ABC):
    """A style-based generator behind numpy arrays. Subclasses set the attributes and the three methods.

    Attributes:
        z_dim: latent length (512 for every model here).
        w_dim: style length (512).
        resolution: output side in px (square pictures).
        layer_sides: the feature-map side (px) of the first layer that reads each style input, in
            the order of `ws`; `len(layer_sides)` is the number of style inputs.
        wave: how many faces one `synthesis` call should take for the best speed on its device (the
            faces generator calls `on_step` after each wave, so it is also the slice of a fair turn).
        source: one line on where the weights come from and their licence, for the Result.
    """

    z_dim: int = 512
    w_dim: int = 512
    resolution: int
    layer_sides: tuple[int, ...]
    wave: int = 1
    source: str = ""

    @property
    def num_layers(self) -> int:
        """How many style inputs the synthesis network reads (`ws.shape[1]`)."""
        return len(self.layer_sides)

    @abstractmethod
    def mapping(self, z: np.ndarray) -> np.ndarray:
        """Map latents `z` float32 (N, z_dim), z ~ N(0, I), to styles float32 (N, w_dim), untruncated."""

    @abstractmethod
    def mean_style(self) -> np.ndarray:
        """The mean style float32 (w_dim,), the centre that truncation pulls toward. Computed once
        (stored in the file, or averaged over many mapped latents with a fixed seed) and cached."""

    @abstractmethod
    def synthesis(self, ws: np.ndarray) -> np.ndarray:
        """Draw pictures from per-layer styles `ws` float32 (N, num_layers, w_dim).

        Returns float32 (N, 3, resolution, resolution), RGB, roughly in [-1, 1] (callers clip).
        Deterministic: the same ws give the same pixels (noise inputs, where the net has them, are
        the fixed buffers stored with the weights), whatever N is.
        """


def layer_groups(layer_sides: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """Split style inputs into the coarse, middle and fine groups of style mixing.

    Rule: coarse = the layers at the two lowest feature sides, middle = the next two sides, fine =
    the rest. For StyleGAN2 at 1024 px (sides 4, 4, 8, 8, 16, ...) that is the paper's split, layers
    0-3 / 4-7 / 8-17; it carries over to nets whose sides start elsewhere (StyleGAN3's start at 16).

    Args:
        layer_sides: as `StyleGenerator.layer_sides`, non-decreasing, at least one entry.

    Returns:
        {"coarse": (first, last), "middle": (first, last), "fine": (first, last)}, inclusive layer
        indices; a group a small net lacks is an empty range (first > last) at the end.
    """
    distinct = sorted(set(layer_sides))
    bounds = {"coarse": distinct[:2], "middle": distinct[2:4], "fine": distinct[4:]}
    groups: dict[str, tuple[int, int]] = {}
    for group, sides in bounds.items():
        members = [i for i, side in enumerate(layer_sides) if side in sides]
        groups[group] = (members[0], members[-1]) if members else (len(layer_sides), len(layer_sides) - 1)
    return groups
