"""imagegen-hub: four image generators in one Gradio page, offline, on a CPU or a GPU.

    python app.py                       # http://127.0.0.1:7860, this machine only
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 python app.py   # what a Hugging Face Space sets
    python app.py --listen --port 8080 --auth alice:secret
    python app.py --listen --auth-file users.txt   # one user:password a line (# comments)
    python app.py --share               # a public *.gradio.live link (only when asked)
    python app.py --mcp                 # also an MCP server (needs `pip install "gradio[mcp]"`)

Each tab is a `demos/<name>.py` module, runnable alone; its API endpoints keep their names here:
/text_to_image, /image_to_image, /generate_faces, /interpolate_faces, /upscale.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import os
from pathlib import Path
from typing import Any

import gradio as gr

from core.build.prepare import prepare_all
from core.models import files as model_files
from core.paths import REPO_DIR
from demos import faces, host, image_to_image, limits, png_info, serving, super_resolution, text_to_image, ui

TABS = (
    ("Text to image", text_to_image),
    ("Image to image", image_to_image),
    ("Faces", faces),
    ("Super-resolution", super_resolution),
    ("PNG Info", png_info),
)
LOCAL, EVERYWHERE = "127.0.0.1", "0.0.0.0"
DEFAULT_PORT = 7860
SERVER_NAME_ENV, SERVER_PORT_ENV = "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"
"""Set by hosts such as Hugging Face Spaces (0.0.0.0 and 7860); `--listen` and `--port` win over them."""
PUBLIC_ENV, SPACE_ENV = "IMAGEGEN_PUBLIC", "SPACE_ID"
"""The host's public-mode switch ("1" or "0", see public_mode); set by Hugging Face on every Space."""
DOT_ENTRIES = (".git", ".venv", ".cache", ".env", ".gradio")
"""Dot-folders and dot-files of the app folder blocked even before they exist (others are found at launch)."""
QUEUE_MAX = 32
"""Requests waiting beyond this are refused ("queue full") rather than piling up on a small CPU."""
QUEUE_POLL_S = 0.02
"""How often Gradio's queue looks for new work and progress (see calm_queue)."""


def cache_cleanup() -> tuple[int, int]:
    """Gradio's delete_cache (every, older than) in seconds: every `ui.keep_files_s()` (default an
    hour, $IMAGEGEN_KEEP_FILES_S), delete served files (uploads, outputs) older than that."""
    keep = ui.keep_files_s()
    return keep, keep


def build() -> gr.Blocks:
    """The hub: one gr.Tab per demo, each demo's own Blocks rendered inside, queue on."""
    # Built before the hub's context opens: a Blocks created inside another one is already placed
    # there, so rendering it again would show each tab's content twice.
    tabs = [(label, demo.__name__.rsplit(".", 1)[-1], demo.build()) for label, demo in TABS]
    with serving.Hub(title="imagegen-hub", delete_cache=cache_cleanup()) as hub:
        gr.Markdown("# imagegen-hub\nText to image, image to image, faces and super-resolution with small "
                    "embedded models that run offline on a CPU. Each tab's API is listed under "
                    "*Use via API* below.")
        with gr.Tabs() as row:
            for label, name, tab in tabs:
                with gr.Tab(label, id=name, elem_id=f"tab-{name}"):
                    tab.render()
        ui.wire_sends({name: tab for _, name, tab in tabs}, row)
        ui.wire_fills({name: tab for _, name, tab in tabs}, row)
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
    problem = "no ':'" if not sep else "an empty user name" if not user else "an empty password" if not password else ""
    if problem:  # the text is not echoed: it may be a password
        raise argparse.ArgumentTypeError(f"--auth wants USER:PASSWORD, got {problem}")
    return user, password


def read_auth_file(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The (user, password) pairs of an `--auth-file`: one `user:password` a line (the first ':'
    splits; the password may hold more), spaces around a line ignored, blank lines and lines starting
    with '#' skipped. Read once, at start.

    Raises:
        ValueError: the file cannot be read, holds no login, or a line has no ':', an empty user or
            password, or a user named before; the message gives the line number, never a password.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read --auth-file {os.fspath(path)}: {err.__class__.__name__}: "
                         f"{getattr(err, 'strerror', None) or 'not UTF-8 text'}") from None
    logins: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        user = user.strip()
        problem = ("has no ':' between user and password" if not sep else "has an empty user name" if not user
                   else "has an empty password" if not password
                   else f"names user {user!r} again (first on line {logins[user][0]})" if user in logins else "")
        if problem:
            raise ValueError(f"--auth-file {os.fspath(path)} line {number} {problem}; write user:password")
        logins[user] = (number, password)
    if not logins:
        raise ValueError(f"--auth-file {os.fspath(path)} holds no user:password line")
    return [(user, password) for user, (_, password) in logins.items()]


def _auth_file(text: str) -> list[tuple[str, str]]:
    try:
        return read_auth_file(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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
    parser.add_argument("--auth-file", type=_auth_file, metavar="PATH",
                        help="require one of the logins in PATH: one user:password a line, # comments "
                             "(read once, at start; keeps passwords out of the process list)")
    parser.add_argument("--public", action=argparse.BooleanOptionalAction, default=None,
                        help="limits for strangers (--public) or none (--no-public); default: on with "
                             f"--share, --listen, a non-loopback ${SERVER_NAME_ENV} or on a Hugging Face "
                             f"Space, else ${PUBLIC_ENV} (1 or 0), else off")
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
    only with `--share`. Login: `--auth` and the logins of `--auth-file`. Nothing outside Gradio's own
    cache and upload folders is served (`allowed_paths` stays empty: outputs are copied into the
    cache), and `blocked_paths` (see blocked_paths) keeps weights/, the models folder and the app
    folder's dot-files out even of those.

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
    logins = [*(getattr(args, "auth_file", None) or []), *([args.auth] if args.auth else [])]
    return {
        "server_name": EVERYWHERE if args.listen else (name or LOCAL),
        "server_port": DEFAULT_PORT if port is None else port,
        "share": bool(args.share),
        "auth": args.auth if logins == [args.auth] else (logins or None),
        "mcp_server": args.mcp,
        "allowed_paths": [],
        "blocked_paths": blocked_paths(),
    }


def blocked_paths() -> list[str]:
    """Absolute paths Gradio must never serve nor copy into its cache, even from its own folders:
    weights/ and the models folder (core.models.files, read now), the app folder's dot-files and
    dot-folders (.git, .venv, .cache, ...; DOT_ENTRIES also when they do not exist yet), and the host's
    $GRADIO_BLOCKED_PATHS (Gradio ignores it once a list is given). Each is given as written and
    with its links followed: Gradio compares paths lower-cased, folder by folder
    (gradio.utils.is_allowed_file), so a folder blocks everything below it."""
    dots = {REPO_DIR / name for name in DOT_ENTRIES}
    dots.update(entry for entry in REPO_DIR.iterdir() if entry.name.startswith("."))
    extra = [Path(item.strip()) for item in os.environ.get("GRADIO_BLOCKED_PATHS", "").split(",") if item.strip()]
    paths: list[str] = []
    for path in [model_files.WEIGHTS_DIR, model_files.MODELS_DIR, *sorted(dots), *extra]:
        for form in (os.path.abspath(path), os.path.realpath(path)):
            if form not in paths:
                paths.append(form)
    return paths


def public_mode(args: argparse.Namespace) -> bool:
    """Whether the host wants the limits for strangers (see public_mode_reason)."""
    return public_mode_reason(args)[0]


def public_mode_reason(args: argparse.Namespace) -> tuple[bool, str]:
    """(public, why): `--public` or `--no-public` when given; else on with `--share`, `--listen`, a
    non-loopback $GRADIO_SERVER_NAME or on a Hugging Face Space ($SPACE_ID set); else $IMAGEGEN_PUBLIC
    ("1" or "0") when set; else off.

    Raises:
        ValueError: $IMAGEGEN_PUBLIC is set to something other than 1 or 0.
    """
    flag = os.environ.get(PUBLIC_ENV, "").strip()
    if flag not in ("", "1", "0"):
        raise ValueError(f"${PUBLIC_ENV} must be 1 or 0, got {flag!r}")
    name = os.environ.get(SERVER_NAME_ENV, "").strip()
    if getattr(args, "public", None) is not None:
        return args.public, "--public" if args.public else "--no-public"
    for reason, applies in (("--share", args.share), ("--listen", args.listen),
                            (f"${SERVER_NAME_ENV}={name}", bool(name) and not is_loopback(name)),
                            (f"a Hugging Face Space (${SPACE_ENV})", bool(os.environ.get(SPACE_ENV)))):
        if applies:
            return True, reason
    if flag:
        return flag == "1", f"${PUBLIC_ENV}={flag}"
    return False, "the default on this machine only"


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches: localhost, 127.x.y.z, ::1."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def exposure_warnings(options: dict[str, Any]) -> list[str]:
    """Warnings for `launch_options`' result: the hub reachable beyond this machine (a share link,
    or an address that is not loopback) with no login."""
    if options.get("auth"):
        return []
    exposed = [what for what, applies in (
        ("a public *.gradio.live link (--share) with no login: anyone with the link", options.get("share")),
        (f"serving on {options['server_name']} (beyond this machine) with no login: anyone who reaches it",
         not is_loopback(str(options["server_name"])))) if applies]
    return [f"{what} can use the hub; add --auth USER:PASSWORD or --auth-file PATH" for what in exposed]


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, build the hub and serve it until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        options = launch_options(args)
        public, why = public_mode_reason(args)
    except ValueError as err:
        raise SystemExit(f"app.py: {err}") from None
    for warning in exposure_warnings(options):
        log.warning("%s", warning)
    try:
        chosen = limits.configure(public)
        ui.keep_files_s()  # a bad $IMAGEGEN_KEEP_FILES_S stops the start with its message
        defaults = host.load()  # a bad $IMAGEGEN_CONFIG file or IMAGEGEN_* model/example variable, too
        marks = host.apply_marks()
    except ValueError as err:
        raise SystemExit(f"app.py: {err}") from None
    log.info("host defaults: %s", host.describe(defaults))
    log.info("marks on generated pictures: %s", ", ".join(f"{name} {'on' if on else 'off'}" for name, on in marks.items()))
    options["max_file_size"] = f"{chosen.upload_mb}mb" if chosen.upload_mb else None
    log.info("public mode %s (%s); limits: %s", "on: limits for strangers" if public else "off", why,
             ", ".join(f"{name} {value}" for name, value in vars(chosen).items() if name != "public"))
    prepare_all()  # no-op when the weights exist; builds them on a fresh Space
    build().launch(css=ui.CSS, **options)


if __name__ == "__main__":
    main()
