"""Drawing faces from codes: the two kinds of face model behind one interface, and the finish of each face.

`core.generators.faces` checks the user's settings and plans the codes (one latent or style per
face); this module turns codes into finished pictures: the net's own drawing, then the optional x4
upscale, face restoration and resize to the requested size, reporting each face to on_step.

- `DCGANFaces`: the small DCGAN (core.models.dcgan); its code is a latent z, and truncation scales z.
- `StyleFaces`: any `core.models.style_generator.StyleGenerator` (MobileStyleGAN on OpenVINO, the
  PyTorch StyleGAN2/3 files people bring); its code is one style w per layer, so styles mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from core.errors import InvalidInput, ModelError
from core.generators import enlarge
from core.generators.progress import Progress, freed_on_failure
from core.generators.restoration import Restorer
from core.imaging.io import to_pil
from core.models import zerogpu
from core.models.output_checks import bad_values, flat, redo_in_float32, to_float32
from core.models.style_generator import StyleGenerator, layer_groups

FACES_PER_CALL_DCGAN = 1
"""CPU convolution kernels pick their blocking by batch size, which moved single DCGAN pixels by one
8-bit level, so each face is drawn on its own (a 64-px face takes about a millisecond)."""


@dataclass
class Finish:
    """What happens to each drawn face, in order: x4 upscale, face restoration, resize to `size`.

    Attributes:
        upscale: enlarge x4 with the default upscaler (core.generators.enlarge.x4), tile by tile.
        restore: the face restorer (a no-op without a model); it redraws the face at 512 px.
        size: the output side in px, or None for whatever the steps before make.
    """

    upscale: bool
    restore: Restorer
    size: int | None
    warnings: list[str] = field(default_factory=list)

    def tiles(self, native: int) -> int:
        """Upscale tiles per face (0 without upscale)."""
        return enlarge.x4_tiles((native, native)) if self.upscale else 0

    def apply(self, image: Image.Image, progress: Progress) -> Image.Image:
        """Upscale, restore and resize one face, reporting upscale tiles to `progress`."""
        if self.upscale:
            (image,), more = enlarge.x4([image], on_tile=progress.part(self.tiles(image.width)))
            self.warn(*more)
        image = self.restore.face(image)
        if self.size and image.size != (self.size, self.size):
            if self.size > image.width:
                self.warn(f"the faces were enlarged from {image.width} to {self.size} px with Lanczos, which adds "
                          "no detail: choose a size up to the model's own, or turn on the x4 upscale")
            image = image.resize((self.size, self.size), Image.Resampling.LANCZOS)
        return image

    @property
    def on_torch(self) -> bool:
        """Whether finishing runs a torch net (the upscaler or the restorer)."""
        return self.upscale or bool(self.restore.model)

    def bare(self) -> "Finish":
        """The same finish with nothing to do (no upscale, restoration or resize)."""
        return Finish(upscale=False, restore=Restorer(None, 1.0, find_faces=False), size=None)

    def warn(self, *messages: str) -> None:
        """Note each message once."""
        self.warnings += [m for m in messages if m not in self.warnings]


class DCGANFaces:
    """The DCGAN face model: codes are latents z (N, nz), truncated by scaling (z' = psi z)."""

    style_based = False

    def __init__(self, name: str, net) -> None:
        self.name, self.net = name, net
        self.side, self.wave, self.z_dim = 64, FACES_PER_CALL_DCGAN, net.config.nz

    def latents(self, seeds: list[int]) -> np.ndarray:
        """One z ~ N(0, I) per seed from its own CPU `torch.Generator(seed)` (as this model always drew
        them, so old seeds keep their faces): float32 (N, nz)."""
        import torch

        return np.stack([torch.randn(self.z_dim, generator=torch.Generator("cpu").manual_seed(s)).numpy()
                         for s in seeds])

    def codes(self, z: np.ndarray, psi: float) -> np.ndarray:
        """Truncation for a DCGAN: plain scaling of z toward the prior's mean 0 (the analogue of the
        truncation trick; Brock et al. 2018, BigGAN, arXiv:1809.11096)."""
        return (z * np.float32(psi)).astype(np.float32)

    def draw(self, codes: np.ndarray) -> tuple[list[Image.Image], list[str]]:
        """Faces for latents (N, nz) as 64x64 RGB pictures, one at a time (FACES_PER_CALL_DCGAN)."""
        import torch

        drawn = [self._render(torch.from_numpy(code).reshape(1, -1, 1, 1)) for code in codes]  # z (1, nz, 1, 1)
        return [image for image, _ in drawn], [w for _, warnings in drawn for w in warnings]

    def _render(self, z) -> tuple[Image.Image, list[str]]:
        """One latent z (1, nz, 1, 1) -> (an RGB 64x64 picture, warnings).

        Raises:
            ModelError: the net gave NaN or infinite values, or one flat colour (no face is flat), even
                in float32: its weights are damaged.
        """
        import torch

        device = next(self.net.parameters()).device

        def run() -> torch.Tensor:
            with torch.inference_mode():
                return self.net(z.to(device)).float().cpu()  # (1, C, 64, 64) in [-1, 1] (Tanh)

        def check(pixels: torch.Tensor) -> str | None:
            return bad_values(pixels) or ("one flat colour" if flat(to_pil((pixels + 1.0) / 2.0)[0]) else None)

        pixels, warning = redo_in_float32(run, check, lambda: to_float32([self.net]),
                                          what=f"the face model {self.name}",
                                          advice="its weights may be damaged: rebuild them (bash scripts/setup.sh) "
                                                 "or choose another face model")
        return to_pil((pixels + 1.0) / 2.0)[0], [warning] if warning else []  # [-1, 1] -> [0, 1]


class StyleFaces:
    """A style-based face model: codes are per-layer styles ws (N, layers, w_dim)."""

    style_based = True

    def __init__(self, name: str, net: StyleGenerator) -> None:
        self.name, self.net = name, net
        self.side, self.wave, self.z_dim = net.resolution, max(1, net.wave), net.z_dim
        self.groups = layer_groups(net.layer_sides)

    def latents(self, seeds: list[int]) -> np.ndarray:
        """One z ~ N(0, I) per seed, drawn as NVIDIA's StyleGAN scripts draw it
        (`np.random.RandomState(seed).randn(z_dim)`), so a seed gives the same face here as in their
        `gen_images.py` for a converted file: float32 (N, z_dim)."""
        return np.stack([np.random.RandomState(s).randn(self.z_dim) for s in seeds]).astype(np.float32)

    def codes(self, z: np.ndarray, psi: float) -> np.ndarray:
        """Map z (N, z_dim) to styles and truncate them: w' = mean + psi (w - mean) (Karras et al. 2019,
        StyleGAN, arXiv:1812.04948, section 3.2; Marchesi 2017). Returns float32 (N, w_dim)."""
        mean = self.net.mean_style()
        return (mean + np.float32(psi) * (self.net.mapping(z) - mean)).astype(np.float32)

    def layered(self, w: np.ndarray, mix: tuple[np.ndarray, tuple[int, int]] | None = None) -> np.ndarray:
        """Styles w (N, w_dim) given to every layer: ws (N, layers, w_dim); with `mix` = (w2 (w_dim,),
        (first, last)) the layers first..last (inclusive) take w2 instead (style mixing)."""
        ws = np.repeat(w[:, None, :], self.net.num_layers, axis=1)
        if mix is not None:
            other, (first, last) = mix
            ws[:, first:last + 1] = other
        return ws

    def layer_range(self, layers: object) -> tuple[int, int]:
        """Read a style-mixing choice: "coarse", "middle", "fine", "all", "none", "first-last" or "n"
        text, or a (first, last) pair of layer indices; returns the inclusive range (first > last: none).

        Raises:
            InvalidInput: anything else, indices outside 0..layers-1, or a range whose first index is larger
                than its last.
        """
        count = self.net.num_layers
        named = {**self.groups, "all": (0, count - 1), "none": (count, count - 1)}
        if isinstance(layers, str) and layers.strip().lower() in named:
            return named[layers.strip().lower()]
        pair = layers.split("-") if isinstance(layers, str) else layers
        if isinstance(layers, str) and len(pair) == 1:  # one layer, "5", is the range 5-5
            pair = [layers, layers]
        try:
            first, last = (int(str(v).strip()) for v in pair)
        except (TypeError, ValueError):
            raise InvalidInput(f"mix_layers must be coarse, middle, fine, all, none or a layer range like "
                               f"'0-3' (layers 0..{count - 1}), got {str(layers)[:40]!r}") from None
        if not 0 <= first <= last < count:
            raise InvalidInput(f"mix_layers must be a range within 0..{count - 1}, the first no larger than "
                               f"the last, got {first}-{last}")
        return first, last

    def draw(self, ws: np.ndarray) -> tuple[list[Image.Image], list[str]]:
        """Faces for styles ws (N, layers, w_dim) as RGB pictures of the net's side.

        Raises:
            ModelError: the net gave NaN or infinite values, or one flat colour (damaged weights).
        """
        pixels = self.net.synthesis(ws)  # (N, 3, R, R), about [-1, 1]
        if not np.isfinite(pixels).all():
            raise ModelError(f"the face model {self.name} gave NaN or infinite values: its weights may be "
                             "damaged; choose another face model")
        rgb = np.clip(pixels * 127.5 + 128.0, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)  # [-1, 1] -> 0..255
        images = [Image.fromarray(face) for face in rgb]  # (R, R, 3) each
        if any(flat(image) for image in images):
            raise ModelError(f"the face model {self.name} drew one flat colour: its weights may be damaged; "
                             "choose another face model")
        return images, []


def draw_all(model: DCGANFaces | StyleFaces, codes: np.ndarray, finish: Finish,
             on_step: Callable[[int, int], None] | None) -> tuple[list[Image.Image], list[str]]:
    """Draw and finish every face of `codes`, a wave (model.wave faces) at a time; returns (pictures,
    warnings) and changes none of its arguments (ZeroGPU may run it in another process).

    on_step is called after each finished face, and after each upscale tile. An exception from
    on_step (core.Cancelled) goes out unchanged: at most one wave more is drawn after the stop.
    """
    finish = replace(finish, warnings=[])
    with freed_on_failure():
        progress = Progress(on_step, len(codes) * (1 + finish.tiles(model.side)))
        images: list[Image.Image] = []
        for start in range(0, len(codes), model.wave):
            drawn, warnings = model.draw(codes[start:start + model.wave])
            finish.warn(*warnings)
            for image in drawn:
                images.append(finish.apply(image, progress))
                progress.step()
        return images, finish.warnings


def finish_all(images: list[Image.Image], finish: Finish, on_step: Callable[[int, int], None] | None
               ) -> tuple[list[Image.Image], list[str]]:
    """Upscale, restore and resize drawn faces (all of one side); returns (pictures, warnings) and
    changes none of its arguments. on_step counts each finished face and each upscale tile."""
    finish = replace(finish, warnings=[])
    with freed_on_failure():
        progress = Progress(on_step, len(images) * (1 + finish.tiles(images[0].width)))
        finished = []
        for image in images:
            finished.append(finish.apply(image, progress))
            progress.step()
        return finished, finish.warnings


draw_on_gpu = zerogpu.gpu(duration=120)(draw_all)
finish_on_gpu = zerogpu.gpu(duration=120)(finish_all)
"""`draw_all` and `finish_all` holding a borrowed GPU on a ZeroGPU Space (the same functions anywhere
else). The PyTorch nets draw on the GPU; MobileStyleGAN draws on OpenVINO's CPU plugin in this
process (`draw_all`), and only its faces' upscale and restoration, torch nets, borrow the GPU."""
