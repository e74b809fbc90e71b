"""demos.inputs: number inputs refuse wrong types and out-of-range values with a message naming them."""

from __future__ import annotations

import math

import gradio as gr
import pytest

from demos import inputs


@pytest.mark.parametrize("value", ["abc", [1], {"a": 1}, None, True, math.nan, math.inf, -math.inf])
def test_a_slider_refuses_what_is_not_a_finite_number_and_names_itself(value):
    slider = inputs.slider(1, 64, value=4, step=1, label="Number of faces")
    with pytest.raises(gr.Error, match=r"Number of faces must be a number in 1\.\.64, got "):
        slider.preprocess(value)


@pytest.mark.parametrize("value", [0, 65, 1e30, 10 ** 400])
def test_a_slider_refuses_out_of_range_values_and_names_itself(value):
    with pytest.raises(gr.Error, match=r"Number of faces must be in 1\.\.64, got "):
        inputs.slider(1, 64, value=4, step=1, label="Number of faces").preprocess(value)


def test_a_number_box_keeps_none_and_rounds_like_gradio():
    seed = inputs.number(value=-1, precision=0, minimum=-1, maximum=4294967295, label="Seed")
    assert seed.preprocess(None) is None
    assert seed.preprocess(42.0) == 42 and isinstance(seed.preprocess(42.0), int)
    with pytest.raises(gr.Error, match=r"Seed must be a number in -1\.\.4294967295, got 'x'"):
        seed.preprocess("x")


def test_they_are_gradios_own_components():
    assert type(inputs.slider(0, 1)) is gr.Slider and type(inputs.number()) is gr.Number
