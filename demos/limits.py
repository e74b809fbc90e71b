"""The host's limits on what one request may ask for, set in one place.

Two presets: *local* (the ranges core itself accepts, no request rate limit) for a tab on your own
machine, and *public* (small enough that one stranger cannot hold a 2-core CPU for minutes) for a
public link, a LAN server or a Hugging Face Space. app.py picks the preset (`--public`,
`--no-public`, else public with `--share`, `--listen` or on a Space); each limit can then be set by
an environment variable, which wins over either preset:

| variable | limit | local | public |
|---|---|---|---|
| IMAGEGEN_MAX_PIXELS | width x height of one diffusion picture | 2048 x 2048 | 768 x 768 |
| IMAGEGEN_MAX_STEPS | denoising steps | 100 | 50 |
| IMAGEGEN_MAX_IMAGES | pictures per request (batch size x batch count, faces) | 256 | 16 |
| IMAGEGEN_MAX_FRAMES | interpolation frames | 120 | 48 |
| IMAGEGEN_MAX_OUTPUT_SIDE | longest side of an upscaled picture (core reads it) | 16384 | 4096 |
| IMAGEGEN_MAX_PROMPT_CHARS | characters of a prompt or negative prompt | 2000 | 1000 |
| IMAGEGEN_REQUESTS_PER_MINUTE | requests per visitor per minute: per session, and with the public preset per network address (0 = any) | 0 | 12 |
| IMAGEGEN_WAITING_PER_SESSION | requests a session may have waiting behind its running one | 3 | 2 |
| IMAGEGEN_MAX_PER_VISITOR | requests in progress from one network address, all its sessions together (0 = any) | 0 | 4 |
| IMAGEGEN_MAX_UPLOAD_MB | size of one uploaded file, in MB (0 = any; Gradio refuses more) | 0 | 20 |

The sliders of the tabs end at these limits; a request beyond one (e.g. over the API) gets a
message naming the limit and its variable. No model logic here.
"""

from __future__ import annotations

import dataclasses
import math
import os

import gradio as gr

from core import catalog

PUBLIC_ENV = "IMAGEGEN_PUBLIC"
"""`1` for the public preset, `0` for the local one, when app.py's flags do not decide."""
SHOWN_CHARS = 40
"""At most this many characters of a refused value are repeated in a message."""
MAX_IN_FLIGHT = 32
"""Requests admitted at once over all sessions (demos.serving); more are told the server is busy."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for (see the module docstring for units and presets)."""

    pixels: int
    steps: int
    images: int
    frames: int
    output_side: int
    prompt_chars: int
    requests_per_minute: int
    waiting_per_session: int
    upload_mb: int
    per_visitor: int
    public: bool = False


LOCAL = Limits(pixels=catalog.SD_SIDES[1] ** 2, steps=catalog.STEPS_RANGE[1],
               images=catalog.MAX_BATCH * catalog.MAX_BATCH_COUNT, frames=catalog.MAX_FRAMES,
               output_side=16384, prompt_chars=2000, requests_per_minute=0, waiting_per_session=3,
               upload_mb=0, per_visitor=0)
PUBLIC = Limits(pixels=768 * 768, steps=50, images=16, frames=48, output_side=4096, prompt_chars=1000,
                requests_per_minute=12, waiting_per_session=2, upload_mb=20, per_visitor=4,
                public=True)
ENV = {"pixels": "IMAGEGEN_MAX_PIXELS", "steps": "IMAGEGEN_MAX_STEPS", "images": "IMAGEGEN_MAX_IMAGES",
       "frames": "IMAGEGEN_MAX_FRAMES", "output_side": "IMAGEGEN_MAX_OUTPUT_SIDE",
       "prompt_chars": "IMAGEGEN_MAX_PROMPT_CHARS", "requests_per_minute": "IMAGEGEN_REQUESTS_PER_MINUTE",
       "waiting_per_session": "IMAGEGEN_WAITING_PER_SESSION", "upload_mb": "IMAGEGEN_MAX_UPLOAD_MB",
       "per_visitor": "IMAGEGEN_MAX_PER_VISITOR"}
"""The environment variable of each limit."""

_current: Limits | None = None


def configure(public: bool | None = None) -> Limits:
    """Choose the preset (None: $IMAGEGEN_PUBLIC, else local), apply the environment variables over
    it, export the output-side limit for core (`IMAGEGEN_MAX_OUTPUT_SIDE`, which core's upscaler
    checks), and return the limits now in force. Call before building the tabs: the sliders read them.

    Raises:
        ValueError: a variable is set but is not a whole number >= 0 (>= 1 except for the rate).
    """
    global _current
    if public is None:
        public = os.environ.get(PUBLIC_ENV, "").strip() == "1"
    preset = PUBLIC if public else LOCAL
    values = {}
    for field, variable in ENV.items():
        text = os.environ.get(variable, "").strip()
        if not text:
            continue
        lowest = 0 if field in ("requests_per_minute", "waiting_per_session", "upload_mb", "per_visitor") else 1
        if not text.isdigit() or int(text) < lowest:
            raise ValueError(f"${variable} must be a whole number >= {lowest}, got {text!r}")
        values[field] = int(text)
    _current = dataclasses.replace(preset, **values)
    os.environ[ENV["output_side"]] = str(_current.output_side)
    return _current


def current() -> Limits:
    """The limits in force (`configure()` with no argument on first use)."""
    return _current if _current is not None else configure()


def check(name: str, value: object, field: str) -> None:
    """Refuse `value` of the request input `name` when it is over the limit `field` (a Limits field
    name). Values that are not finite numbers are left to core, which says what is wrong with them.

    Raises:
        gr.Error: naming the input, the limit and its environment variable.
    """
    limit = getattr(current(), field)
    if not finite_number(value) or value <= limit:
        return
    raise gr.Error(f"{name} is {shown_number(value)}, over this demo's limit of {limit} ({ENV[field]}). "
                   "Choose less, or run the hub on your own machine for the full range.", print_exception=False)


def check_text(name: str, text: object) -> None:
    """Refuse a prompt-like `text` longer than the prompt_chars limit (non-text is left to core).

    Raises:
        gr.Error: naming the input and the limit.
    """
    limit = current().prompt_chars
    if isinstance(text, str) and len(text) > limit:
        raise gr.Error(f"{name} has {len(text)} characters, over this demo's limit of {limit} "
                       f"({ENV['prompt_chars']}). Shorten it.", print_exception=False)


def check_size(width: object, height: object, native: tuple[int, int]) -> None:
    """Refuse a picture of more than the pixels limit; 0 for a side means the model's `native` one.

    Raises:
        gr.Error: naming the size, the limit and its environment variable.
    """
    sides = [n if isinstance(v, (int, float)) and v == 0 else v for v, n in zip((width, height), native)]
    if all(finite_number(v) for v in sides):
        limit = current().pixels
        if sides[0] * sides[1] > limit:
            raise gr.Error(f"width x height is {shown_number(sides[0])} x {shown_number(sides[1])} px, over this demo's limit of {limit} "
                           f"pixels ({ENV['pixels']}, e.g. {math.isqrt(limit)} x {math.isqrt(limit)}). "
                           "Choose a smaller size.", print_exception=False)


def finite_number(value: object) -> bool:
    """True for an int of any size or a finite float; False for bools, NaN, infinities and non-numbers."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def shown_number(number: float) -> str:
    """A number as a person writes it (4294967295, 0.05, 1e+30); an int too long to show, by its digits."""
    if isinstance(number, int):
        text = str(number)
        return text if len(text) <= SHOWN_CHARS else f"a {len(text)}-digit number"
    return str(int(number)) if number.is_integer() and abs(number) < 1e16 else f"{number:g}"
