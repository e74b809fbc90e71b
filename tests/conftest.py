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
    from core.wheels import photo_file

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
    from core import face_restoration, model_files, super_resolution

    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(model_files, "MODELS_DIR", folder)
    monkeypatch.setattr(super_resolution, "MODELS_DIR", folder)
    monkeypatch.setattr(face_restoration, "MODELS_DIR", folder)
    return folder
