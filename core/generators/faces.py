"""Face generation with GANs: random faces, style mixing, and interpolation animations (GIF and MP4).

Orchestration only: the face models come from core.models.gans (MobileStyleGAN, the default; the
DCGAN; StyleGAN2/3 files from the models folder), drawing and finishing from
core.generators.face_drawing, interpolation paths from core.generators.face_paths.

Batch invariance: face i of a batch has the same pixels as the same seed alone: each face is drawn
at batch size 1 (several in flight at once where the runtime allows it), so kernels never pick
another blocking for a bigger batch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.catalog import FACE_SIZES, FPS_RANGE, MAX_FACES, MAX_FRAMES, MAX_KEYFRAMES
from core.checks import check_bool, check_float, check_int
from core.errors import InvalidInput
from core.generators.face_drawing import DCGANFaces, Finish, StyleFaces, draw_all, draw_on_gpu, finish_on_gpu
from core.generators.face_paths import keyframe_positions, lerp, slerp
from core.generators.progress import Progress
from core.generators.restoration import Restorer
from core.imaging.io import save_gif
from core.imaging.video import save_mp4
from core.models import gans
from core.result import Result
from core.seeds import resolve_seeds

SPACES = ("style", "latent")


def generate_faces(*, count: int = 4, seed: int = -1, model: str | None = None, truncation_psi: float = 1.0,
                   size: int | None = None, mix_seed: int | None = None, mix_layers: str | tuple[int, int] | None = None,
                   upscale: bool = False, face_restoration: str | None = None, face_weight: float = 1.0,
                   on_step: Callable[[int, int], None] | None = None) -> Result:
    """Make `count` random faces with a GAN, each reproducible from its own seed.

    Args:
        count: number of faces, 1..64.
        seed: -1 for random, else 0..2**32-1; face i uses seed + i, so it can be replayed alone.
        model: None for the default ("mobilestylegan-ffhq-1024"), another registered face model
            ("dcgan-digiface-64"), or a StyleGAN2/StyleGAN3 file in the models folder.
        truncation_psi: 0..1. Style models: each style is pulled toward the mean style,
            w' = mean + psi (w - mean); 0 gives the mean face for every seed, 1 the model untouched.
            DCGAN: the latent is scaled, z' = psi z.
        size: output side in px, one of 1024, 512, 256, 128, 64, or None for what the model makes
            (1024 for MobileStyleGAN; 64, or 256 upscaled, for the DCGAN). Resized with Lanczos; a size
            above what the model made is allowed and said in a warning.
        mix_seed: None, or a seed (-1 random, 0..2**32-1) whose styles the `mix_layers` of every face
            take (style mixing; style models only).
        mix_layers: which layers take mix_seed's style: "coarse" (pose, face shape, hair style; the
            default with a mix_seed), "middle" (features, expression), "fine" (colours, skin), "all",
            "none", a range "first-last" or a (first, last) pair of layer indices (inclusive; layers
            0..n-1, n: see parameters); None without a mix_seed.
        upscale: True runs each face through the default x4 upscaler (core.upscale's default model).
        face_restoration: None, or a face-restoration file in the models folder (GFPGAN, RestoreFormer,
            ...; core.generators.restoration): each face is redrawn by it at 512x512.
        face_weight: 0..1, how much of the restored face to keep (1: all).
        on_step: called as on_step(done, total) after each face is finished and after each tile of
            its upscale: total = count x (1 + tiles per face); core never imports gradio. Raising
            core.Cancelled from on_step stops the work within one wave of faces (model.wave, 2 on a
            2-core CPU) or one tile: it goes out unchanged and nothing more is made.

    Returns:
        Result with `count` RGB images, `seeds` one per face, and `parameters`: model, count, seed (the
        first), truncation_psi, size ([w, h] px), mix_seed, mix_layers ([first, last] or None),
        layers (style inputs of the model, None for the DCGAN), upscale, face_restoration,
        face_weight, source (the model's origin and licence), warnings.

    Raises:
        InvalidInput: a count, seed, psi, size, weight or layer range out of range, upscale not a
            bool, mix_layers without a mix_seed, or style mixing asked of the DCGAN.
        ModelNotFound: `model` is not registered nor a file in the models folder, the embedded weights
            were never built, or the face_restoration file is missing.
        UnsafeModelFile: the file is no face generator we can read (NVIDIA .pkl pickles are refused
            with how to convert them), or face_restoration no face-restoration net.
        ModelError: a net gave NaN or infinite values, or one flat colour (damaged weights).
        Cancelled: on_step raised it (the request was stopped).
    """
    count = check_int("count", count, 1, MAX_FACES)
    seeds = resolve_seeds(seed, count)
    face_model, psi, finish = _setup(model, truncation_psi, size, upscale, face_restoration, face_weight)
    codes = face_model.codes(face_model.latents(seeds), psi)
    mixing = None
    if mix_seed is None and mix_layers is not None:
        raise InvalidInput("mix_layers needs a mix_seed, the seed whose styles those layers take")
    if mix_seed is not None:
        if not face_model.style_based:
            raise InvalidInput(f"style mixing needs a style-based model; {face_model.name} has no per-layer styles")
        mix_seed = resolve_seeds(mix_seed, 1, name="mix_seed")[0]
        layers = face_model.layer_range("coarse" if mix_layers is None else mix_layers)
        mixing = (face_model.codes(face_model.latents([mix_seed]), psi)[0], layers)
    if face_model.style_based:
        codes = face_model.layered(codes, mixing)
    images, warnings = _draw(face_model, codes, finish, on_step)
    return Result(images=images, seeds=seeds, parameters={
        "model": face_model.name, "count": count, "seed": seeds[0], "truncation_psi": psi,
        "size": list(images[0].size), "mix_seed": mix_seed, "mix_layers": list(mixing[1]) if mixing else None,
        **_described(face_model, finish), "warnings": warnings,
    })


def interpolate_faces(seed_a: int, seed_b: int, *more_seeds: int, frames: int = 16, fps: float = 12.0,
                      loop: bool = False, space: str | None = None, model: str | None = None,
                      truncation_psi: float = 1.0, size: int | None = None, upscale: bool = False,
                      face_restoration: str | None = None, face_weight: float = 1.0,
                      gif_path: str | os.PathLike | None = None, video_path: str | os.PathLike | None = None,
                      on_step: Callable[[int, int], None] | None = None) -> Result:
    """Morph the face of `seed_a` into that of `seed_b` (and on through `more_seeds`): frames, an
    animated GIF and an MP4 video.

    Args:
        seed_a, seed_b, *more_seeds: the keyframes' seeds (-1 random, else 0..2**32-1), 2..16 of them.
        frames: total pictures, every seed's face included as a frame, seeds..120.
        fps: frames per second of the GIF and the video, 1..60.
        loop: True closes the path back to the first face (a seamless loop) and makes the GIF play
            forever; False ends on the last seed's face and plays the GIF once.
        space: "style" (linear in style space, the default for style models, where StyleGAN's paths
            are shortest; Karras et al. 2019, section 4.1) or "latent" (spherical in latent space,
            slerp, then mapped; the only path for the DCGAN).
        model, truncation_psi, size, upscale, face_restoration, face_weight: as in `generate_faces`.
        gif_path, video_path: where to write the GIF and the MP4 (their folders must exist); None
            writes new temporary files.
        on_step: as in `generate_faces`, counting frames (and their tiles when upscaled).

    Returns:
        Result with `frames` RGB images, each seed's face exactly at its keyframe (frame 0 equals
        `generate_faces(count=1, seed=seed_a)` with the same settings, and without loop the last frame
        equals that of the last seed); `seeds` = the keyframe seeds; `parameters`: model, seeds, frames,
        fps, loop, space, truncation_psi, size, upscale, face_restoration, face_weight, source,
        gif_path and video_path (str), frame_ms (the GIF's frame time), warnings.

    Raises:
        InvalidInput: a seed, frames, fps, space or psi out of range, loop/upscale not a bool, frames
            fewer than seeds, a folder that does not exist, or "style" for the DCGAN.
        ModelNotFound, UnsafeModelFile, ModelError, Cancelled: as in `generate_faces`; no file is
            written then.
    """
    keys = [seed_a, seed_b, *more_seeds]
    if len(keys) > MAX_KEYFRAMES:
        raise InvalidInput(f"an interpolation takes at most {MAX_KEYFRAMES} seeds, got {len(keys)}")
    names = ["seed_a", "seed_b", *(f"more_seeds[{i}]" for i in range(len(more_seeds)))]
    seeds = [resolve_seeds(s, 1, name=name)[0] for s, name in zip(keys, names)]
    frames = check_int("frames", frames, 2, MAX_FRAMES)
    fps = check_float("fps", fps, *FPS_RANGE)
    loop = check_bool("loop", loop)
    paths = [_output_path(p, name) for p, name in ((gif_path, "gif_path"), (video_path, "video_path"))]
    face_model, psi, finish = _setup(model, truncation_psi, size, upscale, face_restoration, face_weight)
    space = _check_space(space, face_model)
    positions = keyframe_positions(len(seeds), frames, loop=loop)
    z = face_model.latents(seeds)
    if space == "style":
        ends = face_model.codes(z, psi)
        codes = np.stack([lerp(ends[a], ends[b], t) for a, b, t in positions])
    else:
        codes = face_model.codes(np.stack([slerp(z[a], z[b], t) for a, b, t in positions]), psi)
    if face_model.style_based:
        codes = face_model.layered(codes)
    images, warnings = _draw(face_model, codes, finish, on_step)
    frame_ms = round(1000 / fps / 10) * 10  # GIF frame times are in 10 ms units
    gif = save_gif(images, paths[0] or _temporary(".gif"), frame_ms=max(frame_ms, 20), loop=loop)
    video = save_mp4(images, paths[1] or _temporary(".mp4"), fps=fps)
    return Result(images=images, seeds=seeds, parameters={
        "model": face_model.name, "seeds": seeds, "frames": frames, "fps": fps, "loop": loop, "space": space,
        "truncation_psi": psi, "size": list(images[0].size), **_described(face_model, finish),
        "gif_path": str(gif), "video_path": str(video), "frame_ms": max(frame_ms, 20), "warnings": warnings,
    })


def _setup(model: str | None, truncation_psi: float, size: int | None, upscale: bool,
           face_restoration: str | None, face_weight: float) -> tuple[DCGANFaces | StyleFaces, float, Finish]:
    """Check the settings both functions share, load the model; returns (model, psi, finish)."""
    psi = check_float("truncation_psi", truncation_psi, 0.0, 1.0)
    check_bool("upscale", upscale)
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size not in FACE_SIZES):
        raise InvalidInput(f"size must be one of {', '.join(map(str, FACE_SIZES))} px (or None for the model's "
                           f"own), got {str(size)[:20]}")
    restore = Restorer(face_restoration, face_weight, find_faces=False)
    name, net = gans.load(model)
    face_model = StyleFaces(name, net) if gans.is_style_based(net) else DCGANFaces(name, net)
    return face_model, psi, Finish(upscale=upscale, restore=restore, size=None if size is None else int(size))


def _check_space(space: str | None, face_model: DCGANFaces | StyleFaces) -> str:
    if space is None:
        return "style" if face_model.style_based else "latent"
    if space not in SPACES:
        raise InvalidInput(f"space must be 'style' or 'latent', got {str(space)[:20]!r}")
    if space == "style" and not face_model.style_based:
        raise InvalidInput(f"{face_model.name} has no style space: interpolate in 'latent' space")
    return space


def _draw(face_model: DCGANFaces | StyleFaces, codes: np.ndarray, finish: Finish,
          on_step: Callable[[int, int], None] | None) -> tuple[list[Image.Image], list[str]]:
    """Draw and finish the faces, the torch work on a borrowed GPU (ZeroGPU): the whole of it for the
    PyTorch nets; for MobileStyleGAN (OpenVINO, CPU) only the upscale and restoration, after it drew."""
    if gans.is_torch(face_model.net):
        return draw_on_gpu(face_model, codes, finish, on_step)
    if not finish.on_torch:
        return draw_all(face_model, codes, finish, on_step)
    progress = Progress(on_step, len(codes) * (2 + finish.tiles(face_model.side)))
    drawn, warnings = draw_all(face_model, codes, finish.bare(), progress.part(len(codes)))
    images, more = finish_on_gpu(drawn, finish, progress.part(len(codes) * (1 + finish.tiles(face_model.side))))
    return images, [*warnings, *(w for w in more if w not in warnings)]


def _described(face_model: DCGANFaces | StyleFaces, finish: Finish) -> dict:
    """The parameters both functions report about the model and the finish."""
    return {"layers": face_model.net.num_layers if face_model.style_based else None, "upscale": finish.upscale,
            **finish.restore.parameters, "source": gans.source(face_model.net)}


def _output_path(path: str | os.PathLike | None, name: str) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)) or not Path(path).parent.is_dir():
        raise InvalidInput(f"{name} must be a file path in an existing folder, got {str(path)[:80]!r}")
    return Path(path)


def _temporary(suffix: str) -> str:
    handle, path = tempfile.mkstemp(prefix="faces-", suffix=suffix)
    os.close(handle)
    return path
