"""Checks of what a model made, so that no NaN, infinity or flat picture is returned silently.

Half-precision weights (fp16 on a GPU, bf16 autocast on some CPUs) can overflow where float32 does
not: SDXL's VAE in fp16 is the known case, and any net can hit it. `redo_in_float32` is the one
fallback every generator uses: run, check, and if the model ran in half precision, move it to
float32 for good (a model that overflowed once will again) and run once more; if float32 fails
too, raise `ModelError` saying what happened and what to try.

A picture that is one flat colour is how a broken net often shows (NaN turned to black by the
8-bit conversion, or a dead generator). Flat is only wrong when the input was not: an upscaler
given a black picture gives a black picture. `lost_contrast` compares with the input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import torch
from PIL import Image

from core.errors import ModelError

T = TypeVar("T")
HALF = (torch.float16, torch.bfloat16)
MIN_INPUT_SPREAD = 8
"""An input with at least this many 8-bit levels between its darkest and lightest value in some band
must not come out as one flat colour: a real picture keeps its contrast when enlarged or redrawn;
one with less (a black frame with faint noise) may legitimately come out flat."""


def bad_values(x: torch.Tensor) -> str | None:
    """"NaN values" or "infinite values" when the tensor `x` (any shape) holds some, else None."""
    if torch.isnan(x).any():
        return "NaN values"
    if torch.isinf(x).any():
        return "infinite values"
    return None


def spread(image: Image.Image) -> int:
    """The largest max - min over the bands of `image`, in 8-bit levels (16-bit pictures scaled down)."""
    extrema = image.getextrema()
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    scale = 257 if image.mode.startswith("I;16") or image.mode == "I" else 1
    return max(high - low for low, high in bands) // scale


def flat(image: Image.Image) -> bool:
    """True when every pixel of `image` is the same colour (alpha included)."""
    extrema = image.getextrema()
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return all(low == high for low, high in bands)


def lost_contrast(output: Image.Image, source: Image.Image) -> bool:
    """True when `output` is one flat colour although `source`, the picture it was made from, was not
    (at least MIN_INPUT_SPREAD levels of contrast)."""
    return flat(output) and spread(source) >= MIN_INPUT_SPREAD


def to_float32(modules: Iterable[torch.nn.Module | None]) -> str | None:
    """Move every module in half precision to float32, in place and for good. Returns the precision
    they had ("fp16" or "bf16"), or None when none was in half precision (nothing to gain)."""
    before = None
    for module in modules:
        if module is None:
            continue
        dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
        if dtype in HALF:
            before = before or ("fp16" if dtype == torch.float16 else "bf16")
            module.to(torch.float32)
    return before


def redo_in_float32(run: Callable[[], T], check: Callable[[T], str | None], upcast: Callable[[], str | None], *,
                    what: str, advice: str) -> tuple[T, str | None]:
    """Run `run()` and `check` its result; on a problem, redo it in float32 when that can help.

    Args:
        run: makes the result (a tensor, a picture, a list of them); called once, or twice.
        check: a problem of the result in a few words ("NaN values", "one flat colour"), or None.
        upcast: moves the model to float32 for good; returns the precision it left ("fp16", "bf16"),
            or None when the model ran in float32 already (see `to_float32`).
        what: the model, for the message, e.g. "the upscaler RealESRGAN_x4plus" (never a server path).
        advice: what the user can try, e.g. "try another upscaler".

    Returns:
        (the good result, a warning such as "... gave NaN values in fp16; it was run again in float32
        and stays in float32", or None when the first run was good).

    Raises:
        ModelError: the problem persists in float32, or the model ran in float32 already.
    """
    result = run()
    problem = check(result)
    if problem is None:
        return result, None
    was = upcast()
    if was is None:
        raise ModelError(f"{what} gave {problem}, so there is no usable picture; {advice}")
    result = run()
    again = check(result)
    if again is not None:
        raise ModelError(f"{what} gave {again} even in float32 (it first ran in {was}), so there is no usable "
                         f"picture; {advice}")
    return result, f"{what} gave {problem} in {was}; it was run again in float32 and stays in float32"
