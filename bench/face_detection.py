"""Face detection for face restoration: faces found, and false faces, on real and generated pictures.

    .venv/bin/python bench/face_detection.py

Runs core.imaging.face_detection.find_faces (OpenCV's "alt2" cascade, 5 neighbours, eye check) and, for
comparison, OpenCV's "default" frontal-face cascade with its default 3 neighbours and no eye check,
both on the same copy (at most DETECT_SIDE px), on:
- scikit-image's astronaut.png (one face) resized to 256..4096 px, and x4-upscaled by core.upscale
  from 96..256 px: the one face should be found, and nothing else;
- 7 face-free scikit-image photos (cat, cup, rocket, motorcycle, brick, grass, gravel), as they
  are and enlarged x3: every face found there is false;
- 32 faces from our DCGAN face generator (seed 1, truncation psi 0.7), each enlarged to 256 px: recall
  (the default MobileStyleGAN's faces: bench/faces_quality.py).
About a minute on 2 cores. Photos from the scikit-image 0.26.0 wheel (BSD-3-Clause).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from bench.bench_upscale import photo  # noqa: E402
from core import catalog, generate_faces, upscale  # noqa: E402
from core.imaging import face_detection

FACE_FREE = ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "brick.png", "grass.png", "gravel.png")


def opencv_default(image: Image.Image) -> int:
    """Faces OpenCV's default frontal-face cascade finds with its default settings, on the same copy."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    pixels, _ = face_detection.detection_copy(image)
    size = face_detection.MIN_FACE_PX
    return len(cascade.detectMultiScale(pixels, scaleFactor=1.1, minNeighbors=3, minSize=(size, size)))


def main() -> None:
    astronaut = photo("astronaut.png")
    sets = {
        "astronaut resized 256..4096 px (1 face each)":
            [astronaut.resize((s, s), Image.Resampling.BICUBIC) for s in (256, 512, 1024, 2048, 4096)],
        "astronaut x4-upscaled from 96..256 px (1 face each)":
            [upscale(astronaut.resize((s, s), Image.Resampling.LANCZOS)).images[0] for s in (96, 128, 160, 192, 256)],
        "7 face-free photos, as they are and x3 (0 faces)":
            [p for name in FACE_FREE for p in (photo(name), photo(name).resize(
                (photo(name).width * 3, photo(name).height * 3), Image.Resampling.BICUBIC))],
    }
    print(f"{'pictures':56} {'ours: found per picture':>26} {'OpenCV default':>16}")
    for label, pictures in sets.items():
        ours = [len(face_detection.find_faces(p)) for p in pictures]
        theirs = [opencv_default(p) for p in pictures]
        print(f"{label:56} {str(ours) if len(ours) <= 5 else sum(ours):>26} "
              f"{str(theirs) if len(theirs) <= 5 else sum(theirs):>16}", flush=True)
    faces = [f.resize((256, 256), Image.Resampling.BICUBIC)
             for f in generate_faces(count=32, seed=1, truncation_psi=0.7, model=catalog.DCGAN_FACE_MODEL).images]
    ours = sum(bool(face_detection.find_faces(f)) for f in faces)
    theirs = sum(opencv_default(f) > 0 for f in faces)
    print(f"{'32 DCGAN faces at 256 px: pictures with a face found':56} {ours:>26} {theirs:>16}")


if __name__ == "__main__":
    main()
