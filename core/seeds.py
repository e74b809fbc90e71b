"""Seeds: -1 means random; every image gets its own reproducible seed."""

from __future__ import annotations

import numbers
import secrets

from core.checks import shown
from core.errors import InvalidInput

MAX_SEED = 2**32 - 1
"""Seeds are unsigned 32-bit integers, as in AUTOMATIC1111 and ComfyUI."""


def resolve_seeds(seed: int, count: int, *, name: str = "seed") -> list[int]:
    """Turn the user's seed into one seed per image.

    Args:
        seed: -1 for a fresh random seed, else 0..2**32-1. A float with a whole value (4.0, as a
            JSON number may arrive) and numpy integers count as that integer.
        count: number of images, >= 0.
        name: the argument's name in messages (e.g. "seed_a").

    Returns:
        `count` seeds: `seed, seed + 1, ...` (wrapping at 2**32), so image i of a batch can be
        replayed alone with seed + i.

    Raises:
        InvalidInput: `seed` is not a whole number in -1..2**32-1 (booleans, NaN, infinities, text and
            None included); the message names `name` and quotes the value at most 60 characters long.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Real):
        raise InvalidInput(f"{name} must be an integer (-1 for random), got {shown(seed)}")
    if not isinstance(seed, numbers.Integral):
        try:
            whole = float(seed).is_integer()  # False for NaN and +-inf
        except (OverflowError, ValueError):
            whole = False
        if not whole:
            raise InvalidInput(f"{name} must be an integer (-1 for random), got {shown(seed)}")
    seed = int(seed)
    if seed < -1 or seed > MAX_SEED:
        raise InvalidInput(f"{name} must be -1 (random) or 0..{MAX_SEED}, got {shown(seed)}")
    base = secrets.randbelow(MAX_SEED + 1) if seed == -1 else seed
    return [(base + i) % (MAX_SEED + 1) for i in range(count)]
