"""How well the invisible watermark survives: bit accuracy after a JPEG at quality 90 and a 0.5x resize.

    .venv/bin/python bench/watermark_accuracy.py [--log FILE]

Real pictures: 8 scikit-image photos (BSD-3-Clause, from its PyPI wheel) cropped to 512x512, and 8
MobileStyleGAN faces at 512 px (seeds 0..7, psi 0.7). Each is marked (core.imaging.watermark.embed),
saved as JPEG quality 90, read back, halved (Lanczos), then read by `detect`; the same for the
unmarked picture (should read about 0.5, not found). Also the PSNR of the mark. No timing: any machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from machine import cpu_description, write_log  # noqa: E402
from PIL import Image  # noqa: E402

from core import generate_faces  # noqa: E402
from core.build.wheels import photo_file  # noqa: E402
from core.imaging import watermark  # noqa: E402

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "brick.png",
          "grass.png", "gravel.png")


def attacked(image: Image.Image) -> Image.Image:
    """JPEG at quality 90, then half the size (Lanczos)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    jpeg = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return jpeg.resize((jpeg.width // 2, jpeg.height // 2), Image.Resampling.LANCZOS)


def psnr(a: Image.Image, b: Image.Image) -> float:
    error = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255 ** 2 / max(error, 1e-12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    photos = []
    for name in PHOTOS:
        photo = Image.open(photo_file(name)).convert("RGB")
        side = min(photo.size)
        photos.append(photo.crop((0, 0, side, side)).resize((512, 512), Image.Resampling.LANCZOS))
    faces = generate_faces(count=8, seed=0, truncation_psi=0.7, size=512).images
    lines = [cpu_description(), "bit accuracy after JPEG q90 + 0.5x resize (median, min); PSNR of the mark"]
    print(lines[0], flush=True)
    for label, pictures in (("8 photos, 512 px", photos), ("8 MobileStyleGAN faces, 512 px", faces)):
        marked = [watermark.embed(p) for p in pictures]
        hits = [watermark.detect(attacked(m)) for m in marked]
        misses = [watermark.detect(attacked(p)) for p in pictures]
        ours = [accuracy for _, accuracy in hits]
        theirs = [accuracy for _, accuracy in misses]
        lines.append(f"{label}: marked {statistics.median(ours):.3f} (min {min(ours):.3f}), found "
                     f"{sum(found for found, _ in hits)}/{len(hits)}; unmarked {statistics.median(theirs):.3f} "
                     f"(max {max(theirs):.3f}), found {sum(found for found, _ in misses)}/{len(misses)}; "
                     f"PSNR median {statistics.median(psnr(m, p) for m, p in zip(marked, pictures)):.1f} dB")
        print(lines[-1], flush=True)
    if args.log:
        write_log(args.log, lines)


if __name__ == "__main__":
    main()
