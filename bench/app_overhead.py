"""What the web app adds to a generation: the same request through gradio_client vs a direct core call.

The server is the real hub (`python app.py --port N`, its own process, as a user starts it); the
client is gradio_client, which sends the request through Gradio's queue, waits for the result and
downloads the picture, as any API user does. The direct call is `core.text_to_image` with the same
arguments in this process. Both use the embedded 32x32 emoji model (a tiny pipeline) and alternate
run by run on an otherwise idle machine, so neither gets a warmer cache or a quieter CPU.

Requests:
  tab default     "red apple", 25 DDIM steps, guidance 5, upscale x4 -> 128 px (the tab's button)
  1 step          the same with 1 step and no upscale: almost no model work, so the gap between
                  the two columns is the app's fixed cost per request

Reported: median seconds of --repeat warm runs each way, the ratio app/direct (goal <= 1.05x for
the tab default) and the fixed cost in milliseconds.

    python bench/app_overhead.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL = 1.05
REQUESTS = {
    "tab default": {"steps": 25, "upscale": True},
    "1 step": {"steps": 1, "upscale": False},
}
PROMPT = "red apple"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """`python app.py --port PORT` in its own process; returns once it answers (at most 120 s)."""
    from gradio_client import Client

    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            Client(f"http://127.0.0.1:{port}/", verbose=False)
            return server
        except Exception:  # not up yet
            if server.poll() is not None:
                raise SystemExit(f"app.py exited with code {server.returncode}")
            time.sleep(0.5)
    server.kill()
    raise SystemExit("app.py did not answer within 120 s")


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="warm runs each way; the median is reported")
    args = parser.parse_args()
    from gradio_client import Client

    import core

    port = free_port()
    server = start_server(port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        print(f"{'request':<13}{'direct s':>10}{'app s':>9}{'app/direct':>12}{'fixed cost ms':>15}")
        ratios = {}
        for label, settings in REQUESTS.items():
            def direct():
                return core.text_to_image(PROMPT, seed=0, **settings)

            def through_app():
                return client.predict(PROMPT, seed=0, api_name="/text_to_image", **settings)

            direct(), through_app()  # warm-up: loads the model on each side
            times: dict[str, list[float]] = {"direct": [], "app": []}
            for _ in range(args.repeat):
                times["direct"].append(timed(direct))
                times["app"].append(timed(through_app))
            d, a = statistics.median(times["direct"]), statistics.median(times["app"])
            ratios[label] = a / d
            print(f"{label:<13}{d:>10.3f}{a:>9.3f}{a / d:>11.2f}x{(a - d) * 1000:>15.0f}", flush=True)
        verdict = "meets" if ratios["tab default"] <= GOAL else "misses"
        print(f"tab default: app/direct {ratios['tab default']:.3f}x, {verdict} the goal <= {GOAL}x")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
