"""Argument checks shared by the generators: each names the argument, the bad value and the range."""

from __future__ import annotations

from core.errors import InvalidInput


def check_int(name: str, value: object, low: int, high: int) -> int:
    """Return `value` as an int if it is a whole number in low..high, else raise InvalidInput.

    Floats with an integral value (gradio sliders send 4.0) are accepted; booleans are not.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidInput(f"{name} must be a whole number in {low}..{high}, got {value}")
    value = int(value)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be {low}..{high}, got {value}")
    return value


def check_float(name: str, value: object, low: float, high: float) -> float:
    """Return `value` as a float if it is a finite number in [low, high], else raise InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidInput(f"{name} must be a number in {low}..{high}, got {value!r}")
    value = float(value)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be {low}..{high}, got {value:g}")
    return value


def check_prompt(prompt: object, *, name: str = "prompt", required: bool = True, max_chars: int = 2000) -> str:
    """Return the stripped prompt; raise InvalidInput, naming the argument `name`, if it is not text,
    empty (when required) or too long."""
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise InvalidInput(f"{name} must be text, got {type(prompt).__name__}")
    prompt = prompt.strip()
    if required and not prompt:
        raise InvalidInput(f"{name} is empty: describe the image you want, e.g. 'red apple'")
    if len(prompt) > max_chars:
        raise InvalidInput(f"{name} must be at most {max_chars} characters, got {len(prompt)}")
    return prompt
