"""Paths through a face model's latent or style space: where each frame of an interpolation lies.

Pure numpy, float64 inside, so the ends of a path are exactly the keyframes (the faces of the seeds).
"""

from __future__ import annotations

import numpy as np

from core.errors import InvalidInput


def keyframe_positions(keys: int, frames: int, *, loop: bool) -> list[tuple[int, int, float]]:
    """Where each of `frames` frames lies on a path through `keys` keyframes, every keyframe included.

    The path goes key 0 -> 1 -> ... -> keys-1, and back to key 0 when `loop` (so a looping video
    has no jump). The frames between keys are shared out as evenly as the count allows (earlier
    segments get the extra ones); each key falls exactly on a frame.

    Args:
        keys: number of keyframes, >= 2.
        frames: total frames, ends included; at least `keys`, so every key is a frame.
        loop: close the path back to the first key (its repeat at the end is left out).

    Returns:
        For each frame (start key index, end key index, fraction 0..1 of the way between them); a key
        itself is (k, next, 0.0), and the last frame of an open path is (keys-2, keys-1, 1.0).

    Raises:
        InvalidInput: fewer than 2 keys, or fewer frames than keys.
    """
    if keys < 2:
        raise InvalidInput(f"an interpolation needs at least 2 seeds, got {keys}")
    if frames < keys:
        raise InvalidInput(f"frames must be at least the number of seeds ({keys}), so each seed is a frame; "
                           f"got {frames}")
    segments = keys if loop else keys - 1
    inner = frames if loop else frames - 1  # frames that start at a key or lie inside a segment
    per_segment = [inner // segments + (1 if k < inner % segments else 0) for k in range(segments)]
    positions = [(k, (k + 1) % keys, j / count) for k, count in enumerate(per_segment) for j in range(count)]
    if not loop:
        positions.append((keys - 2, keys - 1, 1.0))
    return positions


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """(1 - t) a + t b, computed in float64; t = 0 gives exactly `a` and t = 1 exactly `b` (same dtype)."""
    return ((1.0 - t) * a.astype(np.float64) + t * b.astype(np.float64)).astype(a.dtype)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of latents `a`, `b` (same shape) at fraction `t` in [0, 1].

    t = 0 gives exactly `a` and t = 1 exactly `b`; nearly parallel latents fall back to `lerp`, where
    the arc and the chord coincide. Source: Shoemake 1985, "Animating rotation with quaternion
    curves"; for GAN latents White 2016, "Sampling Generative Networks", arXiv:1609.04468: a straight
    line between two Gaussian latents passes near the origin, where norms are atypical and faces look
    washed out, while the great-circle arc keeps the norm close to that of the ends.
    """
    if t in (0.0, 1.0):
        return (a if t == 0.0 else b).copy()
    flat_a, flat_b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    cos = flat_a @ flat_b / max(np.linalg.norm(flat_a) * np.linalg.norm(flat_b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(a, b, t)
    mixed = (np.sin((1.0 - t) * omega) * flat_a + np.sin(t * omega) * flat_b) / np.sin(omega)
    return mixed.reshape(a.shape).astype(a.dtype)
