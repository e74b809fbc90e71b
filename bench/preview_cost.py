"""What live previews cost: a text-to-image request with previews against the same request without.

    .venv/bin/python bench/preview_cost.py [--rounds 7] [--log FILE]

The embedded emoji model, "red apple", 25 DDIM steps, seed 1, in this process, one warm-up each, then
`--rounds` rounds alternating without / with previews (every step: the worst case; and every 5 steps,
the default), each request timed whole. The preview consumer only keeps the pictures (what the tab
does before Gradio sends them). Reports the median seconds and the median of the per-round ratios
with/without. Goal (issue 14): at most 5 % (ratio <= 1.05). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_description, write_log  # noqa: E402

import core  # noqa: E402

REQUEST = {"prompt": "red apple", "steps": 25, "scheduler": "DDIM", "seed": 1}


def timed(every: int | None) -> float:
    kept = []
    extra = {} if every is None else {"on_preview": kept.append, "preview_every": every}
    start = time.perf_counter()
    core.text_to_image(**REQUEST, **extra)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    lines = [cpu_description(), f"{REQUEST}, {args.rounds} rounds alternating, medians"]
    print(lines[0], flush=True)
    for every in (None, 1, 5):
        timed(every)  # warm-up
    for every in (1, 5):
        plain, previewed = [], []
        for _ in range(args.rounds):
            plain.append(timed(None))
            previewed.append(timed(every))
        ratios = [p / q for p, q in zip(previewed, plain)]
        lines.append(f"preview every {every} step(s): {statistics.median(previewed):.3f} s against "
                     f"{statistics.median(plain):.3f} s without, ratio {statistics.median(ratios):.3f} "
                     f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
        print(lines[-1], flush=True)
    if args.log:
        write_log(args.log, lines)


if __name__ == "__main__":
    main()
