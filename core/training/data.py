"""A folder of images with captions -> tensors ready for training, and a seeded train/validation split.

Folder layout (the Hugging Face "imagefolder" convention): image files plus a `metadata.jsonl`
whose lines are `{"file_name": "a.png", "text": "a caption"}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from core.errors import InvalidInput
from core.imaging.io import flatten, to_tensor


@dataclass
class CaptionedImages:
    """images: float `(N, 3, R, R)` in [-1, 1]; captions: N strings."""

    images: torch.Tensor
    captions: list[str]

    def subset(self, index: list[int]) -> "CaptionedImages":
        return CaptionedImages(self.images[index], [self.captions[i] for i in index])


def load_folder(folder: Path, resolution: int) -> CaptionedImages:
    """Read every captioned image of `folder`, composite it on white and resize it to `resolution` px (Lanczos).

    Raises:
        InvalidInput: no `metadata.jsonl`, an entry without `file_name`/`text`, or a missing image.
    """
    meta = Path(folder) / "metadata.jsonl"
    if not meta.is_file():
        raise InvalidInput(f"{folder} has no metadata.jsonl (lines of {{\"file_name\": ..., \"text\": ...}})")
    images, captions = [], []
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if not isinstance(entry.get("file_name"), str) or not isinstance(entry.get("text"), str):
            raise InvalidInput(f"{meta}:{number} needs string fields file_name and text")
        path = Path(folder) / entry["file_name"]
        if not path.is_file():
            raise InvalidInput(f"{meta}:{number} names {entry['file_name']}, which does not exist")
        with Image.open(path) as img:
            rgb = flatten(img.convert("RGBA")).resize((resolution, resolution), Image.LANCZOS)
        images.append(to_tensor(rgb) * 2 - 1)  # (1, 3, R, R) in [-1, 1]
        captions.append(entry["text"].strip().lower())
    if not images:
        raise InvalidInput(f"{meta} lists no images")
    return CaptionedImages(torch.cat(images), captions)


def split(data: CaptionedImages, val_fraction: float, seed: int) -> tuple[CaptionedImages, CaptionedImages]:
    """Shuffle with `seed` and hold out `val_fraction` (0..0.5) of the images, at least one, for validation."""
    if not 0 < val_fraction <= 0.5:
        raise InvalidInput(f"val_fraction must be in (0, 0.5], got {val_fraction}")
    n = len(data.captions)
    if n < 2:
        raise InvalidInput(f"need at least 2 captioned images to split, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(n * val_fraction))
    return data.subset(sorted(order[n_val:])), data.subset(sorted(order[:n_val]))
