"""Fair turns and Stop, measured on the running app (issue 12, items 3 and 4).

Two figures, each a ratio against the same request on an idle server, side by side in one run:

1. **Fair turns**: while one client runs a long upscale (about 2 minutes on 2 CPU cores: a 4096 px
   picture, x4 with the default upscaler, automatic tiles), another client's faces request (4 faces
   of the 64-px DCGAN, upscaled x4: FACES) takes at most 2x its idle time (goal).
2. **Stop**: right after a client cancels a 10 x 50-step text-to-image job, another client's 1-step
   text-to-image request takes at most 1.5x its idle time (goal).

The app runs as `python app.py` in a subprocess (loopback, local preset, offline), every request goes
through gradio_client, each client is its own session. Nothing else should run on the machine.

    python bench/fair_turns.py [--repeat 5] [--side 4096] [--log bench/results/fair_turns.log]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_description  # noqa: E402
from servers import free_port, log_tail, start_app, stop  # noqa: E402

FAIR_GOAL, STOP_GOAL = 2.0, 1.5


FACES = {"count": 4, "seed": 7, "model": "dcgan-digiface-64", "upscale": True}
"""The short request: 4 DCGAN faces upscaled x4 (the faces tab's default before MobileStyleGAN), named
explicitly so the figures stay comparable with earlier runs."""


def faces(client) -> float:
    """Seconds for the short faces request (FACES)."""
    t0 = time.perf_counter()
    client.predict(**FACES, api_name="/generate_faces")
    return time.perf_counter() - t0


def one_step(client) -> float:
    """Seconds for a 1-step text-to-image request."""
    t0 = time.perf_counter()
    client.predict("red apple", steps=1, seed=3, upscale="off", api_name="/text_to_image")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="measured requests per condition (median reported)")
    parser.add_argument("--side", type=int, default=4096, help="side in px of the long upscale's input")
    parser.add_argument("--log", default=str(ROOT / "bench" / "results" / "fair_turns.log"))
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    import numpy as np
    from gradio_client import Client, handle_file
    from PIL import Image

    say("fair turns and Stop on the running app (goals: faces during a long upscale <= 2x idle; "
        "1-step request after a cancel <= 1.5x idle)")
    say(cpu_description())
    say(f"command: python {' '.join(sys.argv)}")
    work = Path(tempfile.mkdtemp(prefix="fair-turns-"))
    big = work / "big.png"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (args.side // 8, args.side // 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize((args.side, args.side), Image.Resampling.BICUBIC).save(big)
    port, log_path = free_port(), work / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "IMAGEGEN_PUBLIC": "0", "GRADIO_TEMP_DIR": str(work / "gradio"),
           "IMAGEGEN_MAX_OUTPUT_SIDE": str(args.side * 4)}
    app = start_app([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env, log_path=log_path)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while True:
            try:
                long_client, short_client = Client(url, verbose=False), Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not serving yet
                if app.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the app did not start:\n{log_tail(log_path, 30)}") from None
                time.sleep(1)
        faces(short_client), one_step(short_client)  # warm-up: models loaded

        # 1. fair turns
        idle_faces = [faces(short_client) for _ in range(args.repeat)]
        t0 = time.perf_counter()
        upscale = long_client.submit(handle_file(str(big)), api_name="/upscale")
        time.sleep(5)  # the upscale is under way (its first tiles)
        busy_faces = [faces(short_client) for _ in range(args.repeat)]
        still_running = not upscale.done()
        parameters = upscale.result(timeout=3600)[2]
        long_s = time.perf_counter() - t0
        idle, busy = statistics.median(idle_faces), statistics.median(busy_faces)
        say(f"long upscale: {args.side}x{args.side} px x{parameters['scale']:g} with {parameters['model']}, "
            f"{parameters['tiles']} tiles of {parameters['tile']} px, {long_s:.1f} s "
            f"({'still running' if still_running else 'FINISHED'} when the last faces request ended)")
        say(f"faces, idle:        {' '.join(f'{s:.2f}' for s in idle_faces)} s, median {idle:.2f} s")
        say(f"faces, with upscale: {' '.join(f'{s:.2f}' for s in busy_faces)} s, median {busy:.2f} s")
        fair = busy / idle
        say(f"faces during a long upscale / idle = {fair:.2f}x, goal <= {FAIR_GOAL}x: "
            f"{'PASS' if fair <= FAIR_GOAL and still_running else 'FAIL'}")

        # 2. Stop
        idle_steps = [one_step(short_client) for _ in range(args.repeat)]
        after_cancel = []
        for i in range(args.repeat):
            job = long_client.submit("red apple", steps=50, batch_count=10, seed=100 + i, upscale="off",
                                     api_name="/text_to_image")
            time.sleep(2)  # it is denoising
            job.cancel()
            after_cancel.append(one_step(short_client))
        idle, cancelled = statistics.median(idle_steps), statistics.median(after_cancel)
        say(f"1-step, idle:            {' '.join(f'{s:.2f}' for s in idle_steps)} s, median {idle:.2f} s")
        say(f"1-step, after a cancel:  {' '.join(f'{s:.2f}' for s in after_cancel)} s, median {cancelled:.2f} s")
        ratio = cancelled / idle
        say(f"1-step after cancelling a 10 x 50-step job / idle = {ratio:.2f}x, goal <= {STOP_GOAL}x: "
            f"{'PASS' if ratio <= STOP_GOAL else 'FAIL'}")
    finally:
        stop(app)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    Path(args.log).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
