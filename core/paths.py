"""Where things live on disk: the repository, the bundled weights and the models folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
"""The checkout's root folder (holds app.py)."""

WEIGHTS_DIR = Path(os.environ.get("IMAGEGEN_WEIGHTS_DIR", REPO_DIR / "weights"))
"""Bundled and converted weights (see weights/README.md); `IMAGEGEN_WEIGHTS_DIR` overrides it."""

MODELS_DIR = Path(os.environ.get("IMAGEGEN_MODELS_DIR", REPO_DIR / "models"))
"""The user's own checkpoints and upscalers; `IMAGEGEN_MODELS_DIR` overrides it."""
