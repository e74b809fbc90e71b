"""imagegen-hub: four image generators in one Gradio page, offline, on a CPU or a GPU.

    python app.py                       # http://127.0.0.1:7860, this machine only
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 python app.py   # what a Hugging Face Space sets
    python app.py --listen --port 8080 --auth alice:secret
    python app.py --share               # a public *.gradio.live link (only when asked)
    python app.py --mcp                 # also an MCP server (needs `pip install "gradio[mcp]"`)

Each tab is a `demos/<name>.py` module, runnable alone; its API endpoints keep their names here:
/text_to_image, /image_to_image, /generate_faces, /interpolate_faces, /upscale.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from typing import Any

import gradio as gr

from core.build.prepare import prepare_all
from demos import faces, image_to_image, super_resolution, text_to_image, ui

TABS = (
    ("Text to image", text_to_image),
    ("Image to image", image_to_image),
    ("Faces", faces),
    ("Super-resolution", super_resolution),
)
LOCAL, EVERYWHERE = "127.0.0.1", "0.0.0.0"
DEFAULT_PORT = 7860
SERVER_NAME_ENV, SERVER_PORT_ENV = "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"
"""Set by hosts such as Hugging Face Spaces (0.0.0.0 and 7860); `--listen` and `--port` win over them."""
QUEUE_MAX = 32
"""Requests waiting beyond this are refused ("queue full") rather than piling up on a small CPU."""
QUEUE_POLL_S = 0.02
"""How often Gradio's queue looks for new work and progress (see calm_queue)."""
CACHE_CLEANUP = (3600, 3600)
"""Every hour, delete served files (uploads, outputs) older than an hour."""


def build() -> gr.Blocks:
    """The hub: one gr.Tab per demo, each demo's own Blocks rendered inside, queue on."""
    # Built before the hub's context opens: a Blocks created inside another one is already placed
    # there, so rendering it again would show each tab's content twice.
    tabs = [(label, demo.__name__.rsplit(".", 1)[-1], demo.build()) for label, demo in TABS]
    with gr.Blocks(title="imagegen-hub", delete_cache=CACHE_CLEANUP) as hub:
        gr.Markdown("# imagegen-hub\nText to image, image to image, faces and super-resolution with small "
                    "embedded models that run offline on a CPU. Each tab's API is listed under "
                    "*Use via API* below.")
        for label, name, tab in tabs:
            with gr.Tab(label, id=name, elem_id=f"tab-{name}"):
                tab.render()
    return calm_queue(hub.queue(max_size=QUEUE_MAX, api_open=False))


QUEUE_TUNED_GRADIO_MAJOR = 6
"""The Gradio major version whose private queue attributes calm_queue sets (checked on 6.x)."""
QUEUE_SLEEP_ATTRIBUTES = ("sleep_when_free", "progress_update_sleep_when_free")
"""Gradio's private queue attributes (gradio/queueing.py) that calm_queue sets."""
log = logging.getLogger("imagegen-hub")


def gradio_major() -> int:
    """The installed Gradio's major version (0 when its version string cannot be read)."""
    head = str(getattr(gr, "__version__", "")).split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def calm_queue(hub: gr.Blocks, interval_s: float = QUEUE_POLL_S) -> gr.Blocks:
    """Make Gradio's queue look for new work and progress every `interval_s` instead of every 1 ms
    (new work) and 10 ms (progress), Gradio's fixed defaults off Windows (gradio/queueing.py).

    Each look takes the GIL from the generator's thread; with small models on a 2-core CPU, whose
    steps are many short torch calls, that slowed a text-to-image request by 15 % (bench/app_overhead.py).
    A request now starts up to `interval_s` later. Gradio has no public setting for this, so the
    private attributes are set only on the Gradio major version they were checked on
    (QUEUE_TUNED_GRADIO_MAJOR) and only when each exists and holds a number; otherwise nothing
    changes and a warning says so (tests/test_app_launch.py fails instead). Returns `hub`.
    """
    queue = getattr(hub, "_queue", None)
    major = gradio_major()
    usable = [name for name in QUEUE_SLEEP_ATTRIBUTES
              if isinstance(getattr(queue, name, None), (int, float))]
    if major != QUEUE_TUNED_GRADIO_MAJOR or len(usable) != len(QUEUE_SLEEP_ATTRIBUTES):
        log.warning("Gradio %s: the queue's polling interval is left at Gradio's default (calm_queue "
                    "was checked on Gradio %d.x, queue attributes found: %s)",
                    getattr(gr, "__version__", "?"), QUEUE_TUNED_GRADIO_MAJOR, usable or "none")
        return hub
    for name in usable:
        setattr(queue, name, interval_s)
    return hub


def _auth(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError(f"--auth wants USER:PASSWORD, got {text!r}")
    return user, password


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line (see the module docstring); exits with a message on bad flags."""
    parser = argparse.ArgumentParser(prog="app.py", description="Start the imagegen-hub web UI.")
    parser.add_argument("--listen", action="store_true",
                        help=f"serve on every network interface ({EVERYWHERE}) instead of "
                             f"${SERVER_NAME_ENV} or, when that is unset, {LOCAL} only")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port to serve on (default ${SERVER_PORT_ENV}, else {DEFAULT_PORT})")
    parser.add_argument("--share", action="store_true",
                        help="also open a public *.gradio.live link (off unless given)")
    parser.add_argument("--mcp", action="store_true", help="also serve the endpoints as MCP tools")
    parser.add_argument("--auth", type=_auth, metavar="USER:PASSWORD", help="require this login")
    args = parser.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error(f"--port must be 1..65535, got {args.port}")
    if args.mcp and importlib.util.find_spec("mcp") is None:
        parser.error('--mcp needs the MCP extra of gradio, which is not installed: pip install "gradio[mcp]"')
    return args


def launch_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for `gr.Blocks.launch` from parsed flags and the host's environment.

    Address: `--listen` gives 0.0.0.0; otherwise $GRADIO_SERVER_NAME when set (Hugging Face Spaces
    sets 0.0.0.0), else 127.0.0.1. Port: `--port`, else $GRADIO_SERVER_PORT, else 7860. A public link
    only with `--share`. Nothing outside Gradio's own cache and upload folders is served
    (`allowed_paths` stays empty: outputs are copied into the cache).

    Raises:
        ValueError: $GRADIO_SERVER_PORT is set but is not a port number.
    """
    name = os.environ.get(SERVER_NAME_ENV, "").strip()
    port_text = os.environ.get(SERVER_PORT_ENV, "").strip()
    port = args.port
    if port is None and port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"${SERVER_PORT_ENV} must be a port number 1..65535, got {port_text!r}")
        port = int(port_text)
    return {
        "server_name": EVERYWHERE if args.listen else (name or LOCAL),
        "server_port": DEFAULT_PORT if port is None else port,
        "share": bool(args.share),
        "auth": args.auth,
        "mcp_server": args.mcp,
        "allowed_paths": [],
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, build the hub and serve it until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        options = launch_options(args)
    except ValueError as err:
        raise SystemExit(f"app.py: {err}") from None
    prepare_all()  # no-op when the weights exist; builds them on a fresh Space
    build().launch(css=ui.CSS, **options)


if __name__ == "__main__":
    main()
