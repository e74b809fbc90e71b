"""What the web app adds to a generation: the same request through the app vs a direct core call.

The server is the real hub, built and launched as `python app.py --port N` does (app.build() with
app.launch_options), in this process so that server, clients and direct calls share one set of
torch threads and never compete for the two cores of a small machine. Two clients, as API users
call it:
  gradio_client   `Client.predict(...)`: Gradio's queue, the result, the picture downloaded
  HTTP            Gradio's REST API, as curl does: POST /gradio_api/call/text_to_image, read the
                  event stream to `complete`, download the picture (httpx, one connection)
The direct call is `core.text_to_image` with the same arguments in this process. All use the
embedded 32x32 emoji model (a tiny pipeline) and the same loaded model; the three alternate run by
run, so none gets a warmer cache or a quieter CPU. This machine's speed drifts by up to a third
from minute to minute (a shared host), so take the medians of many runs (--repeat).

gradio_client reads its event stream in a loop that sleeps 50 ms whenever no message is waiting
(gradio_client/utils.py), so a request costs it about 120 ms more than the same request over
HTTP; the HTTP column is what the server itself adds.

Requests:
  tab default     "red apple", 25 DDIM steps, guidance 5, upscale x4 -> 128 px (the tab's button)
  1 step          the same with 1 step and no upscale: almost no model work, so the gap between
                  the two columns is the app's fixed cost per request

Reported: median seconds of --repeat warm runs each way, the ratios to the direct call (goal
<= 1.05x for the tab default through gradio_client) and the fixed cost in milliseconds.

    python bench/app_overhead.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
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
PAUSE_S = 1.0
"""Rest between runs, so neither process's idle worker threads still hold a core when the other works."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int):
    """The hub as `python app.py --port PORT` serves it, launched in this process; returns its Blocks."""
    import app

    blocks = app.build()
    blocks.launch(**app.launch_options(app.parse_args(["--port", str(port)])), prevent_thread_lock=True,
                  quiet=True)
    return blocks


def rest_call(http, base: str, api_name: str, defaults: dict, **kwargs) -> list:
    """One call of Gradio's REST API: every input (its default unless given), the event stream read
    to `complete`, each gallery picture downloaded. Returns the output values."""
    data = [kwargs.get(name, default) for name, default in defaults.items()]
    event = http.post(f"{base}gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    kind = None
    with http.stream("GET", f"{base}gradio_api/call/{api_name}/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: ") and kind in ("complete", "error"):
                if kind == "error":
                    raise RuntimeError(line)
                outputs = json.loads(line[len("data: "):])
                break
    for item in outputs[0]:
        http.get(item["image"]["url"]).raise_for_status()
    return outputs


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="warm runs each way; the median is reported")
    args = parser.parse_args()
    import httpx
    from gradio_client import Client

    import core

    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}/"
    try:
        client = Client(base, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/text_to_image"]
        defaults = {p["parameter_name"]: p.get("parameter_default") for p in api["parameters"]}
        http = httpx.Client(timeout=120)
        print(f"{'request':<13}{'direct s':>10}{'HTTP s':>9}{'client s':>10}{'HTTP/direct':>13}"
              f"{'client/direct':>15}{'fixed cost ms (HTTP, client)':>30}")
        ratios = {}
        for label, settings in REQUESTS.items():
            ways = {
                "direct": lambda: core.text_to_image(PROMPT, seed=0, **settings),
                "HTTP": lambda: rest_call(http, base, "text_to_image", defaults, prompt=PROMPT, seed=0, **settings),
                "client": lambda: client.predict(PROMPT, seed=0, api_name="/text_to_image", **settings),
            }
            for way in ways.values():  # warm-up: loads the model on each side
                way()
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(args.repeat):
                for name, way in ways.items():
                    time.sleep(PAUSE_S)
                    times[name].append(timed(way))
            d, h, c = (statistics.median(times[name]) for name in ways)
            ratios[label] = c / d
            print(f"{label:<13}{d:>10.3f}{h:>9.3f}{c:>10.3f}{h / d:>12.2f}x{c / d:>14.2f}x"
                  f"{(h - d) * 1000:>18.0f}, {(c - d) * 1000:.0f}", flush=True)
        verdict = "meets" if ratios["tab default"] <= GOAL else "misses"
        print(f"tab default through gradio_client: {ratios['tab default']:.3f}x the direct call, {verdict} "
              f"the goal <= {GOAL}x")
    finally:
        server.close()


if __name__ == "__main__":
    main()
