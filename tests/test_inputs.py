"""demos.inputs: number inputs refuse wrong types and out-of-range values with a message naming them."""

from __future__ import annotations

import math
import re

import gradio as gr
import pytest

from demos import inputs, limits


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


def test_a_value_over_a_limit_names_the_limit_and_its_variable(monkeypatch):
    monkeypatch.setattr(limits, "_current", limits.PUBLIC)
    steps = inputs.slider(0, limits.PUBLIC.steps, value=0, step=1, label="Steps", limit="steps")
    with pytest.raises(gr.Error, match=r"Steps must be in 0\.\.50, got 60 \(50 is this demo's limit, IMAGEGEN_MAX_STEPS\)"):
        steps.preprocess(60)
    monkeypatch.setattr(limits, "_current", limits.LOCAL)
    with pytest.raises(gr.Error) as caught:
        steps.preprocess(60)
    assert "got 60" in str(caught.value) and "limit" not in str(caught.value)  # 50 is no limit of the host here


@pytest.mark.parametrize("value", [10 ** 400, 1e30])
def test_the_host_limits_refuse_huge_numbers_by_name(monkeypatch, value):
    """/image_to_image is not preprocessed: its numbers reach the limit checks as sent."""
    monkeypatch.setattr(limits, "_current", limits.PUBLIC)
    with pytest.raises(gr.Error, match=r"steps is (a 401-digit number|1e\+30), over this demo's limit of 50"):
        limits.check("steps", value, "steps")
    with pytest.raises(gr.Error, match=r"width x height is .* over this demo's limit"):
        limits.check_size(value, 64, (512, 512))


@pytest.mark.parametrize("value, shown", [(2.5, "2.5"), (-5, "-5"), (101, "101"), ("x", "'x'"), (None, "None")])
def test_the_steps_slider_gives_one_range_for_a_fraction_and_a_value_outside_it(value, shown):
    """The text-to-image API once said "whole number in 1..100" for 2.5 (core) but "0..100" for -5 (the slider)."""
    steps = inputs.slider(0, 100, value=0, step=1, label="Steps", whole=True, note="0 = the model's own")
    with pytest.raises(gr.Error, match=re.escape(f"Steps must be a whole number in 0..100 (0 = the model's own), "
                                                 f"got {shown}")):
        steps.preprocess(value)
    assert steps.preprocess(3.0) == 3 and steps.preprocess(0) == 0


def test_a_textbox_passes_non_text_on_for_core_to_refuse_by_name():
    box = inputs.textbox(label="Negative prompt")
    assert box.preprocess({"a": 1}) == {"a": 1} and box.preprocess(["x"]) == ["x"]  # not "{'a': 1}"
    assert box.preprocess("blurry") == "blurry" and box.preprocess(None) is None and type(box) is gr.Textbox
