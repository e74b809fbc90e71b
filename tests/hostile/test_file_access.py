"""Hostile file access, replayed against the live app and against core (issue 12, item 1 and the
models folder's links).

The app runs as a user starts it (`python app.py --port N`, in its own process: tests/servers.py)
with its own Gradio upload folder ($GRADIO_TEMP_DIR) and models folder ($IMAGEGEN_MODELS_DIR) under
a temporary folder. Canary pictures lie in the app folder and in weights/ (removed afterwards); each
case checks that nothing of them comes back and that the answer says which input was refused.

Kinds: Gradio's file route (traversal, URL-encoded and double-encoded traversal, absolute and
relative paths, dot-folders, a symlinked upload), image payloads sent through the queue by raw HTTP
(FileData without `meta`, bare paths, URLs, a symlinked upload), the blocked paths when the host
allows the whole app folder, and the models folder's links (listing and loading, live and in core).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import secrets
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image
from servers import free_port, log_tail, start_app, stop, wait_until_served

from core import catalog
from core.errors import ModelNotFound
from core.models import diffusion, face_restorers, files, stable_diffusion, upscalers
from core.paths import REPO_DIR, WEIGHTS_DIR

UPSCALER = WEIGHTS_DIR / "upscalers" / f"{catalog.DEFAULT_UPSCALER}.safetensors"
"""A real, small upscaler file (1.2 MB) copied where a test needs one."""
CANARY_COLOUR = (13, 37, 211)
NOT_AN_UPLOAD = "image: only pictures uploaded to this page are accepted"
MODEL_LINK_OUT = "is a link to a file outside"


@dataclass
class Stage:
    """Where the hostile files lie: canaries in the app folder and weights/, a folder outside
    everything, and the models folder the server is given."""
    root: Path
    uploads: Path           # the server's $GRADIO_TEMP_DIR
    models: Path            # the server's $IMAGEGEN_MODELS_DIR
    outside: Path           # neither models folder, weights/ nor uploads
    app_canary: Path        # canary-<random>.png at the app folder's root
    weights_canary: Path    # weights/canary-<random>.png


@dataclass
class Live:
    base: str
    port: int
    stage: Stage
    config: dict
    client: Client


def _canary_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), CANARY_COLOUR).save(buffer, "PNG")
    return buffer.getvalue()


def _tiny_safetensors(path: Path, names: list[str]) -> Path:
    """A .safetensors file holding 2x2 float32 zeros under each of `names` (enough for its kind)."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: np.zeros((2, 2), np.float32) for name in names}, str(path))
    return path


def _fill_models_folder(models: Path, outside: Path) -> None:
    """The models folder: real files, links that stay inside, and links that lead out of it (into a
    folder outside, and into weights/), one of each kind the lists show."""
    shutil.copy(UPSCALER, models / "inside.safetensors")
    (models / "ESRGAN").mkdir()
    (models / "ESRGAN" / "inside-link.safetensors").symlink_to(models / "inside.safetensors")
    (models / "ESRGAN" / "relative-link.safetensors").symlink_to(Path("..") / "inside.safetensors")
    shutil.copy(UPSCALER, outside / "secret-upscaler.safetensors")
    (models / "outside-link.safetensors").symlink_to(outside / "secret-upscaler.safetensors")
    (models / "weights-link.safetensors").symlink_to(UPSCALER)
    _tiny_safetensors(outside / "secret-lora.safetensors", ["lora_unet_down.lora_down.weight"])
    (models / "loras").mkdir()
    (models / "loras" / "outside-lora.safetensors").symlink_to(outside / "secret-lora.safetensors")
    _tiny_safetensors(outside / "secret-ckpt.safetensors", ["model.diffusion_model.input.weight"])
    (models / "checkpoints").mkdir()
    (models / "checkpoints" / "outside-ckpt.safetensors").symlink_to(outside / "secret-ckpt.safetensors")
    pipeline = outside / "secret-pipeline"
    pipeline.mkdir()
    (pipeline / "model_index.json").write_text("{}")
    (models / "checkpoints" / "outside-pipeline").symlink_to(pipeline)
    (outside / "more").mkdir()
    shutil.copy(UPSCALER, outside / "more" / "hidden-upscaler.safetensors")
    (models / "linked-folder").symlink_to(outside / "more")


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> Stage:
    root = tmp_path_factory.mktemp("hostile-files")
    token = secrets.token_hex(6)
    stage = Stage(root, root / "uploads", root / "models", root / "outside",
                  REPO_DIR / f"canary-{token}.png", WEIGHTS_DIR / f"canary-{token}.png")
    for folder in (stage.uploads, stage.models, stage.outside):
        folder.mkdir()
    _fill_models_folder(stage.models, stage.outside)
    try:
        for canary in (stage.app_canary, stage.weights_canary):
            canary.write_bytes(_canary_png())
        yield stage
    finally:
        for canary in (stage.app_canary, stage.weights_canary):
            canary.unlink(missing_ok=True)


def _start(stage: Stage, log: Path, **extra_env: str):
    port = free_port()
    env = {name: value for name, value in os.environ.items()  # no host settings but the weights' place
           if not name.startswith(("GRADIO_", "IMAGEGEN_")) or name == "IMAGEGEN_WEIGHTS_DIR"}
    env.update({"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
                "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(stage.uploads),
                "IMAGEGEN_MODELS_DIR": str(stage.models), **extra_env})
    process = start_app([sys.executable, "app.py", "--port", str(port)], cwd=REPO_DIR, env=env, log_path=log)
    base = f"http://127.0.0.1:{port}"
    wait_until_served(base + "/", process, log, timeout_s=180)
    return process, port, base


@pytest.fixture(scope="module")
def live(stage) -> Live:
    """The app as `python app.py` starts it (default flags), with the stage's folders."""
    log = stage.root / "app.log"
    process, port, base = _start(stage, log)
    try:
        config = json.loads(_get(port, "/config")[1])
        yield Live(base, port, stage, config, Client(base, verbose=False))
    finally:
        stop(process)
        print(log_tail(log, 20))


@pytest.fixture(scope="module")
def small_upload(tmp_path_factory) -> str:
    """A genuine picture on the test's side, for handle_file (which uploads it)."""
    path = tmp_path_factory.mktemp("pictures") / "small.png"
    Image.new("RGB", (16, 12), (200, 40, 40)).save(path)
    return str(path)


def _get(port: int, target: str) -> tuple[int, bytes]:
    """GET `target` sent exactly as written (http.client does not normalise `..` or decode `%`)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", target)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def queue_call(live: Live, api_name: str, image, inputs: int | None = None) -> dict:
    """Send `image` as the first input of `api_name` (the others at their defaults; only the first
    `inputs` of them when given) through Gradio's queue as a browser does: POST /gradio_api/queue/join,
    then read /gradio_api/queue/data (server-sent events) up to the event's `process_completed`
    message, which is returned."""
    dependency = next(d for d in live.config["dependencies"] if d.get("api_name") == api_name)
    values = {c["id"]: c.get("props", {}).get("value") for c in live.config["components"]}
    data = [values.get(component) for component in dependency["inputs"]]
    data[0] = image
    data = data[:inputs]
    session = uuid.uuid4().hex[:12]
    body = json.dumps({"data": data, "fn_index": dependency["id"], "session_hash": session,
                       "trigger_id": None, "event_data": None})
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=120)
    connection.request("POST", "/gradio_api/queue/join", body, {"Content-Type": "application/json"})
    joined = connection.getresponse()
    assert joined.status == 200, joined.read()
    joined.read()
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=120)
    connection.request("GET", f"/gradio_api/queue/data?session_hash={session}")
    stream = connection.getresponse()
    for raw in stream:
        line = raw.decode().strip()
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                connection.close()
                return message
    raise AssertionError(f"{api_name}: the event stream ended without process_completed")


def _assert_refused(message: dict, words: str | None = NOT_AN_UPLOAD) -> None:
    """The event failed, returned no output, and (when `words`) its message says which input and why."""
    assert message["success"] is False, message
    output = message["output"]
    assert not output.get("data"), output
    if words is not None:
        assert words in (output.get("error") or ""), output


# --- Gradio's file route -------------------------------------------------------------------------

def _route_targets(stage: Stage) -> list[tuple[str, str]]:
    """(case, request target) pairs aimed at the canaries, .git and the models folder."""
    app_canary, weights_canary = str(stage.app_canary), str(stage.weights_canary)
    up = str(stage.uploads)
    climb = "/".join([".."] * (len(stage.uploads.parts) - 1))  # from the upload folder to /
    from_uploads = f"{up}/{climb}{app_canary}"
    targets = {
        "absolute app canary": app_canary,
        "absolute weights canary": weights_canary,
        "relative app canary": stage.app_canary.name,
        "relative weights canary": f"weights/{stage.weights_canary.name}",
        "dot-folder": ".git/config",
        "models folder file": str(stage.models / "inside.safetensors"),
        "traversal from the upload folder": from_uploads,
        "encoded traversal": f"{up}/{quote(climb, safe='')}{quote(app_canary, safe='')}",
        "double-encoded traversal": quote(quote(from_uploads, safe=""), safe=""),
        "encoded dots only": f"{up}/{climb.replace('..', '%2e%2e')}{app_canary}",
        "relative climb": f"../{REPO_DIR.name}/{stage.app_canary.name}",
        "system file": "/etc/hostname",
    }
    cases = []
    for case, path in targets.items():
        cases.append((case, f"/gradio_api/file={path}"))
        cases.append((f"{case} (the older /file/ route)", f"/gradio_api/file/{path}"))
    return cases


def test_the_file_route_serves_none_of_the_app_or_weights_or_models(live):
    canary = _canary_png()
    secrets_on_disk = [canary, (REPO_DIR / ".git" / "config").read_bytes()[:40],
                       (live.stage.models / "inside.safetensors").read_bytes()[:40]]
    served = []
    for case, target in _route_targets(live.stage):
        status, body = _get(live.port, target)
        leaked = any(secret in body for secret in secrets_on_disk)
        if status == 200 or leaked:
            served.append(f"{case}: {target} -> {status} {body[:60]!r}")
        elif status == 403:
            assert b"File not allowed" in body, (case, body)
    assert not served, "served:\n" + "\n".join(served)


def test_a_symlinked_upload_is_neither_served_nor_processed(live):
    """A link placed in the upload folder (as a hostile archive or another app could) that points at
    the canary: Gradio's route and both image endpoints resolve it and refuse it."""
    folder = live.stage.uploads / secrets.token_hex(8)
    folder.mkdir()
    link = folder / "looks-uploaded.png"
    link.symlink_to(live.stage.app_canary)
    status, body = _get(live.port, f"/gradio_api/file={link}")
    assert status == 403 and _canary_png() not in body
    for api_name in ("upscale", "image_to_image"):
        _assert_refused(queue_call(live, api_name, {"path": str(link)}))
        _assert_refused(queue_call(live, api_name, {"path": str(link), "meta": {"_type": "gradio.FileData"}}),
                        words=None)  # Gradio's own refusal, before the event (named: test_gradio_refusals_name_the_input)


# --- image payloads through the queue --------------------------------------------------------------

def _payloads(live: Live) -> dict[str, object]:
    """Image payloads naming server files instead of uploading them (each one must be refused)."""
    stage = live.stage
    climb = "/".join([".."] * (len(stage.uploads.parts) - 1))
    return {
        "FileData without meta, app canary": {"path": str(stage.app_canary)},
        "FileData without meta, weights canary": {"path": str(stage.weights_canary)},
        "FileData without meta, relative path": {"path": stage.app_canary.name},
        "FileData without meta, traversal out of the upload folder": {"path": f"{stage.uploads}/{climb}"
                                                                              f"{stage.app_canary}"},
        "FileData without meta, the upload folder itself": {"path": str(stage.uploads)},
        "FileData with only a file URL": {"path": None, "url": f"/gradio_api/file={stage.app_canary}"},
        "FileData with only an http URL": {"path": None,
                                           "url": f"{live.base}/gradio_api/file={stage.app_canary}"},
        "FileData without meta, models folder file": {"path": str(stage.models / "inside.safetensors")},
    }


@pytest.mark.parametrize("api_name", ["upscale", "image_to_image"])
def test_image_payloads_naming_server_files_are_refused_with_the_inputs_name(live, api_name):
    for case, payload in _payloads(live).items():
        message = queue_call(live, api_name, payload)
        assert message["success"] is False, case
        words = "a URL is not fetched by this server" if "http URL" in case else NOT_AN_UPLOAD
        assert words in (message["output"].get("error") or ""), (case, message["output"])
        assert str(live.stage.app_canary) not in json.dumps(message), case  # the path is not echoed


@pytest.mark.parametrize("api_name", ["upscale", "image_to_image"])
def test_gradio_refuses_filedata_with_meta_and_bare_paths_before_the_event(live, api_name):
    """A FileData with `meta` outside the upload folder, or a bare string: Gradio refuses it itself
    while preparing the event (its upload-folder check, its data model), so nothing is processed."""
    for payload in ({"path": str(live.stage.app_canary), "meta": {"_type": "gradio.FileData"}},
                    {"path": str(live.stage.weights_canary), "meta": {"_type": "gradio.FileData"}},
                    str(live.stage.app_canary)):
        _assert_refused(queue_call(live, api_name, payload), words=None)


@pytest.mark.parametrize("api_name, label", [("upscale", "Low-res picture"), ("image_to_image", "Start picture")])
def test_gradio_refusals_name_the_input(live, api_name, label):
    """Gradio refuses these before the event; demos.serving.Hub turns its bare error into one that
    names the input and says to upload the file."""
    for payload in ({"path": str(live.stage.app_canary), "meta": {"_type": "gradio.FileData"}},
                    str(live.stage.app_canary)):
        message = queue_call(live, api_name, payload)
        _assert_refused(message, words=f"{label}: only files uploaded to this page are accepted")
        assert str(live.stage.app_canary) not in json.dumps(message)


@pytest.mark.parametrize("api_name, label", [("upscale", "Low-res picture"), ("image_to_image", "Start picture")])
def test_a_url_in_place_of_a_file_is_refused_before_the_server_fetches_it(live, api_name, label):
    """gradio_client's handle_file(url) sends the URL as the path; Gradio would download it (and then
    answer a bare error). demos.serving.Hub refuses it first, by name."""
    for payload in ({"path": "http://127.0.0.1:9/picture.png", "meta": {"_type": "gradio.FileData"}},
                    {"path": None, "url": "https://example.invalid/picture.png", "meta": {"_type": "gradio.FileData"}}):
        _assert_refused(queue_call(live, api_name, payload), words=f"{label}: a URL is not fetched by this server")


def test_too_few_inputs_get_the_count_not_a_bare_error(live):
    message = queue_call(live, "upscale", None, inputs=3)
    _assert_refused(message, words="This endpoint takes 7 inputs and got 3")


def test_data_urls_and_genuine_uploads_still_work(live, small_upload):
    """What the page and gradio_client send stays accepted: an upload (handle_file) and a data: URL."""
    (_, after), _, parameters = live.client.predict(handle_file(small_upload), api_name="/upscale")
    assert Image.open(after).size == (64, 48) and parameters["input_size"] == [16, 12]
    encoded = base64.b64encode(Path(small_upload).read_bytes()).decode()
    message = queue_call(live, "upscale", {"path": None, "url": f"data:image/png;base64,{encoded}"})
    assert message["success"] is True, message["output"]


def test_the_super_resolution_examples_are_served_from_gradios_cache(live):
    """gr.Examples copies demos/examples/*.png into the upload folder; the page sends those copies,
    which image_source accepts (the originals in the app folder are never served)."""
    cached = sorted(str(path) for path in live.stage.uploads.rglob("astronaut-128.png"))
    assert cached, "the example was not copied into Gradio's upload folder"
    status, _ = _get(live.port, f"/gradio_api/file={cached[0]}")
    assert status == 200
    message = queue_call(live, "upscale", {"path": cached[0], "meta": {"_type": "gradio.FileData"}})
    assert message["success"] is True, message["output"]
    original = REPO_DIR / "demos" / "examples" / "astronaut-128.png"
    _assert_refused(queue_call(live, "upscale", {"path": str(original)}))
    assert _get(live.port, f"/gradio_api/file={original}")[0] == 403


# --- blocked paths, when the host allows the whole app folder ---------------------------------------

def test_blocked_paths_hold_even_when_the_host_allows_the_app_folder(stage):
    """$GRADIO_ALLOWED_PATHS naming the app folder and the temporary folder (a host's mistake): the
    canary at the app folder's root is then served (the allowance works), but weights/, the models
    folder and dot-folders stay blocked (app.blocked_paths)."""
    log = stage.root / "allowed.log"
    process, port, _ = _start(stage, log, GRADIO_ALLOWED_PATHS=f"{REPO_DIR},{stage.root}")
    try:
        assert _get(port, f"/gradio_api/file={stage.app_canary}")[0] == 200  # allowed, so the rest is the block
        for path in (stage.weights_canary, REPO_DIR / ".git" / "config", REPO_DIR / ".venv" / "pyvenv.cfg",
                     stage.models / "inside.safetensors", REPO_DIR / "weights" / "README.md"):
            status, body = _get(port, f"/gradio_api/file={path}")
            assert status == 403 and b"File not allowed" in body, (path, status, body[:80])
    finally:
        stop(process)


# --- the models folder's links, live --------------------------------------------------------------

@pytest.mark.parametrize("model, words", [
    ("outside-link.safetensors", MODEL_LINK_OUT),
    ("weights-link.safetensors", MODEL_LINK_OUT),
    ("linked-folder/hidden-upscaler.safetensors", MODEL_LINK_OUT),
    ("../outside/secret-upscaler.safetensors", "'..' is not accepted"),
    ("ESRGAN/../inside.safetensors", "'..' is not accepted"),
    ("ESRGAN/../../outside/secret-upscaler.safetensors", "'..' is not accepted"),
    ("<outside>/secret-upscaler.safetensors", "outside the allowed folders"),
    ("<app canary>", "outside the allowed folders"),
])
def test_model_names_leading_out_of_the_models_folder_are_refused_live(live, small_upload, model, words):
    model = (model.replace("<outside>", str(live.stage.outside))
             .replace("<app canary>", str(live.stage.app_canary)))
    with pytest.raises(Exception, match="model") as caught:
        live.client.predict(handle_file(small_upload), model=model, api_name="/upscale")
    assert words in str(caught.value)
    assert str(live.stage.outside) not in str(caught.value)  # never a server path the caller did not give
    with pytest.raises(Exception, match=words):
        live.client.predict(handle_file(small_upload), face_restoration=model, api_name="/upscale")


def test_a_checkpoint_link_out_of_the_models_folder_is_refused_live(live):
    with pytest.raises(Exception, match=MODEL_LINK_OUT):
        live.client.predict("a cat", model="checkpoints/outside-ckpt.safetensors", api_name="/text_to_image")


def test_links_inside_the_models_folder_work_live(live, small_upload):
    for model in ("ESRGAN/inside-link.safetensors", "ESRGAN/relative-link.safetensors"):
        (_, after), _, _ = live.client.predict(handle_file(small_upload), model=model, api_name="/upscale")
        assert Image.open(after).size == (64, 48)


# --- the models folder's links, in core -------------------------------------------------------------

@pytest.fixture
def linked_models(models_dir, tmp_path) -> Path:
    """models_dir (conftest: files.MODELS_DIR patched) filled as the live server's models folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    _fill_models_folder(models_dir, outside)
    return models_dir


def test_links_out_of_the_models_folder_are_not_listed(linked_models):
    assert files.scan("upscaler") == ["ESRGAN/inside-link.safetensors", "ESRGAN/relative-link.safetensors",
                                      "inside.safetensors"]
    assert files.scan("lora") == [] and catalog.loras() == []
    assert files.scan("checkpoint") == []
    listed = [value for _, value in catalog.upscalers()]
    assert "inside.safetensors" in listed and "ESRGAN/inside-link.safetensors" in listed
    assert not any("outside" in value or "weights-link" in value or "linked-folder" in value for value in listed)
    assert not any("outside" in name for name in catalog.diffusion_models())
    assert face_restorers.choices() == []  # none of the upscalers is a face restorer; no outside file read


def test_a_link_inside_the_models_folder_is_listed_and_a_linked_pipeline_folder_inside_too(models_dir):
    pipeline = models_dir / "pipelines" / "real"
    pipeline.mkdir(parents=True)
    (pipeline / "model_index.json").write_text("{}")
    (models_dir / "pipelines" / "alias").symlink_to(pipeline)
    _tiny_safetensors(models_dir / "loras" / "style.safetensors", ["lora_unet_a.lora_down.weight"])
    (models_dir / "loras" / "same-style.safetensors").symlink_to(models_dir / "loras" / "style.safetensors")
    assert files.scan("checkpoint") == ["pipelines/alias", "pipelines/real"]
    assert files.scan("lora") == ["loras/same-style.safetensors", "loras/style.safetensors"]


@pytest.mark.parametrize("name, words", [
    ("outside-link.safetensors", MODEL_LINK_OUT),
    ("weights-link.safetensors", MODEL_LINK_OUT),
    ("loras/outside-lora.safetensors", MODEL_LINK_OUT),
    ("checkpoints/outside-ckpt.safetensors", MODEL_LINK_OUT),
    ("checkpoints/outside-pipeline", MODEL_LINK_OUT),
    ("linked-folder/hidden-upscaler.safetensors", MODEL_LINK_OUT),
    ("../outside/secret-upscaler.safetensors", "'..' is not accepted"),
    ("ESRGAN/../inside.safetensors", "'..' is not accepted"),
    ("/etc/hostname", "outside the allowed folders"),
    (f"{'x' * 1000}.safetensors", "not found"),  # over 1024: InvalidInput (check_name)
])
@pytest.mark.usefixtures("offline")
def test_every_model_loader_refuses_names_leading_out_of_the_models_folder(linked_models, name, words):
    """Upscalers, face restorers, checkpoints (and their settings) and LoRAs (resolve_file) keep the
    reason; a suffix-less name is also a Hub id or a registry name to the diffusion loaders, which then
    say it matches nothing (no outside file is read either way)."""
    loaders = [files.resolve_file, upscalers.get_upscaler, face_restorers.get_restorer]
    if Path(name).suffix:
        loaders += [stable_diffusion.load, diffusion.settings]
    for load in loaders:
        with pytest.raises(ModelNotFound, match=words) as caught:
            load(name)
        assert str(linked_models.parent / "outside") not in str(caught.value), load.__name__
        assert len(str(caught.value)) < 400, load.__name__
    if not Path(name).suffix and not stable_diffusion.is_hub_id(name):
        with pytest.raises(ModelNotFound):
            diffusion.settings(name)


def test_hub_ids_and_files_inside_still_resolve(linked_models):
    inside = (linked_models / "inside.safetensors").resolve()
    assert files.resolve_file("ESRGAN/inside-link.safetensors") == inside
    assert files.resolve_file(str(linked_models / "inside.safetensors")) == inside
    with pytest.raises(ModelNotFound, match="not found"):  # callers take that as "try the Hub"
        files.resolve_file("stabilityai/sd-turbo")
    assert diffusion._locate("stabilityai/sd-turbo") is None and stable_diffusion.is_hub_id("stabilityai/sd-turbo")
    assert diffusion.settings("stabilityai/sd-turbo").sides  # a Hub id's settings, without the network
