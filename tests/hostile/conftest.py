"""Fixtures of the hostile-input suite: one live app per module, a client, raw queue calls, and the
checks every case ends with (a clear message, the server alive, nothing written where it should not be).

The live app is `app.py` started as a user would (tests/servers.py), but from a copy of the app's code
in a temporary folder, with its own models folder (holding the hostile model files of `cases.py`),
its own temporary folder, Gradio cache and home: so the test can list every file the server could
write, and other work in this checkout never shows up as the server's doing. The embedded weights are
hard-linked into its weights folder (IMAGEGEN_WEIGHTS_DIR), where the tiny SD model's configs
stand in for SD 1.x's, so LoRAs and partial checkpoints load in a second.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import free_port, log_tail, start_app, stop, wait_until_served

if str(Path(__file__).parent) not in sys.path:  # `from cases import ...`, whether or not tests/hostile is a package
    sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[2]
GENERIC = "Something went wrong"
"""Start of demos.ui.GENERIC_ERROR: what a user sees for an exception core did not mean to raise."""
NO_MESSAGE = "has not enabled verbose error reporting"
"""What gradio_client says when the server sent `{"error": null}`."""
MAX_MESSAGE_CHARS = 600
"""A refusal is one readable line: never the 100,000 characters it was sent."""
START_TIMEOUT_S = 180
CALL_TIMEOUT_S = 300


@dataclass
class LiveApp:
    """A running app.py and the folders it was given."""

    url: str
    root: Path  # everything the server may touch lives below, except the weights
    app_dir: Path  # the copy of app.py, core/ and demos/ it runs from (its working directory)
    models: Path  # IMAGEGEN_MODELS_DIR
    markers: Path  # where a pickle's payload would leave its marker file
    cache: Path  # GRADIO_TEMP_DIR: uploads and served outputs
    tmp: Path  # TMPDIR: demos.ui.output_dir() lies in it (imagegen-hub-*)
    log: Path
    process: Any
    names: dict[str, str]  # hostile model file case id -> the name a request gives it (cases.py)
    _events: dict[str, int] = field(default_factory=dict)  # api_name -> event id

    def written(self) -> dict[str, tuple[int, int]]:
        """Every file the server must leave alone -> (size, mtime_ns): all of `root` (the weights
        included) but the cache and the output folders."""
        files = {}
        for top in (self.root,):
            for dirpath, dirnames, filenames in os.walk(top):
                here = Path(dirpath)
                if here == self.root:
                    dirnames[:] = [d for d in dirnames if here / d not in (self.cache, self.log.parent)]
                if here == self.tmp:
                    dirnames[:] = [d for d in dirnames if not d.startswith("imagegen-hub-")]
                for name in filenames:
                    path = here / name
                    try:
                        stat = path.lstat()
                    except FileNotFoundError:  # a temporary file gone meanwhile
                        continue
                    files[str(path)] = (stat.st_size, stat.st_mtime_ns)
        return files

    def alive(self) -> None:
        """The server runs and serves a normal request (one 64-px DCGAN face, no upscale, through the queue)."""
        assert self.process.poll() is None, f"the server died:\n{log_tail(self.log)}"
        # count, seed, psi, upscale, face_restoration, face_weight, model, size, mix_seed, mix_layers, grid
        answer = self.queue("/generate_faces", [1, 5, 1.0, False, "", 1.0, "dcgan-digiface-64", 0, -1, "none", False])
        assert answer.get("success"), f"a normal request failed: {str(answer)[:300]}\n{log_tail(self.log)}"
        gallery, seeds, _, grid = answer["output"]["data"]
        assert grid is None
        assert len(gallery) == 1 and seeds == "5"

    @staticmethod
    def assert_clear(message: str | None, *words: str | tuple[str, ...]) -> None:
        """`message` is what a user should read for a bad input: it contains each of `words` (the
        parameter's name, what to change; a tuple: one of them), is no traceback, no generic message,
        not empty, and one bounded line."""
        from cases import says

        assert message, "no message (the server sent {'error': null})"
        assert NO_MESSAGE not in message, "no message (the server sent {'error': null})"
        assert GENERIC not in message, f"a generic message instead of what to change: {message}"
        assert "Traceback" not in message and 'File "' not in message, f"a traceback: {message}"
        assert len(message) <= MAX_MESSAGE_CHARS, f"{len(message)} characters: {message[:200]}…"
        says(message, *words)

    def refused(self, call, *words: str | tuple[str, ...]) -> str:
        """Run `call` (a gradio_client request); it must be refused with a clear message. Returns it."""
        from gradio_client.exceptions import AppError

        with pytest.raises(Exception) as caught:
            call()
        message = str(caught.value)
        assert isinstance(caught.value, AppError), f"{type(caught.value).__name__}: {message[:300]}"
        self.assert_clear(message, *words)
        return message

    # --- raw HTTP: the queue's join and data routes, as a browser uses them -----------------------

    def fn_index(self, api_name: str) -> int:
        """The event id of the endpoint `api_name` ("/upscale"), from the app's config (read once)."""
        if not self._events:
            config = httpx.get(self.url + "config", timeout=30).json()
            self._events.update((d["api_name"], d["id"]) for d in config["dependencies"] if d.get("api_name"))
        return self._events[api_name.lstrip("/")]

    def queue(self, api_name: str, data: list | None = None, *, data_json: str | bytes | None = None,
              timeout_s: float = CALL_TIMEOUT_S) -> dict:
        """Send one request through the queue as the page does (POST queue/join, then read queue/data's
        server-sent events) and return what came back: {"status": HTTP status of the join, "join": its
        body} when the join was refused, else the "process_completed" message ({"success", "output":
        {"data"} or {"error"}}). `data_json` is the JSON text of the inputs, sent as it is (NaN,
        "\\ud800", or bytes that are no UTF-8); otherwise `data` is encoded by json.dumps."""
        session = uuid.uuid4().hex
        inputs = json.dumps(data).encode() if data_json is None else data_json
        inputs = inputs.encode() if isinstance(inputs, str) else inputs
        body = (b'{"data": %s, "fn_index": %d, "session_hash": "%s", "event_data": null, "trigger_id": null}'
                % (inputs, self.fn_index(api_name), session.encode()))
        with httpx.Client(base_url=self.url + "gradio_api/", timeout=timeout_s) as http:
            joined = http.post("queue/join", content=body, headers={"Content-Type": "application/json"})
            if joined.status_code != 200:
                return {"status": joined.status_code, "join": joined.text}
            with http.stream("GET", "queue/data", params={"session_hash": session}) as events:
                for line in events.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
                    if message.get("msg") == "unexpected_error":
                        return {"success": False, "output": {"error": message.get("message")}}
        raise AssertionError(f"no result for {api_name}")

    def upload(self, path: Path) -> dict:
        """Upload the file `path` as the page does (POST gradio_api/upload); returns its FileData."""
        with open(path, "rb") as handle:
            answer = httpx.post(self.url + "gradio_api/upload", files={"files": (path.name, handle)},
                                timeout=CALL_TIMEOUT_S)
        answer.raise_for_status()
        return {"path": answer.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def raw_refused(self, answer: dict, *words: str | tuple[str, ...]) -> str:
        """A `queue` answer is a refusal with a clear message (see assert_clear); returns the message.
        A join refused by Gradio's request validation (HTTP 4xx with a reason) counts as refused too."""
        if "status" in answer:
            assert 400 <= answer["status"] < 500, answer
            self.assert_clear(answer["join"], *words)
            return answer["join"]
        assert answer.get("success") is False, f"accepted: {str(answer)[:300]}"
        message = answer["output"].get("error")
        self.assert_clear(message, *words)
        return message


def _link_or_copy(src: str, dest: str) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system
        shutil.copy2(src, dest)


def _copy_weights(dest: Path) -> Path:
    """The embedded weights in `dest`: hard links to the checkout's files (160 MB, never copied), but a
    real copy of sd-configs/, whose sd1/ the tiny SD model's configs replace (cases.write_sd_files)."""
    shutil.copytree(REPO / "weights", dest, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("sd-configs"))
    shutil.copytree(REPO / "weights" / "sd-configs", dest / "sd-configs")
    shutil.rmtree(dest / "sd-configs" / "sd1")
    return dest


def _copy_app(dest: Path) -> Path:
    """A copy of the app's code (app.py, core/, demos/) in `dest`, without caches."""
    dest.mkdir()
    shutil.copy2(REPO / "app.py", dest / "app.py")
    for package in ("core", "demos"):
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def live_app(tmp_path_factory) -> LiveApp:
    """`python app.py` on a free loopback port, from a copy of the app (see the module docstring),
    with the hostile model files of `cases.model_files` in its models folder. One torch thread: the
    server shares a small machine with the test."""
    from cases import write_model_files, write_sd_files

    root = tmp_path_factory.mktemp("live")
    folders = {name: root / name for name in ("models", "markers", "cache", "tmp", "home", "logs")}
    for folder in folders.values():
        folder.mkdir()
    app_dir = _copy_app(root / "app")
    weights = _copy_weights(root / "weights")
    names = write_model_files(folders["models"], folders["markers"])
    names.update(write_sd_files(folders["models"], weights / "sd-configs", weights))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "IMAGEGEN_"))}
    env.update({
        "IMAGEGEN_WEIGHTS_DIR": str(weights), "IMAGEGEN_MODELS_DIR": str(folders["models"]),
        "IMAGEGEN_REQUESTS_PER_MINUTE": "0", "GRADIO_TEMP_DIR": str(folders["cache"]),
        "TMPDIR": str(folders["tmp"]), "HOME": str(folders["home"]), "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    })
    log = folders["logs"] / "app.log"
    process = start_app([sys.executable, "app.py", "--port", str(port)], cwd=app_dir, env=env, log_path=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_served(url, process, log, START_TIMEOUT_S)
        yield LiveApp(url, root, app_dir, folders["models"], folders["markers"], folders["cache"], folders["tmp"],
                      log, process, names)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def client(live_app):
    from gradio_client import Client

    return Client(live_app.url, verbose=False)


@pytest.fixture
def guard(live_app):
    """Wraps one case: afterwards the server is alive (a faces request works), no file outside the cache
    and output folders changed, and no pickle payload left its marker."""
    before = live_app.written()
    yield
    live_app.alive()
    after = live_app.written()
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    assert not changed, f"the server wrote outside its cache and output folders: {changed}"
    assert not any(live_app.markers.iterdir()), "a pickle's payload ran"
