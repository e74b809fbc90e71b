"""Face quality check: how often the project's face detector finds exactly one face in a generated face.

    .venv/bin/python bench/faces_quality.py [--seeds 100] [--log FILE]

For seeds 0..99 at truncation psi 0.7, side by side at the same size (256 px):
- the default model, MobileStyleGAN (1024 px, resized to 256 with Lanczos by core's `size`);
- the DCGAN (64 px, x4-upscaled to 256 by core's `upscale`, the default upscaler).
The detector is core.imaging.face_detection.find_faces (OpenCV's "alt2" Haar cascade, 5 neighbours,
eye check), the one face restoration uses. A malformed face (half a face, a smear, two faces
blended) is rarely found as exactly one face. Goal of issue 13: >= 95 % for the default model.
About a minute and a half on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_description, write_log  # noqa: E402

from core import catalog, generate_faces  # noqa: E402
from core.imaging import face_detection  # noqa: E402

PSI, SIDE = 0.7, 256


def count_faces(model: str, seeds: int, **settings) -> list[int]:
    """Faces found in each of the `seeds` pictures of `model` (seeds 0..seeds-1)."""
    found = []
    for start in range(0, seeds, 8):
        batch = generate_faces(count=min(8, seeds - start), seed=start, model=model, truncation_psi=PSI, **settings)
        found += [len(face_detection.find_faces(image)) for image in batch.images]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    lines = [cpu_description(), f"seeds 0..{args.seeds - 1}, psi {PSI}, pictures at {SIDE} px"]
    print(lines[0], flush=True)
    lines.append(f"{'model':36} {'exactly one face':>17} {'none':>5} {'several':>8} {'seconds':>8}  seeds without one")
    for model, settings in ((catalog.DEFAULT_FACE_MODEL, {"size": SIDE}),
                            (catalog.DCGAN_FACE_MODEL, {"upscale": True})):
        start = time.perf_counter()
        found = count_faces(model, args.seeds, **settings)
        seconds = time.perf_counter() - start
        one = sum(n == 1 for n in found)
        misses = [seed for seed, n in enumerate(found) if n != 1]
        lines.append(f"{model:36} {one:>5}/{len(found)} ({100 * one / len(found):5.1f} %) "
                     f"{sum(n == 0 for n in found):>5} {sum(n > 1 for n in found):>8} {seconds:>8.1f}  "
                     f"{misses[:20]}{' ...' if len(misses) > 20 else ''}")
        print(lines[-1], flush=True)
    if args.log:
        write_log(args.log, lines)


if __name__ == "__main__":
    main()
