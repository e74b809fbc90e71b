"""Seeds: -1 means random; every image gets its own reproducible seed."""

from __future__ import annotations

import secrets

from core.errors import InvalidInput

MAX_SEED = 2**32 - 1
"""Seeds are unsigned 32-bit integers, as in AUTOMATIC1111 and ComfyUI."""


def resolve_seeds(seed: int, count: int) -> list[int]:
    """Turn the user's seed into one seed per image.

    Args:
        seed: -1 for a fresh random seed, else 0..2**32-1.
        count: number of images, >= 1.

    Returns:
        `count` seeds: `seed, seed + 1, ...` (wrapping at 2**32), so image i of a batch can be
        replayed alone with seed + i.

    Raises:
        InvalidInput: `seed` is not an integer in -1..2**32-1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        else:
            raise InvalidInput(f"seed must be an integer (-1 for random), got {seed!r}")
    if seed < -1 or seed > MAX_SEED:
        raise InvalidInput(f"seed must be -1 (random) or 0..{MAX_SEED}, got {seed}")
    base = secrets.randbelow(MAX_SEED + 1) if seed == -1 else seed
    return [(base + i) % (MAX_SEED + 1) for i in range(count)]
