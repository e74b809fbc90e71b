"""The hub end to end: start app.build() on a free local port and call its endpoints with gradio_client.

One server for the whole module (start-up dominates the run time); bad requests are followed by a
good one, to show the server keeps serving.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image
from servers import free_port

import app
import core
from core import catalog
from core.errors import InvalidInput
from demos import ui, uploads
from demos.diffusion_settings import OWN, OWN_GUIDANCE, call_args, follow

REQUIRED = {  # endpoint -> inputs a client must give: the same as the core function's positional ones
    "/text_to_image": ["prompt"],
    "/image_to_image": ["image", "prompt"],
    "/generate_faces": [],
    "/interpolate_faces": [],
    "/upscale": ["image"],
}


@pytest.fixture(scope="module")
def hub():
    """The hub launched with the default flags (plus a free port), as a user's `python app.py` would.

    Torch runs on one thread meanwhile: the server and this test share a small CI machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    blocks = app.build()
    blocks.launch(**app.launch_options(app.parse_args(["--port", str(free_port())])),
                  prevent_thread_lock=True, quiet=True)
    yield blocks
    blocks.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client(hub) -> Client:
    return Client(hub.local_url, verbose=False)


@pytest.fixture
def small_png(tmp_path) -> str:
    path = tmp_path / "small.png"
    Image.new("RGB", (16, 12), (200, 40, 40)).save(path)
    return str(path)


def test_importing_and_building_the_app_loads_no_model_library():
    """The page must be served fast: torch, diffusers, spandrel and OpenCV load on first use, and the
    model lists fill when opened, not while the app starts."""
    import subprocess
    import sys

    heavy = ("torch", "diffusers", "transformers", "spandrel", "cv2")
    code = f"import sys, app; app.build(); print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(app.__file__).parent)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_switching_models_keeps_a_refused_choice_and_says_so(monkeypatch):
    """A sampler or size the new model refuses stays set (marked in the list) and a warning says so;
    ranges and labels follow the model."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # sd-turbo: downloaded on first use, if not cached
    with pytest.warns(UserWarning) as said:  # gr.Warning outside an event: a Python warning
        sampler, _, steps, _, width, height = follow(catalog.DEFAULT_DIFFUSION_MODEL, "DPM++ 2M Karras", 1024, 0)
    text = " ".join(str(w.message) for w in said)
    assert "cannot run the sampler DPM++ 2M Karras" in text and "takes a width of 16..64 px, and 1024 px" in text
    assert ("DPM++ 2M Karras (not for this model)", "DPM++ 2M Karras") in sampler.choices
    assert width.maximum == 1024 and height.maximum == 64  # the set width stays; the other follows
    assert "(25)" in steps.info and "native 32 px" in width.info
    with pytest.warns(UserWarning, match="unknown model 'no-such-model'"):
        assert all(update == gr.skip() for update in follow("no-such-model", OWN, 0, 0))
    sampler, *_ = follow("stabilityai/sd-turbo", "DPM++ 2M Karras", 0, 0)  # no warning: it runs there
    assert [value for _, value in sampler.choices] == [OWN, *catalog.SAMPLERS]


@pytest.mark.usefixtures("offline")
def test_a_hub_model_that_cannot_be_had_is_reported_when_the_page_loads(tmp_path, monkeypatch):
    """follow runs on page load: a host's default model that is neither here nor downloadable is a
    warning then, not only at the first request; one still to be downloaded gets a note."""
    from huggingface_hub import constants

    said: dict[str, list[str]] = {"warning": [], "info": []}
    monkeypatch.setattr(gr, "Warning", said["warning"].append)
    monkeypatch.setattr(gr, "Info", said["info"].append)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    sampler, upscale, steps, *_ = follow("nonexistent/model", OWN, 0, 0)
    assert steps.info == "0 = the model's own (25)"  # the labels still follow the family it would be
    assert said["info"] == [] and len(said["warning"]) == 1
    assert said["warning"][0].startswith("nonexistent/model is not in the Hugging Face cache and downloads are off")
    assert "`hf download nonexistent/model`" in said["warning"][0]
    said["warning"].clear()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    sampler, *_ = follow("nonexistent/model", OWN, 0, 0)
    assert said == {"warning": [], "info": ["nonexistent/model is not in the Hugging Face cache yet: it will be "
                                            "downloaded on first use"]}
    assert [value for _, value in sampler.choices] == [OWN, *catalog.SAMPLERS]
    said["info"].clear()
    follow(catalog.DEFAULT_DIFFUSION_MODEL, OWN, 0, 0)
    assert said == {"warning": [], "info": []}


def test_the_panel_sends_the_models_own_only_where_the_user_left_it():
    """An explicit choice is never replaced (issue: DDIM, guidance 5 and x4 became the SD defaults)."""
    own = call_args("", "sd.safetensors", OWN, 0, OWN_GUIDANCE, 0, 0, -1, 1, 1, "off")
    assert {k: own[k] for k in ("scheduler", "steps", "guidance_scale", "width", "height", "upscale")} == {
        "scheduler": None, "steps": None, "guidance_scale": None, "width": None, "height": None, "upscale": False}
    chosen = call_args("", "sd.safetensors", "DDIM", 25, 5.0, 32, 48, 7, 2, 1, "on", "a.safetensors", 0.5)
    assert {k: chosen[k] for k in ("scheduler", "steps", "guidance_scale", "width", "height", "upscale", "loras")} == {
        "scheduler": "DDIM", "steps": 25, "guidance_scale": 5.0, "width": 32, "height": 48, "upscale": True,
        "loras": [("a.safetensors", 0.5)]}
    assert call_args("", None, OWN, 0, 0.0, 0, 0, -1, 1, 1, OWN)["guidance_scale"] == 0.0  # 0 is a real choice
    assert call_args("", None, OWN, 0, OWN_GUIDANCE, 0, 0, -1, 1, 1, OWN)["upscale"] is True  # emoji's own


def test_defaults_serve_this_machine_only_and_share_nothing(hub):
    assert hub.server_name == "127.0.0.1"
    assert hub.local_url.startswith("http://127.0.0.1:")
    assert hub.share is False and hub.share_url is None
    options = app.launch_options(app.parse_args([]))
    assert options["server_name"] == "127.0.0.1" and options["share"] is False and options["allowed_paths"] == []
    listen = app.launch_options(app.parse_args(["--listen", "--share", "--auth", "ann:pw:x"]))
    assert listen["server_name"] == "0.0.0.0" and listen["share"] is True and listen["auth"] == ("ann", "pw:x")


@pytest.mark.parametrize("argv", [["--auth", "no-colon"], ["--port", "70000"]])
def test_bad_flags_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit):
        app.parse_args(argv)
    assert argv[0] in capsys.readouterr().err


def test_mcp_flag_needs_the_mcp_extra(capsys):
    if importlib.util.find_spec("mcp") is not None:
        assert app.launch_options(app.parse_args(["--mcp"]))["mcp_server"] is True
        return
    with pytest.raises(SystemExit):
        app.parse_args(["--mcp"])
    assert 'gradio[mcp]' in capsys.readouterr().err


def test_each_tab_is_laid_out_once(hub):
    ids = []

    def walk(node: dict) -> None:
        ids.append(node["id"])
        for child in node.get("children", []):
            walk(child)

    walk(hub.get_config_file()["layout"])
    assert len(ids) == len(set(ids)) > 40


def test_each_endpoint_requires_only_the_core_functions_own_inputs(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(REQUIRED) <= set(endpoints)
    for name, required in REQUIRED.items():
        params = endpoints[name]["parameters"]
        assert [p["parameter_name"] for p in params if not p["parameter_has_default"]] == required, name


@pytest.mark.slow  # loads a model on first use
def test_generate_faces_with_no_inputs(client):
    gallery, seeds, parameters, grid = client.predict(api_name="/generate_faces")
    assert len(gallery) == 4
    face = Image.open(gallery[0]["image"])
    assert face.size == (1024, 1024)  # MobileStyleGAN's own size; "Upscale x4" off by default
    assert json.loads(face.text["imagegen"])["seed"] == int(seeds.split(", ")[0])  # each file keeps its seed
    assert f"Seed: {seeds.split(', ')[0]}, Size: 1024x1024" in face.text["parameters"]  # AUTOMATIC1111's text
    assert [f"seed {s}" for s in seeds.split(", ")] == [item["caption"] for item in gallery]
    assert parameters["model"] == catalog.DEFAULT_FACE_MODEL and parameters["upscale"] is False
    assert parameters["count"] == 4 and parameters["truncation_psi"] == 0.7 and parameters["mix_seed"] is None
    assert grid is None  # only when asked


@pytest.mark.slow  # loads a model on first use
def test_generate_faces_mixes_styles_resizes_and_makes_a_grid(client):
    gallery, seeds, parameters, grid = client.predict(2, 5, 0.7, False, "", 1.0, catalog.DEFAULT_FACE_MODEL, 256,
                                                      9, "coarse", True, api_name="/generate_faces")
    assert seeds == "5, 6" and [Image.open(item["image"]).size for item in gallery] == [(256, 256)] * 2
    assert parameters["mix_seed"] == 9 and parameters["mix_layers"][0] == 0 and parameters["size"] == [256, 256]
    assert Image.open(grid).size[0] >= 2 * 256


def test_sizes_are_taken_as_the_api_page_lists_them(client):
    """view_api() lists the size choices as text ('0', '1024', '512', '256'): text and numbers both work."""
    for size in ("256", 256):
        gallery, _, parameters, _ = client.predict(count=1, seed=3, size=size, api_name="/generate_faces")
        assert Image.open(gallery[0]["image"]).size == (256, 256) and parameters["size"] == [256, 256]


def test_the_dcgan_stays_selectable(client):
    gallery, seeds, parameters, _ = client.predict(2, 5, 1.0, True, model=catalog.DCGAN_FACE_MODEL,
                                                   api_name="/generate_faces")
    assert seeds == "5, 6" and Image.open(gallery[0]["image"]).size == (256, 256)  # 64 px, x4
    assert parameters["model"] == catalog.DCGAN_FACE_MODEL and parameters["upscale"] is True


def test_interpolate_faces_returns_frames_a_gif_and_a_video(client):
    frames, gif, video, seeds, parameters = client.predict(7, 8, 3, 1.0, False, "", 1.0, "",
                                                           model=catalog.DCGAN_FACE_MODEL, size=0,
                                                           api_name="/interpolate_faces")
    assert len(frames) == 3 and seeds == "7, 8"
    animation = Image.open(gif)
    assert animation.format == "GIF" and animation.n_frames == 3 and animation.size == (64, 64)
    assert Path(video["video"] if isinstance(video, dict) else video).read_bytes()[4:8] == b"ftyp"  # an MP4
    assert parameters["space"] == "latent" and "gif_path" not in parameters and "video_path" not in parameters
    second = core.read_parameters(frames[1]["image"])  # each frame's PNG names its morph and its place
    assert (second["a1111"]["Interpolation seeds"], second["a1111"]["Interpolation frame"]) == ("7, 8", "2/3")
    assert second["imagegen"]["frame"] == 2 and "gif_path" not in second["imagegen"]  # no server path inside


@pytest.mark.slow  # loads a model on first use
def test_interpolate_faces_through_more_seeds_with_the_default_model(client):
    frames, gif, video, seeds, parameters = client.predict(7, 8, 5, 0.7, False, "", 1.0, "9", 10, True,
                                                           api_name="/interpolate_faces")
    assert len(frames) == 5 and seeds == "7, 8, 9"
    assert Image.open(frames[0]["image"]).size == (256, 256)  # the tab's frame size
    assert Image.open(gif).n_frames == 5
    assert Path(video["video"] if isinstance(video, dict) else video).read_bytes()[4:8] == b"ftyp"
    assert (parameters["model"], parameters["space"], parameters["loop"], parameters["fps"]) == (
        catalog.DEFAULT_FACE_MODEL, "style", True, 10)


def test_upscale_with_only_an_image(client, small_png):
    (before, after), download, parameters = client.predict(handle_file(small_png), api_name="/upscale")
    assert Image.open(before).size == Image.open(after).size == (64, 48)  # bicubic | model, for the slider
    saved = Image.open(download)
    assert saved.format == "PNG" and json.loads(saved.text["imagegen"])["scale"] == 4
    assert "Postprocess upscale by: 4" in saved.text["parameters"]  # AUTOMATIC1111's text
    assert parameters["model"] == "realesr-animevideov3-x4"


def test_upscale_download_keeps_sixteen_bits_and_the_preview_is_bounded(client, tmp_path, monkeypatch):
    from demos import super_resolution as tab

    monkeypatch.setattr(tab, "PREVIEW_SIDE", 100)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)).save(deep)
    (before, after), download, parameters = client.predict(handle_file(str(deep)), api_name="/upscale")
    assert Image.open(download).mode == "I;16" and Image.open(download).size == (160, 120)
    assert Image.open(after).size == Image.open(before).size == (100, 75) and parameters["mode"] == "I;16"


def test_the_upscaler_list_shows_scale_and_architecture(hub):
    labels = dict((value, label) for label, value in catalog.upscalers())
    assert labels["RealESRGAN_x4plus"] == "RealESRGAN_x4plus (x4 ESRGAN)"
    assert labels["realesr-animevideov3-x2"] == "realesr-animevideov3-x2 (x2 RealESRGAN Compact)"


def _text_file_named_png(tmp_path: Path) -> str:
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    return str(path)


def _one_pixel(tmp_path: Path) -> str:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    return str(path)


def _square(tmp_path: Path) -> str:
    path = tmp_path / "square.png"
    Image.new("RGB", (8, 8), "white").save(path)
    return str(path)


@pytest.mark.parametrize("endpoint, make_args, message", [
    ("/upscale", lambda tmp: [None], "no image"),
    ("/upscale", lambda tmp: [handle_file(_text_file_named_png(tmp))], "not a readable picture"),
    ("/upscale", lambda tmp: [handle_file(_one_pixel(tmp))], "at least 8 px"),
    ("/upscale", lambda tmp: [handle_file(_square(tmp)), "realesr-animevideov3-x4", 0, 32],
     "tile must be 64..2048, got 32"),
    ("/upscale", lambda tmp: [handle_file(_square(tmp)), "no-such-model"], "unknown upscaler model 'no-such-model'"),
    ("/text_to_image", lambda tmp: [""], "prompt is empty"),
    ("/text_to_image", lambda tmp: [{"a": 1}], "prompt must be text, got dict"),  # not str() of it
    ("/text_to_image", lambda tmp: ["red apple", {"a": 1}], "negative_prompt must be text, got dict"),
    *[("/text_to_image", lambda tmp, steps=steps: ["red apple", "", catalog.DEFAULT_DIFFUSION_MODEL, "", steps],
       f"Steps must be a whole number in 0..100 (0 = the model's own), got {steps}") for steps in (2.5, -5)],
    ("/generate_faces", lambda tmp: [100], "Number of faces must be in 1..64, got 100"),  # refused by the slider itself
    ("/generate_faces", lambda tmp: [1, 5, 1.0, False, "", 1.0, catalog.DCGAN_FACE_MODEL, 0, 3, "coarse"],
     "style mixing needs a style-based model"),
    ("/interpolate_faces", lambda tmp: [1, 2, 4, 1.0, False, "", 1.0, "9, x"], "More seeds: write whole numbers"),
])
def test_bad_input_shows_the_core_message_and_the_server_keeps_serving(client, tmp_path, endpoint, make_args,
                                                                      message):
    with pytest.raises(Exception) as caught:
        client.predict(*make_args(tmp_path), api_name=endpoint)
    assert message in str(caught.value)
    gallery, _, _, _ = client.predict(1, 5, 1.0, False, model=catalog.DCGAN_FACE_MODEL, api_name="/generate_faces")
    assert len(gallery) == 1


@pytest.mark.slow  # loads a model on first use
def test_text_to_image_with_only_a_prompt(client):
    gallery, seeds, parameters = client.predict("red apple", api_name="/text_to_image")
    assert len(gallery) == 1 and Image.open(gallery[0]["image"]).size == (128, 128)  # 32 px, x4
    assert parameters["prompt"] == "red apple" and int(seeds) == parameters["seed"]


@pytest.mark.slow  # loads a model on first use
def test_image_to_image_with_only_image_and_prompt(client, small_png):
    gallery, seeds, parameters = client.predict(handle_file(small_png), "red apple", api_name="/image_to_image")
    assert len(gallery) == 1 and Image.open(gallery[0]["image"]).size == (128, 128)
    assert parameters["input_size"] == [16, 12] and parameters["strength"] == 0.6


def test_call_turns_core_errors_into_their_message_and_others_into_a_generic_one(caplog):
    def refuses(**_):
        raise InvalidInput("steps must be 1..100, got <0>")

    def crashes(**_):
        raise RuntimeError("internal detail")

    with pytest.raises(gr.Error) as caught:
        ui.call(refuses)
    assert caught.value.message == "steps must be 1..100, got &lt;0&gt;"  # shown as text, not HTML
    with caplog.at_level(logging.ERROR, logger="imagegen-hub"), pytest.raises(gr.Error) as caught:
        ui.call(crashes)
    assert caught.value.message == ui.GENERIC_ERROR and "internal detail" not in caught.value.message
    assert "internal detail" in caplog.text  # the traceback stays in the server log


def test_call_feeds_on_step_to_the_progress_bar_only_where_accepted():
    seen = []

    def progress(value, unit="steps"):
        seen.append((value, unit))

    def with_steps(*, on_step=None):
        on_step(1, 3)
        return "done"

    assert ui.call(with_steps, progress=progress, unit="tiles") == "done"
    assert seen == [((1, 3), "tiles")]
    assert ui.call(lambda: "no on_step", progress=progress) == "no on_step"


def test_progress_moves_at_most_every_interval_and_always_at_the_end(monkeypatch):
    seen = []
    clock = iter([0.0, 0.05, 0.1, 0.3, 0.31, 0.32])
    monkeypatch.setattr(ui, "clock", lambda: next(clock))

    def many_steps(*, on_step):
        for done in range(1, 7):
            on_step(done, 6)
        return "done"

    ui.call(many_steps, progress=lambda value, unit: seen.append(value))
    assert seen == [(1, 6), (4, 6), (6, 6)]  # 0 s, 0.3 s (>= 0.25 s later), and the last step


def test_the_queue_looks_for_work_less_often_than_every_millisecond(hub):
    assert hub._queue.sleep_when_free == app.QUEUE_POLL_S
    assert hub._queue.progress_update_sleep_when_free == app.QUEUE_POLL_S


def test_image_source_reads_what_gradio_sends_unprocessed(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # Gradio's upload folder; only uploads are read
    upload = str((tmp_path / "x.png").resolve())
    assert uploads.image_source({"path": upload, "url": f"/gradio_api/file={upload}"}) == upload
    assert uploads.image_source({"path": None, "url": "data:image/png;base64,aGVsbG8="}) == b"hello"
    assert uploads.image_source({"path": None, "url": "data:image/png;base64,%%%"}) == b""
    assert uploads.image_source(None) is None


def test_files_added_after_launch_can_be_named_over_the_api(client, small_png):
    """The lists are read at launch; a later file must reach core (which checks it), not be refused
    by Gradio as "not in the list of choices"."""
    for call in (lambda: client.predict(face_restoration="added-later.safetensors", model=catalog.DCGAN_FACE_MODEL,
                                        api_name="/generate_faces"),
                 lambda: client.predict(model="added-later.safetensors", api_name="/generate_faces"),
                 lambda: client.predict(handle_file(small_png), "added-later.safetensors", api_name="/upscale")):
        with pytest.raises(Exception, match="added-later.safetensors not found"):
            call()


def test_send_buttons_are_queued_so_a_refusal_shows(hub):
    """A "Send to ..." with nothing to send raises gr.Error; only a queued event shows it to the user
    (an unqueued one ends in an HTTP 500 the page does not show)."""
    buttons = {block._id: block.value for block in hub.blocks.values()
               if isinstance(block, gr.Button) and str(block.value).startswith("Send to")}
    sends = [fn for fn in hub.fns.values() if any(target[0] in buttons for target in fn.targets)]
    assert len({fn.targets[0][0] for fn in sends}) == len(buttons) >= 10
    assert all(fn.queue for fn in sends), [buttons[fn.targets[0][0]] for fn in sends if not fn.queue]
