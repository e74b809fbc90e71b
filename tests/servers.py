"""Start a server process for a test, wait until it serves, stop it (test-only helpers).

Used by the tests that run `app.py` as a user or a Space would (tests/browser/test_browser.py,
tests/test_spaces_deploy.py) and by those that only need a free port (tests/test_app.py).
Imported as `from servers import ...` (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port nothing listens on, on any interface (so also free for a server on 0.0.0.0)."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


def start_app(args: list[str], *, cwd: Path | str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start `args` in `cwd` with exactly `env`, as the leader of its own process group (see `stop`);
    its stdout and stderr are appended to `log_path`, its stdin is empty."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([str(arg) for arg in args], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_until_served(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float, *,
                      tail_lines: int = 40) -> None:
    """Poll `url` until it answers HTTP 200. Fails the test, with the last `tail_lines` of
    `log_path`, when `process` exits first or nothing answers within `timeout_s`."""
    what = shlex.join(str(arg) for arg in process.args[1:]) if isinstance(process.args, list) else process.args
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode} before serving {url}:\n"
                        f"{log_tail(log_path, tail_lines)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:  # urllib.error.URLError included: nothing listens yet
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer 200 at {url} within {timeout_s} s:\n"
                        f"{log_tail(log_path, tail_lines)}")
        time.sleep(0.5)


def stop(process: subprocess.Popen, wait_s: float = 15) -> None:
    """End the process and everything it started (its process group, see `start_app`): SIGTERM,
    then SIGKILL when it has not ended within `wait_s`; waits for it (at most `wait_s` after each)
    and kills what of its group outlives it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the group may outlive its leader
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of the text file `path` ("" when it does not exist)."""
    path = Path(path)
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""
