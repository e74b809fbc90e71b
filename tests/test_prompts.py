"""A1111 prompt syntax and 75-token chunks (core.models.prompts) on the tiny SD 1.x / SDXL pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import sd_fixtures
import torch
from PIL import Image

import core
from core.models import files as model_files
from core.models import prompts
from core.models import registry as models

pytestmark = pytest.mark.usefixtures("offline")
FAST = {"steps": 2, "width": 64, "height": 64, "seed": 3, "scheduler": "Euler"}
LONG = " ".join(["a very detailed painting of a red apple"] * 12)  # 96 tokens: two chunks


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A models folder with the tiny SD 1.x and SDXL pipelines as diffusers folders; yields the pipelines."""
    folder = tmp_path_factory.mktemp("prompts") / "models"
    sd1, sdxl = sd_fixtures.tiny_sd1(0), sd_fixtures.tiny_sdxl(0)
    sd_fixtures.save_folder(sd1, folder / "tiny-sd1")
    sd_fixtures.save_folder(sdxl, folder / "tiny-sdxl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        yield {"sd1": sd1, "sdxl": sdxl}
    models.clear_cache()


@pytest.mark.parametrize("text, expected", [
    ("a cat", [("a cat", 1.0)]),
    ("a (cat:1.3) on a [mat]", [("a ", 1.0), ("cat", 1.3), (" on a ", 1.0), ("mat", 1 / 1.1)]),
    ("(cat)", [("cat", 1.1)]),
    ("((cat))", [("cat", 1.1 * 1.1)]),
    ("((cat:1.5) dog)", [("cat", 1.5 * 1.1), (" dog", 1.1)]),
    ("(cat:0.5)", [("cat", 0.5)]),
    ("(cat:-1)", [("cat", -1.0)]),
    ("(cat:1.0)", [("cat", 1.0)]),
    (r"\(cat\) \[dog\] a\\b", [(r"(cat) [dog] a\b", 1.0)]),
    (r"(a \(b\))", [("a (b)", 1.1)]),
    ("cat) dog]", [("cat) dog]", 1.0)]),  # a closer with no opener is text
    ("(cat", [("cat", 1.1)]),  # an opener never closed weights the rest, as in A1111
    ("a :1.3) b", [("a :1.3) b", 1.0)]),  # a weight outside round brackets is text
    ("a BREAK b", [("a", 1.0), ("BREAK", None), ("b", 1.0)]),
    ("a BREAKING b", [("a BREAKING b", 1.0)]),
    ("", [("", 1.0)]),
])
def test_parse(text, expected):
    got = prompts.parse(text)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_a1111_example():
    test_parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", [
        ("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55), (", sun, ", 1.1),
        ("sky", 1.4641), (".", 1.1)])


def test_chunks_are_77_tokens_with_start_end_and_padding(tiny):
    tokenizer = tiny["sd1"].tokenizer
    one, = prompts.chunks(tokenizer, "a (cat:1.5)")
    ids, weights = one
    assert len(ids) == len(weights) == 77 and ids[0] == tokenizer.bos_token_id and ids[3] == tokenizer.eos_token_id
    assert weights[:4] == [1.0, 1.0, 1.5, 1.0]
    assert ids == tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert len(prompts.chunks(tokenizer, LONG)) == 2 and len(prompts.chunks(tokenizer, "a BREAK b")) == 2
    assert [len(ids) for ids, _ in prompts.chunks(tokenizer, LONG)] == [77, 77]


def test_one_chunk_equals_diffusers_encoding(tiny):
    pipe = tiny["sd1"]
    with torch.inference_mode():
        ours = prompts.embed(pipe, ["(cat:1.0)"], ["ugly"])
        theirs, negative = pipe.encode_prompt("cat", "cpu", 1, True, "ugly")
    assert torch.equal(ours["prompt_embeds"], theirs) and torch.equal(ours["negative_prompt_embeds"], negative)


def test_weights_keep_the_mean_and_negative_is_padded(tiny):
    pipe = tiny["sd1"]
    with torch.inference_mode():
        plain = prompts.embed(pipe, ["a cat"], [""])["prompt_embeds"]
        heavy = prompts.embed(pipe, ["a (cat:1.5)"], [""])["prompt_embeds"]
        long = prompts.embed(pipe, [LONG], ["ugly"])
    assert not torch.equal(plain, heavy) and torch.allclose(plain.mean(), heavy.mean(), atol=1e-6)
    assert long["prompt_embeds"].shape == long["negative_prompt_embeds"].shape == (1, 154, 32)


def test_plain_prompts_stay_with_the_pipeline(tiny):
    call = {"prompt": ["a cat"], "negative_prompt": [""], "height": 64}
    assert prompts.embed_call(tiny["sd1"], call) is call
    weighted = prompts.embed_call(tiny["sd1"], call | {"prompt": ["a (cat)"]})
    assert set(weighted) == {"prompt_embeds", "negative_prompt_embeds", "height"}


def test_weight_one_is_the_plain_word_and_a_weight_changes_the_picture(tiny):
    same = core.text_to_image("(cat:1.0)", model="tiny-sd1", **FAST).images[0]
    reference = core.text_to_image("cat", model="tiny-sd1", **FAST).images[0]
    heavy = core.text_to_image("(cat:1.5)", model="tiny-sd1", **FAST).images[0]
    assert np.array_equal(pixels(same), pixels(reference)), "(cat:1.0) differs from cat"
    assert np.abs(pixels(heavy) - pixels(reference)).mean() > 0.1, "(cat:1.5) changed nothing"


def test_long_prompt_is_read_whole(tiny):
    first = core.text_to_image(LONG + " signed by zebra", model="tiny-sd1", **FAST)
    second = core.text_to_image(LONG + " under a blue sky at night", model="tiny-sd1", **FAST)
    assert first.parameters["warnings"] == []
    assert np.abs(pixels(first.images[0]) - pixels(second.images[0])).mean() > 0.5, "the second chunk was ignored"


def test_sdxl_weighted_prompt(tiny):
    pipe = tiny["sdxl"]
    with torch.inference_mode():
        one = prompts.embed(pipe, ["a (cat:1.3)"], ["ugly"])
        plain = prompts.embed(pipe, ["cat"], [""])
        theirs = pipe.encode_prompt("cat", device="cpu", negative_prompt="")
        long = prompts.embed(pipe, [LONG], [""])
    assert one["prompt_embeds"].shape == one["negative_prompt_embeds"].shape == (1, 77, 96)
    assert one["pooled_prompt_embeds"].shape == one["negative_pooled_prompt_embeds"].shape == (1, 64)
    assert long["prompt_embeds"].shape == long["negative_prompt_embeds"].shape == (1, 154, 96)
    for ours, reference in zip(("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                                "negative_pooled_prompt_embeds"), theirs):
        assert torch.equal(plain[ours], reference), ours
    result = core.text_to_image("a (cat:1.3) BREAK on a mat", model="tiny-sdxl", **FAST)
    assert result.images[0].size == (64, 64) and result.parameters["warnings"] == []
