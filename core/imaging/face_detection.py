"""Find faces in a picture, so that face restoration redraws each face and leaves the rest alone.

The detector is OpenCV's Haar cascade for upright frontal faces (Viola & Jones, "Rapid object
detection using a boosted cascade of simple features", CVPR 2001; Lienhart & Maydt, ICIP 2002),
run by `cv2.CascadeClassifier`, and each face it marks must show an eye to OpenCV's eye cascade or
to its eye cascade for eyes behind glasses. The trained cascades (haarcascade_frontalface_alt2.xml,
haarcascade_eye.xml, haarcascade_eye_tree_eyeglasses.xml) ship inside the
opencv-python-headless wheel (Intel License Agreement, BSD-style); OpenCV 5 dropped them, hence
`opencv-python-headless<5` in requirements.txt. It finds faces looking roughly at the camera, from
MIN_FACE_PX wide in the copy it looks at (see DETECT_SIDE); profiles and strongly tilted faces are
missed.

Why these cascades and settings (measured here with OpenCV 4.14; rerun with
bench/face_detection.py): a false face is worse than a
missed one, since the restorer would paint a face onto a badge or a helmet. On scikit-image's
astronaut.png resized to 256..4096 px, on it upscaled x4 from 96..256 px, and on 7 face-free
photos at two sizes, OpenCV's "default" cascade (3 neighbours) found her face, plus 14 false
faces; "alt2" with 5 neighbours and the eye check found her face alone every time and no false
face. The eye cascade alone missed eyes behind glasses and squinting in a smile: the faces of 7 of
100 MobileStyleGAN faces at 256 px (bench/faces_quality.py) were found but refused; with the
eyeglasses cascade as a second chance, 5 (still no false face on the photos above).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from PIL import Image

from core.errors import ModelNotFound

DETECT_SIDE = 1024
"""Longest side, in px, of the copy the detector looks at: larger pictures are scaled down first, so
a face must be at least 1/MIN_FACE_SHARE of the picture's longest side to be found; more px only
add false faces. The boxes are mapped back to full size."""
MIN_FACE_PX = 24
"""Smallest face side, in px of the copy, the detector looks for (its cascade's window is 20 px)."""
MIN_FACE_SHARE = round(DETECT_SIDE / MIN_FACE_PX)
"""43: a face narrower than 1/43 of a big picture's longest side is missed."""
MAX_FACES = 32
"""At most this many faces, the largest first."""
EYE_CHECK = (160, 96)
"""Size in px the upper 60 % of a face box is resized to before looking for an eye in it (the eye
cascade needs eyes of 20 px or more)."""


class Box(NamedTuple):
    """A box in px of the picture it was found in: left, top (inclusive), right, bottom (exclusive)."""

    left: int
    top: int
    right: int
    bottom: int


@functools.cache
def detector():
    """OpenCV's frontal-face cascade and its two eye cascades (eyes; eyes behind glasses), loaded once
    (`cv2.CascadeClassifier`), as a tuple (faces, eyes, eyes behind glasses).

    Raises:
        ModelNotFound: OpenCV is not installed, or is a version without the cascade files.
    """
    try:
        import cv2
    except ImportError:
        raise ModelNotFound("face detection needs OpenCV: pip install 'opencv-python-headless<5'") from None
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    cascades = tuple(cv2.CascadeClassifier(folder + name)
                     for name in ("haarcascade_frontalface_alt2.xml", "haarcascade_eye.xml",
                                  "haarcascade_eye_tree_eyeglasses.xml"))
    if any(cascade.empty() for cascade in cascades):
        raise ModelNotFound(f"OpenCV {cv2.__version__} ships no face cascades (OpenCV 5 dropped them): "
                            "pip install 'opencv-python-headless<5'")
    return cascades


def detection_copy(image: Image.Image) -> tuple[np.ndarray, float]:
    """What the detector looks at: `image` scaled down (box filter) to at most DETECT_SIDE px on its
    longest side, then greyscale, as a uint8 `(h, w)` array; and the scale factor used (<= 1)."""
    shrink = min(1.0, DETECT_SIDE / max(image.size))
    small = image  # scaled down before the grey copy is made: a 16384-px picture's would take 268 MB
    if shrink < 1.0:
        small = image.resize((max(1, round(image.width * shrink)), max(1, round(image.height * shrink))),
                             Image.Resampling.BOX)
    return np.asarray(small.convert("L")), shrink


def find_faces(image: Image.Image) -> list[Box]:
    """The frontal faces in `image`, largest first.

    Args:
        image: a PIL image of any mode and size, looked at through `detection_copy`.

    Returns:
        Up to MAX_FACES boxes in `image`'s px, each the square the cascade marks: roughly brows to
        mouth, cheek to cheek. Empty when there is no face.

    Raises:
        ModelNotFound: OpenCV, or its face cascade, is not installed.
    """
    faces, *eye_cascades = detector()
    import cv2  # present: detector() checked
    pixels, shrink = detection_copy(image)
    # scale step 1.1 is OpenCV's default; 5 neighbours (default 3) and the eye check keep false faces away
    found = faces.detectMultiScale(pixels, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE_PX, MIN_FACE_PX))
    kept = []
    for x, y, w, h in np.asarray(found, dtype=int).reshape(-1, 4):
        upper = cv2.resize(pixels[y:y + h * 6 // 10, x:x + w], EYE_CHECK, interpolation=cv2.INTER_LINEAR)
        if any(len(eyes.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=3, minSize=(16, 16)))
               for eyes in eye_cascades):
            kept.append((x, y, w, h))
    kept = sorted(kept, key=lambda box: box[2] * box[3], reverse=True)[:MAX_FACES]
    return [Box(round(x / shrink), round(y / shrink), round((x + w) / shrink), round((y + h) / shrink))
            for x, y, w, h in kept]
