"""Argument checks shared by the generators: each names the argument, the bad value and the range.

Values are quoted in messages through `shown`, so a 100,000-character string or a 5,000-digit number
sent over the API gives a one-line message, and an invisible or invalid character is spelled out.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata

from core.errors import InvalidInput

MAX_CHARS = {
    "prompt": 2000,
    "negative_prompt": 2000,
    "model": 1024,
    "lora": 1024,
    "face_restoration": 1024,
    "scheduler": 64,
}
"""The most characters each text argument takes. Prompts: far beyond what a text encoder reads (SD's
CLIP: 75 tokens), for prompts pasted from elsewhere. Model, LoRA and face-restoration names are names,
paths inside the models folder or Hub ids: 1024 (a Linux file name is at most 255 bytes). Sampler names
are short words ("DPM++ 2M Karras")."""

_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"  # embeddings, overrides, isolates ("Trojan Source", CVE-2021-42574)
_REFUSED = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI_CONTROLS}\ud800-\udfff\ufffe\uffff]")
"""Characters no text field takes: C0 and C1 control characters but tab, newline and carriage return,
bidirectional embedding/override/isolate controls, lone UTF-16 surrogates (invalid Unicode: no encoding
carries them, "\\ud800" in JSON gives one) and the noncharacters U+FFFE/U+FFFF. Zero-width joiners and
variation selectors stay allowed: emoji sequences use them."""
_REFUSED_IN_NAMES = re.compile(f"[\t\n\r]|{_REFUSED.pattern}")
"""Names (files, models, samplers) take no line breaks or tabs either."""
_SHOWN_CHARS = 60


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """`value` quoted for an error message, at most about `limit` characters: repr() (so control and
    invalid characters appear escaped, e.g. '\\x1b'), a long text cut with its length said, and a
    huge whole number given by its digit count (Python refuses to print one over 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3.33 * limit:
        digits = len(str(abs(value))) if value.bit_length() < 14000 else int(value.bit_length() * math.log10(2)) + 1
        return f"a {digits}-digit number"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ of a caller's object
        return f"a {type(value).__name__}"
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return text[:limit - 1] + "…" + size


def check_int(name: str, value: object, low: int, high: int) -> int:
    """Return `value` as an int if it is a whole number in low..high, else raise InvalidInput.

    Floats with an integral value (gradio sliders send 4.0) are accepted, as are numpy integers;
    booleans, NaN and infinities are not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{name} must be a whole number in {low}..{high}, got {shown(value)}")
    if not isinstance(value, numbers.Integral):
        try:
            as_float = float(value)
        except (OverflowError, ValueError):
            raise InvalidInput(f"{name} must be {low}..{high}, got {shown(value)}") from None
        if not as_float.is_integer():  # also NaN and +-inf
            raise InvalidInput(f"{name} must be a whole number in {low}..{high}, got {shown(value)}")
        value = as_float
    value = int(value)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be {low}..{high}, got {shown(value)}")
    return value


def check_float(name: str, value: object, low: float, high: float) -> float:
    """Return `value` as a float if it is a finite number in [low, high], else raise InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise InvalidInput(f"{name} must be a number in {low}..{high}, got {shown(value)}")
    if isinstance(value, numbers.Integral) and not low <= value <= high:  # before float(): 10**400 overflows it
        raise InvalidInput(f"{name} must be {low}..{high}, got {shown(value)}")
    try:
        number = float(value)
    except (OverflowError, ValueError):
        raise InvalidInput(f"{name} must be {low}..{high}, got {shown(value)}") from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be {low}..{high}, got {number:g}")
    return number


def check_bool(name: str, value: object) -> bool:
    """Return `value` if it is True or False, else raise InvalidInput: a switch takes no "off", 1 or None."""
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be True or False, got {shown(value)}")
    return value


def check_text(name: str, value: object, *, max_chars: int | None = None, names: bool = False) -> str:
    """Return `value` if it is text that a field `name` takes, else raise InvalidInput.

    Args:
        name: the argument's name, used in messages; also its key in MAX_CHARS.
        value: the text; None is taken as "".
        max_chars: the most characters allowed (default MAX_CHARS[name], else 2000).
        names: `value` names a file, model or sampler: no tabs or line breaks either.

    Raises:
        InvalidInput: not text, too long, or holding a character no field takes
            (see _REFUSED): the message names the character, its position and what to do. Nothing
            is removed or replaced silently.
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, got {type(value).__name__}")
    limit = MAX_CHARS.get(name, 2000) if max_chars is None else max_chars
    if len(value) > limit:
        raise InvalidInput(f"{name} must be at most {limit} characters, got {len(value)}; shorten it")
    bad = (_REFUSED_IN_NAMES if names else _REFUSED).search(value)
    if bad:
        raise InvalidInput(f"{name} has {_describe(bad.group())} at character {bad.start() + 1}; "
                           "remove it and send the text again")
    return value


def _describe(char: str) -> str:
    """A refused character in words, e.g. "a control character (U+001B ESCAPE)"."""
    code = ord(char)
    label = f"U+{code:04X}"
    if 0xD800 <= code <= 0xDFFF:
        return f"invalid Unicode (a lone surrogate, {label}, which no text encoding carries)"
    if char in "\t\n\r":
        return f"a tab or line break ({label})"
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"a bidirectional text control ({label} {unicodedata.name(char, '')}, which can disguise text)"
    if code in (0xFFFE, 0xFFFF):
        return f"a noncharacter ({label})"
    return f"a control character ({label}{' NUL' if code == 0 else ''})"


def check_prompt(prompt: object, *, name: str = "prompt", required: bool = True, max_chars: int | None = None) -> str:
    """Return the stripped prompt; raise InvalidInput, naming the argument `name`, if it is not text,
    empty (when required), too long (MAX_CHARS, 2000), or holds a control character, a bidirectional
    text control or invalid Unicode (see check_text)."""
    prompt = check_text(name, prompt, max_chars=max_chars).strip()
    if required and not prompt:
        raise InvalidInput(f"{name} is empty: describe the image you want, e.g. 'red apple'")
    return prompt


def check_name(name: str, value: object, *, max_chars: int | None = None) -> str | None:
    """Return `value` (None or "" as None) if it can name a model, LoRA, file or sampler: text of at
    most MAX_CHARS[name] (else 1024) characters without control characters, tabs, line breaks,
    bidirectional controls or invalid Unicode. Raises InvalidInput otherwise (see check_text)."""
    if value is None or value == "":
        return None
    return check_text(name, value, max_chars=max_chars or MAX_CHARS.get(name, 1024), names=True)
