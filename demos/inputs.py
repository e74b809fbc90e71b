"""Inputs whose refusals name the input: `slider`, `number`, `radio` and `textbox` make Gradio's own.

Gradio checks a slider's or number box's value before the event's function runs; a value of the
wrong type sent over the API (a string, a list, null, NaN) makes that check fail with a TypeError,
which reaches the caller as a bare "error" with no message, and an out-of-range one gets a message
that does not say which input it was. These refuse both with a `gr.Error` that names the
input (its label), its range and the value received. They are Gradio's own components with a checked
`preprocess` (not subclasses: Gradio writes a .pyi file beside any module that subclasses a component).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from demos import limits


def checked(component: gr.components.Component, payload: Any, *, missing_ok: bool, limit: str | None = None,
            whole: bool = False, note: str | None = None) -> Any:
    """`payload` when it is a finite number (or None where `missing_ok`) within the component's
    minimum..maximum, and a whole one where `whole`, else raise gr.Error naming the component's label,
    its range and `note` (what a value of it means, e.g. "0 = the model's own"), and, for a value over
    the maximum where the maximum is the host's `limit`, a field of demos.limits.Limits, its variable.
    Every refusal of one input reads alike, e.g. "Steps must be a whole number in 0..100 (0 = the
    model's own), got 2.5" and "..., got -5".

    Raises:
        gr.Error: wrong type, NaN or infinite, a fraction where `whole`, or out of range.
    """
    if payload is None and missing_ok:
        return None
    label = component.label or "a number input"
    low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
    span = f" in {limits.shown_number(low)}..{limits.shown_number(high)}" if low is not None and high is not None else ""
    wanted = f"{'a whole number' if whole else 'a number'}{span}{f' ({note})' if note else ''}"
    if not limits.finite_number(payload) or (whole and payload != int(payload)):
        shown = repr(payload)
        shown = shown if len(shown) <= limits.SHOWN_CHARS else shown[:limits.SHOWN_CHARS - 1] + "…"
        raise gr.Error(f"{label} must be {wanted}, got {shown}", print_exception=False)
    if (low is not None and payload < low) or (high is not None and payload > high):
        why = ""
        if limit is not None and high is not None and payload > high and getattr(limits.current(), limit) <= high:
            why = f" ({limits.shown_number(high)} is this demo's limit, {limits.ENV[limit]})"
        wanted = wanted if whole or note else span.strip() or "in range"  # plain sliders: "must be in 0..50"
        raise gr.Error(f"{label} must be {wanted}, got {limits.shown_number(payload)}{why}", print_exception=False)
    return payload


def slider(*args: Any, limit: str | None = None, whole: bool = False, note: str | None = None,
           **kwargs: Any) -> gr.Slider:
    """gr.Slider(*args, **kwargs) whose refusals name it (see the module docstring); `limit` names
    the demos.limits field its maximum comes from, said when a value is over it; `whole` refuses
    fractions; `note` says what a value means, e.g. "0 = the model's own" (see `checked`)."""
    component = gr.Slider(*args, **kwargs)
    own = component.preprocess
    component.preprocess = lambda payload: own(checked(component, payload, missing_ok=False, limit=limit,
                                                       whole=whole, note=note))
    return component


def number(*args: Any, **kwargs: Any) -> gr.Number:
    """gr.Number(*args, **kwargs) whose refusals name it (see the module docstring); None stays allowed."""
    component = gr.Number(*args, **kwargs)
    own = component.preprocess
    component.preprocess = lambda payload: own(checked(component, payload, missing_ok=True))
    return component


def textbox(*args: Any, **kwargs: Any) -> gr.Textbox:
    """gr.Textbox(*args, **kwargs) that passes on a value that is not text (an API call's dict, list or
    number) as it was sent, instead of Gradio's str() of it, so that core refuses it by its name
    ("negative_prompt must be text, got dict") rather than taking "{'a': 1}" as the text. Text and None
    go through Gradio's own preprocess."""
    component = gr.Textbox(*args, **kwargs)
    own = component.preprocess
    component.preprocess = lambda payload: own(payload) if payload is None or isinstance(payload, str) else payload
    return component


def radio(choices: list, **kwargs: Any) -> gr.Radio:
    """gr.Radio(choices, **kwargs) whose refusal of a value not among its choices names it (its label)
    and lists the choices, instead of Gradio's "Value: ... is not in the list of choices". A number
    choice is also taken as its text ("512" for 512), as gradio_client's API page lists choices."""
    component = gr.Radio(choices, **kwargs)
    own = component.preprocess
    values = [value for _, value in component.choices]

    def preprocess(payload: Any) -> Any:
        spelled = {str(v): v for v in values if not isinstance(v, str)}  # the API lists choices as text
        if isinstance(payload, str) and payload in spelled:
            payload = spelled[payload]
        if payload not in values or isinstance(payload, bool) != any(isinstance(v, bool) for v in values):
            shown = repr(payload)
            shown = shown if len(shown) <= limits.SHOWN_CHARS else shown[:limits.SHOWN_CHARS - 1] + "…"
            listed = ", ".join(repr(v) for v in values)
            raise gr.Error(f"{component.label or 'a choice'} must be one of {listed}, got {shown}", print_exception=False)
        return own(payload)

    component.preprocess = preprocess
    return component
