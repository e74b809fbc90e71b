"""Build the embedded weights that are not committed (see core/build/prepare.py and weights/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.build.prepare import prepare_all  # noqa: E402

if __name__ == "__main__":
    prepare_all()
