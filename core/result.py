"""The one return type of every generator in `core`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class Result:
    """What a generator made and how.

    Attributes:
        images: the output pictures, in order, as PIL images (mode RGB unless stated otherwise).
        seeds: the seed behind each image (same length as `images`); replaying a call with these
            seeds and the same `parameters` reproduces the images on the same device and dtype.
        parameters: the settings actually applied, after defaults and rounding (e.g. the model
            name, steps, guidance scale, width/height); JSON-serialisable values only.
    """

    images: list[Image.Image]
    seeds: list[int] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
