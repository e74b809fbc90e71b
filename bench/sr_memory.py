"""Peak memory of a big upscale: tiles written into the output as they finish vs the whole picture at once.

Each run is its own process, so its peak RSS (max resident set size) is its own:

  ours, 4096 px      core.upscale of a 4096x4096 photo, x4 -> 16384x16384, on the CPU, then the
                     lossless PNG the tab offers for download (core.imaging.io.save_png)
  ours, 1024 px      the same for a 1024x1024 photo (-> 4096x4096)
  whole, 1024 px     the same 1024x1024 photo through the net in one piece (spandrel's descriptor
                     on the whole tensor: what a tool without tiling does); at 4096 px it would
                     need tens of GiB, so it is measured at 1024 px only

The photo is scikit-image's astronaut (BSD-3-Clause) resized with Lanczos. Model: the default,
realesr-animevideov3-x4. Goal (issue 5): ours at 4096 px <= 4 GiB peak RSS.

    python bench/sr_memory.py [--runs "ours, 4096 px" ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RUNS = ("whole, 1024 px", "ours, 1024 px", "ours, 4096 px")
GOAL_GIB = 4.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(label: str) -> dict:
    """One run in this process; returns seconds, output size and peak RSS before and after."""
    import torch
    from PIL import Image

    import core
    from core.imaging.io import save_png, to_pil, to_tensor
    from core.models import upscalers

    side = int(label.split(", ")[1].split()[0])
    photo = Image.open(Path(__file__).resolve().parent.parent / ".cache" / "photos" / "astronaut.png")
    photo = photo.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    core.upscale(photo.resize((64, 64)))  # load the model
    loaded = peak_rss_mb()
    started = time.perf_counter()
    if label.startswith("whole"):
        up = upscalers.get_upscaler()
        with torch.inference_mode():
            image = to_pil(up(to_tensor(photo)))[0]
    else:
        image = core.upscale(photo).images[0]
    seconds = time.perf_counter() - started
    upscaled = peak_rss_mb()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        size = save_png(image, Path(folder) / "out.png").stat().st_size
        png_seconds = time.perf_counter() - started
    return {"label": label, "seconds": seconds, "output": list(image.size), "model_loaded_mb": loaded,
            "after_upscale_mb": upscaled, "peak_mb": peak_rss_mb(), "png_seconds": png_seconds,
            "png_mb": size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child)))
        return
    from core.build.wheels import photo_file

    photo_file("astronaut.png")  # fetched once, before the children read it
    rows = {}
    for label in args.runs:
        done = subprocess.run([sys.executable, __file__, "--child", label], capture_output=True, text=True)
        if done.returncode:
            print(f"{label}: FAILED (exit {done.returncode})\n{done.stderr[-2000:]}", flush=True)
            continue
        rows[label] = row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{label:>15}: {row['seconds']:7.1f} s -> {row['output'][0]}x{row['output'][1]}, peak RSS "
              f"{row['after_upscale_mb']:7.0f} MB upscaling (model loaded: {row['model_loaded_mb']:.0f} MB), "
              f"{row['peak_mb']:7.0f} MB with the PNG ({row['png_mb']:.0f} MB written in {row['png_seconds']:.1f} s)",
              flush=True)
    if "whole, 1024 px" in rows and "ours, 1024 px" in rows:
        ratio = rows["ours, 1024 px"]["after_upscale_mb"] / rows["whole, 1024 px"]["after_upscale_mb"]
        print(f"1024 px, ours / whole picture at once: peak RSS {ratio:.2f}x")
    if "ours, 4096 px" in rows:
        gib = rows["ours, 4096 px"]["peak_mb"] / 1024
        print(f"4096 px x4: peak RSS {gib:.2f} GiB, {'meets' if gib <= GOAL_GIB else 'misses'} the goal <= {GOAL_GIB} GiB")


if __name__ == "__main__":
    main()
