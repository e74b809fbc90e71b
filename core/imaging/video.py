"""Animations out of frames: an MP4 video (H.264 through PyAV) next to the animated GIF of core.imaging.io.

PyAV (PyPI `av`, BSD-3-Clause) ships FFmpeg with libx264 in its wheels, so no system FFmpeg is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from core.errors import InvalidInput

CRF = 18
"""x264's constant rate factor: 18 is "visually lossless or nearly so" (FFmpeg's H.264 guide)."""


def save_mp4(frames: Sequence[Image.Image], path: str | Path, *, fps: float) -> Path:
    """Write `frames` (all the same size, even sides) as an H.264 MP4 at `fps` frames per second.

    The pictures are converted to yuv420p (the pixel format every player reads), so colours are
    subsampled 2x2 as in any MP4 from a camera; the frame count and size are exactly those given.

    Args:
        frames: at least one RGB picture; every side even (yuv420p needs it), at most 4096 px.
        path: the file to write (its folder must exist).
        fps: frames per second, 1..60.

    Raises:
        InvalidInput: no frames, frames of different sizes, an odd side, or fps out of range.
    """
    import av

    if not frames:
        raise InvalidInput("a video needs at least one frame")
    size = frames[0].size
    if any(frame.size != size for frame in frames):
        raise InvalidInput("every frame of a video must have the same size")
    if size[0] % 2 or size[1] % 2:
        raise InvalidInput(f"an MP4 needs even sides, got {size[0]}x{size[1]} px")
    if not 1 <= fps <= 60:
        raise InvalidInput(f"fps must be 1..60, got {fps}")
    path = Path(path)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=_rate(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(CRF)}
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.asarray(frame.convert("RGB")), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder's delayed frames
            container.mux(packet)
    return path


def _rate(fps: float):
    """fps as an exact fraction for the stream's time base (12.5 -> 25/2)."""
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)
