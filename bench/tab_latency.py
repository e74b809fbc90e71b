"""Seconds each tab's default request takes on this machine, first call (model load included) and warm.

The default request is what a user gets by pressing the tab's button without changing anything:
  text to image:    "red apple", 25 DDIM steps, guidance 5, 32 px, upscale x4 on  -> 128 px
  image to image:   a 256 px photo, "red apple", strength 0.6, upscale x4 on     -> 128 px
  faces:            4 faces of MobileStyleGAN, psi 0.7, 1024 px (the tab's defaults)
  super-resolution: a 256 px photo, realesr-animevideov3 x4                      -> 1024 px
Goal (issue 3): each <= 10 s on a CPU. Run with `IMAGEGEN_DEVICE=cpu` to measure the CPU on a GPU box.

    python bench/tab_latency.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_S = 10.0


def photo():
    """A real 256x256 photo (scikit-image's astronaut, BSD-3-Clause) fetched from its PyPI wheel."""
    from PIL import Image

    from core.build.wheels import photo_file

    return Image.open(photo_file("astronaut.png")).convert("RGB").resize((256, 256), Image.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs; the minimum is reported")
    args = parser.parse_args()
    started = time.perf_counter()
    import torch

    import core
    from core.catalog import DEFAULT_FACE_MODEL
    from core.models.devices import default_device

    print(f"device {default_device()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"imports {time.perf_counter() - started:.1f} s")
    picture = photo()
    requests = {
        "text to image": lambda: core.text_to_image("red apple", upscale=True),
        "image to image": lambda: core.image_to_image(picture, "red apple", upscale=True),
        "faces": lambda: core.generate_faces(count=4, truncation_psi=0.7, model=DEFAULT_FACE_MODEL, upscale=False),
        "super-resolution": lambda: core.upscale(picture),
    }
    print(f"{'tab':<18}{'first call s':>14}{'warm s':>10}{'goal s':>8}  output")
    for name, request in requests.items():
        t0 = time.perf_counter()
        result = request()
        first = time.perf_counter() - t0
        warm = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            request()
            warm.append(time.perf_counter() - t0)
        size = "x".join(map(str, result.images[0].size))
        verdict = "ok" if min(warm) <= GOAL_S else "OVER"
        print(f"{name:<18}{first:>14.2f}{min(warm):>10.2f}{GOAL_S:>8.0f}  {len(result.images)} x {size} px {verdict}")


if __name__ == "__main__":
    main()
