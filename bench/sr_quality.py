"""How much detail each bundled upscaler brings back: PSNR and SSIM against the original photo.

Protocol (as in the super-resolution literature, e.g. the EDSR / SwinIR evaluation scripts):
  - real photographs from the scikit-image 0.26.0 wheel (BSD-3-Clause), cropped to a multiple of 4;
  - each one downscaled x4 with bicubic (Pillow, antialiased like MATLAB's imresize);
  - enlarged x4 again by bicubic, Lanczos (Pillow) and every bundled x4 upscaler (core.upscale);
  - compared on the luma channel Y of ITU-R BT.601 (16..235, as MATLAB's rgb2ycbcr), with a border
    of 4 px (the scale) shaved off, by PSNR and SSIM (scikit-image's `structural_similarity`
    with the settings of Wang et al. 2004: Gaussian window sigma 1.5, population covariance).

Real-ESRGAN models are trained for real-world degradations (blur, noise, JPEG) and to look sharp,
not to minimise pixel error, so they can score below bicubic on this clean benchmark even where
they look better; the table reports the numbers either way.

    pip install -e .[bench]        # scikit-image
    python bench/sr_quality.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCALE = 4
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "brick.png",
          "grass.png", "gravel.png")
MODELS = ("realesr-animevideov3-x4", "RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B")


def photos() -> dict[str, Image.Image]:
    """PHOTOS as RGB images, cropped to a multiple of SCALE; fetched once from the scikit-image wheel."""
    from PIL import Image

    from core.build.wheels import photo_file

    out = {}
    for name in PHOTOS:
        image = Image.open(photo_file(name)).convert("RGB")
        w, h = image.size
        out[name.rsplit(".", 1)[0]] = image.crop((0, 0, w - w % SCALE, h - h % SCALE))
    return out


def luma(image) -> np.ndarray:
    """BT.601 luma in 16..235 (float64), as MATLAB's rgb2ycbcr, which SR papers use."""
    rgb = np.asarray(image, dtype=np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def scores(reference, candidate) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of `candidate` against `reference` on Y, the SCALE-px border shaved."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, b = luma(reference)[SCALE:-SCALE, SCALE:-SCALE], luma(candidate)[SCALE:-SCALE, SCALE:-SCALE]
    return (peak_signal_noise_ratio(a, b, data_range=255),
            structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    try:
        import skimage.metrics  # noqa: F401
    except ImportError:
        raise SystemExit("this bench needs scikit-image: pip install -e .[bench]")
    from PIL import Image

    import core

    pictures = photos()
    methods = {
        "bicubic": lambda small: small.resize((small.width * SCALE, small.height * SCALE), Image.Resampling.BICUBIC),
        "Lanczos": lambda small: small.resize((small.width * SCALE, small.height * SCALE), Image.Resampling.LANCZOS),
        **{m: (lambda small, m=m: core.upscale(small, model=m).images[0]) for m in args.models},
    }
    table: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    print(f"{'photo':<17}{'size':>10}  " + "  ".join(f"{m[:26]:>26}" for m in methods))
    for name, original in pictures.items():
        small = original.resize((original.width // SCALE, original.height // SCALE), Image.Resampling.BICUBIC)
        row = []
        for method, enlarge in methods.items():
            started = time.perf_counter()
            psnr, ssim = scores(original, enlarge(small))
            table[method].append((psnr, ssim))
            row.append(f"{psnr:6.2f} dB {ssim:.4f} {time.perf_counter() - started:5.1f}s")
        print(f"{name:<17}{small.width:>4}x{small.height:<5}  " + "  ".join(f"{cell:>26}" for cell in row), flush=True)
    print("\nmean over the photos (PSNR dB / SSIM, Y channel, x4):")
    for method, values in table.items():
        print(f"  {method:<28} {statistics.mean(v[0] for v in values):6.2f} / "
              f"{statistics.mean(v[1] for v in values):.4f}")


if __name__ == "__main__":
    main()
