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
from core.catalog import DCGAN_FACE_MODEL
from core.generators import diffusion, face_drawing, faces, super_resolution
from core.models import zerogpu
from core.models.dcgan import DCGANGenerator
from core.models.upscalers import Upscaler

GENERATORS = (diffusion, face_drawing, faces, super_resolution)
"""Reloaded in this order: faces takes draw_on_gpu from face_drawing by name."""
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

    core.generate_faces(count=2, seed=3, model=DCGAN_FACE_MODEL, upscale=True)
    assert seen.count("DCGANGenerator") == 2 and "Upscaler" in seen
    seen.clear()
    core.upscale(core.open_image(EXAMPLE), scale=2)
    assert seen and set(seen) == {"Upscaler"}
    seen.clear()
    core.text_to_image("red apple", steps=2, seed=5, upscale=True)
    assert type(unet).__name__ in seen and "Upscaler" in seen
    assert fake_spaces["inside"] == 0 and fake_spaces["durations"], "no function was decorated"


def test_the_upscale_of_the_default_face_model_runs_inside_spaces_gpu(fake_spaces, monkeypatch):
    """MobileStyleGAN itself runs on OpenVINO's CPU plugin, but its faces' x4 upscale is a torch net:
    on ZeroGPU that needs the borrowed GPU too. The net's call is replaced by a nearest-pixel x4 (the
    real one takes tens of seconds for a 1024-px face on a CPU); only where it runs is checked."""
    import torch.nn.functional as F

    seen: list[str] = []
    monkeypatch.setattr(Upscaler, "__call__", lambda self, x: F.interpolate(x, scale_factor=4, mode="nearest"))
    _must_be_inside(monkeypatch, fake_spaces, Upscaler, "__call__", seen)
    core.generate_faces(count=1, seed=3, upscale=True, size=256)
    assert "Upscaler" in seen


def test_without_spaces_nothing_is_wrapped():
    assert not zerogpu.available()
    assert zerogpu.gpu(duration=5)(len) is len
