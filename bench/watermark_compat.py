"""Our watermark against PyPI `invisible-watermark` itself: each reads the other's mark.

    .venv/bin/python bench/watermark_compat.py [--log FILE]

The library (0.2.0) and PyWavelets are installed with `pip install --no-deps --target .cache/iwm`,
outside the venv (the library's own requirements would bring `opencv-python`, which clashes with
the project's `opencv-python-headless`; see core/imaging/watermark.py). Needs PyPI once; never run by
the tests. For 8 scikit-image photos at 512 px: the bits the library's decoder reads from our mark
(`WatermarkDecoder("bits", 48).decode(bgr, "dwtDct", scales=[36, 0, 0])`: our channel, Y), and what
our `detect` reads from the library's mark of the same 48 bits on Y; both as the share of bits right.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from machine import cpu_description, write_log  # noqa: E402
from PIL import Image  # noqa: E402
from watermark_accuracy import PHOTOS  # noqa: E402

from core.build.wheels import photo_file  # noqa: E402
from core.imaging import watermark  # noqa: E402

TARGET = ROOT / ".cache" / "iwm"
PACKAGES = ("invisible-watermark==0.2.0", "PyWavelets")


def library():
    """The library's encoder and decoder classes, installed into TARGET on first use."""
    if not (TARGET / "imwatermark").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(TARGET),
                        *PACKAGES], check=True)
    sys.path.insert(0, str(TARGET))
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    return WatermarkEncoder, WatermarkDecoder


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    encoder_class, decoder_class = library()
    theirs_read_ours, ours_read_theirs = [], []
    for name in PHOTOS:
        photo = Image.open(photo_file(name)).convert("RGB")
        side = min(photo.size)
        photo = photo.crop((0, 0, side, side)).resize((512, 512), Image.Resampling.LANCZOS)
        ours = np.asarray(watermark.embed(photo))
        bits = decoder_class("bits", len(watermark.BITS)).decode(cv2.cvtColor(ours, cv2.COLOR_RGB2BGR), "dwtDct",
                                                                 scales=[watermark.SCALE, 0, 0])
        theirs_read_ours.append(float(np.mean(np.array(bits, dtype=bool) == watermark.BITS.astype(bool))))
        encoder = encoder_class()
        encoder.set_watermark("bits", watermark.BITS.tolist())
        marked = encoder.encode(cv2.cvtColor(np.asarray(photo), cv2.COLOR_RGB2BGR), "dwtDct",
                                scales=[watermark.SCALE, 0, 0])
        ours_read_theirs.append(watermark.detect(Image.fromarray(cv2.cvtColor(marked, cv2.COLOR_BGR2RGB)))[1])
    lines = [cpu_description(), f"invisible-watermark 0.2.0 against core.imaging.watermark, {len(PHOTOS)} photos, 512 px",
             f"the library's decoder reads our mark: median {statistics.median(theirs_read_ours):.3f}, "
             f"min {min(theirs_read_ours):.3f} of the bits",
             f"our detect reads the library's mark: median {statistics.median(ours_read_theirs):.3f}, "
             f"min {min(ours_read_theirs):.3f} of the bits"]
    print("\n".join(lines))
    if args.log:
        write_log(args.log, lines)


if __name__ == "__main__":
    main()
