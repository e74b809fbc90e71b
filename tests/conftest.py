"""Shared fixtures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")


@pytest.fixture(scope="session")
def photos() -> Path:
    """A folder of real photographs (PHOTOS, RGB PNG) from the scikit-image 0.26.0 wheel (BSD-3-Clause).

    Cached under .cache/photos; the test is skipped when the wheel is neither cached nor downloadable.
    """
    from core.build.wheels import photo_file

    try:
        paths = [photo_file(name) for name in PHOTOS]
    except RuntimeError as err:
        pytest.skip(f"test photos unavailable offline: {err}")
    return paths[0].parent


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails at once (use with `pytest.mark.usefixtures("offline")`)."""
    def refuse(*args, **kwargs):
        raise OSError("tests run offline")
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    """An empty models folder for this test only (what IMAGEGEN_MODELS_DIR would point at)."""
    from core.models import files

    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(files, "MODELS_DIR", folder)  # the one place core reads it from, at call time
    return folder


@pytest.fixture
def free_memory(monkeypatch):
    """What the upscalers read as free memory (CPU RAM and GPU), pinned so that automatic tile sizes do not
    follow the machine's load: 64 GiB at first; call the fixture's value with a byte count to change it."""
    import types

    import psutil
    import torch

    def set_free(free: int) -> None:
        monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=free))
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *device: (free, 2 * free))

    set_free(64 * 2**30)
    return set_free


TINY_EMOJI = "tiny-emoji-for-checks"


@pytest.fixture(scope="session", name="tiny_emoji")
def tiny_emoji_model(tmp_path_factory) -> str:
    """A random 16-px emoji-style pipeline (seed 0) saved in diffusers layout and registered as
    TINY_EMOJI, once a session (test_diffusion, test_cancel, test_output_checks)."""
    import torch

    from core.models import diffusion
    from core.models import registry as models
    from core.models.emoji_pipeline import EmojiPipeline
    from core.models.registry import ModelKind, ModelSpec
    from core.paths import WEIGHTS_DIR
    from core.training.train import load_text_encoder
    from core.training.unet import build_unet, sampling_scheduler, training_scheduler

    if TINY_EMOJI not in models.names(ModelKind.DIFFUSION):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            tokenizer, text_encoder = load_text_encoder(WEIGHTS_DIR / "emoji-diffusion")
            pipe = EmojiPipeline(unet=build_unet(16, (32, 32, 32)), scheduler=sampling_scheduler(training_scheduler()),
                                 text_encoder=text_encoder, tokenizer=tokenizer)
        folder = tmp_path_factory.mktemp("tiny-emoji") / "pipeline"
        pipe.save_pretrained(folder, safe_serialization=True)
        models.register(ModelSpec(ModelKind.DIFFUSION, TINY_EMOJI,
                                  lambda: diffusion.load_emoji_folder(folder, TINY_EMOJI)))
    return TINY_EMOJI
