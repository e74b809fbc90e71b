"""On ZeroGPU every CUDA call must run inside a `spaces.GPU` function. With a fake `spaces` module,
the decorated functions of the three generators are shown to be what runs the diffusion pipeline,
the GAN and the upscaler (the x4 steps of text to image and faces included)."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

import core
from core.generators import diffusion, faces, super_resolution
from core.models import zerogpu
from core.models.dcgan import DCGANGenerator
from core.models.upscalers import Upscaler

GENERATORS = (diffusion, faces, super_resolution)
EXAMPLE = Path(__file__).resolve().parent.parent / "demos" / "examples" / "chelsea-150.png"


@pytest.fixture
def fake_spaces(monkeypatch):
    """A `spaces` package whose GPU(duration) marks the decorated call as running on the borrowed GPU;
    the generator modules are reloaded under it, and reloaded again without it afterwards."""
    state = {"inside": 0, "durations": []}

    def gpu(duration=60):
        state["durations"].append(duration)

        def wrap(fn):
            def run(*args, **kwargs):
                state["inside"] += 1
                try:
                    return fn(*args, **kwargs)
                finally:
                    state["inside"] -= 1
            return run
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    assert zerogpu.available()
    for module in GENERATORS:
        importlib.reload(module)
    yield state
    monkeypatch.delitem(sys.modules, "spaces")
    for module in GENERATORS:
        importlib.reload(module)


def _must_be_inside(monkeypatch, state, cls, method: str, seen: list[str]) -> None:
    original = getattr(cls, method)

    def checked(self, *args, **kwargs):
        seen.append(cls.__name__)
        assert state["inside"] == 1, f"{cls.__name__}.{method} ran outside spaces.GPU"
        return original(self, *args, **kwargs)
    monkeypatch.setattr(cls, method, checked)


def test_the_gan_the_upscaler_and_the_pipeline_run_inside_spaces_gpu(fake_spaces, monkeypatch):
    seen: list[str] = []
    _must_be_inside(monkeypatch, fake_spaces, DCGANGenerator, "forward", seen)
    _must_be_inside(monkeypatch, fake_spaces, Upscaler, "__call__", seen)
    unet = core.generators.diffusion.get(None).text_to_image.unet
    _must_be_inside(monkeypatch, fake_spaces, type(unet), "forward", seen)

    core.generate_faces(count=2, seed=3, upscale=True)
    assert seen.count("DCGANGenerator") == 2 and "Upscaler" in seen
    seen.clear()
    core.upscale(core.open_image(EXAMPLE), scale=2)
    assert seen and set(seen) == {"Upscaler"}
    seen.clear()
    core.text_to_image("red apple", steps=2, seed=5, upscale=True)
    assert type(unet).__name__ in seen and "Upscaler" in seen
    assert fake_spaces["inside"] == 0 and fake_spaces["durations"], "no function was decorated"


def test_without_spaces_nothing_is_wrapped():
    assert not zerogpu.available()
    assert zerogpu.gpu(duration=5)(len) is len
