"""Serving many users from one hub (demos.serving, demos.limits, core.scheduling) through the live app:
one way in, Stop that stops, fair turns, per-session and rate limits, the public preset's limits.

The hub runs in this process, so the device's scheduler can be replaced by one that records each
job's checkpoints: the assertions count steps and tiles, never seconds.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image
from servers import free_port

import app
from core import scheduling
from core.catalog import DCGAN_FACE_MODEL as DCGAN  # fast faces, for the tests of serving itself
from core.scheduling import FairDevice, Job
from demos import limits, serving

WAIT_S = 300  # bounds a test that would otherwise hang; the jobs here take seconds


class Recorder(FairDevice):
    """A FairDevice that logs ("arrive", session) when a job asks for the device, ("checkpoint",
    session), ("cancel", session) and ("end", session)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []
        self.changed = threading.Condition()

    def note(self, what: str, session: str) -> None:
        with self.changed:
            self.log.append((what, session))
            self.changed.notify_all()

    def enter(self, session: str) -> Job:
        device = self

        class Logged(Job):
            def checkpoint(self, done: int = 0, total: int = 0) -> None:
                device.note("checkpoint", self.session)
                super().checkpoint(done, total)

            def cancel(self) -> None:
                device.note("cancel", self.session)
                super().cancel()
        return Logged(self, session, next(self._order))

    def run(self, job, work):
        self.note("arrive", job.session)
        try:
            return super().run(job, work)
        finally:
            self.note("end", job.session)

    def count(self, what: str, session: str | None = None) -> int:
        return sum(1 for w, s in self.log if w == what and session in (None, s))

    def wait_until(self, condition, what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: condition() or self.count("end") > self.count("cancel"),
                                         timeout=WAIT_S) or not condition():
                pytest.fail(f"timed out waiting for {what}: {self.log[-10:]}")


@pytest.fixture(scope="module")
def hub():
    blocks = app.build()
    blocks.launch(**app.launch_options(app.parse_args(["--port", str(free_port())])),
                  prevent_thread_lock=True, quiet=True)
    yield blocks
    blocks.close()


@pytest.fixture
def device(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(serving, "DEVICE", recorder)
    return recorder


@pytest.fixture
def big_png(tmp_path) -> str:
    """A 512x512 noise picture: with 64-px tiles, 64 tiles of work for the upscaler."""
    path = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(path)
    return str(path)


def session_of(device: Recorder, what: str = "checkpoint") -> str:
    return next(s for w, s in device.log if w == what)


def test_the_queue_has_no_side_door(hub, big_png):
    """/gradio_api/run/<api_name> would run a request outside the queue and its turns: refused."""
    for api_name in ("upscale", "generate_faces", "text_to_image", "image_to_image", "interpolate_faces"):
        request = urllib.request.Request(f"{hub.local_url}gradio_api/run/{api_name}", data=b'{"data": []}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code in (403, 404), api_name


def test_cancel_stops_the_job_within_one_step_and_the_next_request_runs(hub, device):
    client = Client(hub.local_url, verbose=False)
    job = client.submit("red apple", steps=100, batch_count=16, upscale="off", seed=1, api_name="/text_to_image")
    device.wait_until(lambda: device.count("checkpoint") >= 3, "three steps")
    job.cancel()
    device.wait_until(lambda: device.count("end") == 1, "the cancelled job to end")
    cancelled_at = device.log.index(("cancel", session_of(device)))
    after = [entry for entry in device.log[cancelled_at:] if entry[0] == "checkpoint"]
    assert len(after) <= 1, device.log[cancelled_at:]  # at most the step that was under way
    assert device.count("checkpoint") < 100 * 16 / 4
    assert not device.busy()
    faces = Client(hub.local_url, verbose=False).predict(count=2, seed=5, upscale=False, model=DCGAN,
                                                          api_name="/generate_faces")
    assert faces[1] == "5, 6"


def test_a_short_request_waits_for_at_most_one_tile_of_a_long_upscale(hub, device, big_png, monkeypatch):
    # no switch margin: on a fast CPU three 64-px tiles may take less than its 0.05 s, which would
    # let the upscale keep the device for a few more tiles than the one this test allows
    monkeypatch.setattr(scheduling, "SWITCH_MARGIN_S", 0.0)
    long_client, short_client = Client(hub.local_url, verbose=False), Client(hub.local_url, verbose=False)
    upscale = long_client.submit(handle_file(big_png), tile=64, overlap=0, api_name="/upscale")
    device.wait_until(lambda: device.count("checkpoint") >= 3, "three tiles")
    long_session = session_of(device)
    faces = short_client.predict(count=3, seed=11, upscale=False, model=DCGAN, api_name="/generate_faces")
    assert faces[1] == "11, 12, 13"
    short_session = next(s for w, s in device.log if w == "arrive" and s != long_session)
    arrived, ended = device.log.index(("arrive", short_session)), device.log.index(("end", short_session))
    tiles_meanwhile = device.log[arrived:ended].count(("checkpoint", long_session))
    assert tiles_meanwhile <= 1, device.log[arrived:ended]  # the tile under way when the faces came
    assert upscale.result(timeout=WAIT_S)[2]["tiles"] == 64
    assert device.count("checkpoint", long_session) == 64


def test_one_running_request_per_session_and_a_few_waiting(hub, device, monkeypatch):
    monkeypatch.setattr(limits, "_current", dataclasses.replace(limits.current(), waiting_per_session=1))
    client = Client(hub.local_url, verbose=False)
    first = client.submit("red apple", steps=100, batch_count=4, upscale="off", seed=1, api_name="/text_to_image")
    device.wait_until(lambda: device.count("checkpoint") >= 1, "the first request to run")
    # (another endpoint: Gradio cancels every request of a session to the cancelled one's endpoint)
    second = client.submit(count=1, seed=2, upscale=False, model=DCGAN, api_name="/generate_faces")
    device.wait_until(lambda: serving.in_flight() == 2, "the second request to be admitted")
    third = client.submit(1, 2, frames=2, upscale=False, more_seeds="", model=DCGAN, api_name="/interpolate_faces")
    with pytest.raises(Exception, match="Busy: you already have 2 requests"):
        third.result(timeout=WAIT_S)
    assert not device.count("end")  # the second waits for the first: it never took the device alongside
    first.cancel()
    assert second.result(timeout=WAIT_S)[1] == "2"


def test_requests_per_minute(hub, device, monkeypatch):
    monkeypatch.setattr(limits, "_current", dataclasses.replace(limits.current(), requests_per_minute=2))
    client = Client(hub.local_url, verbose=False)
    for seed in (1, 2):
        client.predict(count=1, seed=seed, upscale=False, model=DCGAN, api_name="/generate_faces")
    with pytest.raises(Exception, match=r"at most 2 per minute .*IMAGEGEN_REQUESTS_PER_MINUTE"):
        client.predict(count=1, seed=3, upscale=False, model=DCGAN, api_name="/generate_faces")
    other = Client(hub.local_url, verbose=False)  # another visitor is not counted against this one
    assert other.predict(count=1, seed=4, upscale=False, model=DCGAN, api_name="/generate_faces")[1] == "4"


def test_the_public_preset_counts_one_address_however_many_sessions_it_opens(hub, device, monkeypatch):
    """A script that opens a session per request gains nothing: with the public preset the rate and
    the requests in progress are counted per network address (here every client is 127.0.0.1)."""
    monkeypatch.setattr(limits, "_current", dataclasses.replace(limits.LOCAL, public=True, per_visitor=1,
                                                                requests_per_minute=0))
    first = Client(hub.local_url, verbose=False).submit("red apple", steps=100, batch_count=4, upscale="off",
                                                         seed=1, api_name="/text_to_image")
    device.wait_until(lambda: device.count("checkpoint") >= 1, "the first request to run")
    with pytest.raises(Exception, match=r"requests from your address are in progress .*IMAGEGEN_MAX_PER_VISITOR"):
        Client(hub.local_url, verbose=False).predict(count=1, seed=3, upscale=False, model=DCGAN,
                                                     api_name="/generate_faces")
    first.cancel()
    monkeypatch.setattr(limits, "_current", dataclasses.replace(limits.LOCAL, public=True, requests_per_minute=2))
    monkeypatch.setattr(serving, "_started", collections.defaultdict(collections.deque))  # a fresh minute
    for seed in (1, 2):
        Client(hub.local_url, verbose=False).predict(count=1, seed=seed, upscale=False, model=DCGAN,
                                                     api_name="/generate_faces")
    with pytest.raises(Exception, match="at most 2 per minute"):
        Client(hub.local_url, verbose=False).predict(count=1, seed=3, upscale=False, model=DCGAN,
                                                     api_name="/generate_faces")


ABANDONING_CLIENT = """
import sys, time
from gradio_client import Client
Client(sys.argv[1], verbose=False).submit("red apple", steps=100, batch_count=16, upscale="off", seed=1,
                                          api_name="/text_to_image")
time.sleep(600)
"""


def test_a_request_whose_client_went_away_is_stopped(hub, device, tmp_path):
    """A closed page or a killed client: Gradio marks the event abandoned, and its job is cancelled
    at its next step instead of computing to its end."""
    script = tmp_path / "client.py"
    script.write_text(ABANDONING_CLIENT)
    client = subprocess.Popen([sys.executable, str(script), hub.local_url])
    try:
        device.wait_until(lambda: device.count("checkpoint") >= 3, "the client's request to run")
    finally:
        client.kill()
        client.wait()
    device.wait_until(lambda: device.count("cancel") == 1 and device.count("end") == 1, "the job to be stopped")
    assert device.count("checkpoint") < 100 * 16 / 4


@pytest.mark.parametrize("endpoint, kwargs, limit", [
    ("/text_to_image", {"prompt": "red apple", "steps": 80}, "IMAGEGEN_MAX_STEPS"),
    ("/text_to_image", {"prompt": "red apple", "batch_size": 8, "batch_count": 4}, "IMAGEGEN_MAX_IMAGES"),
    ("/text_to_image", {"prompt": "x" * 1500}, "IMAGEGEN_MAX_PROMPT_CHARS"),
    ("/text_to_image", {"prompt": "red apple", "negative_prompt": "x" * 1500}, "IMAGEGEN_MAX_PROMPT_CHARS"),
    ("/generate_faces", {"count": 40}, "IMAGEGEN_MAX_IMAGES"),
    ("/interpolate_faces", {"seed_a": 1, "seed_b": 2, "frames": 100, "more_seeds": ""}, "IMAGEGEN_MAX_FRAMES"),
])
def test_the_public_preset_refuses_what_is_over_a_limit_and_names_it(hub, monkeypatch, endpoint, kwargs, limit):
    monkeypatch.setattr(limits, "_current", limits.PUBLIC)
    with pytest.raises(Exception, match=f"over this demo's limit .*{limit}"):
        Client(hub.local_url, verbose=False).predict(**kwargs, api_name=endpoint)


def test_the_public_preset_sets_the_sliders_ends_and_the_upscale_side(monkeypatch):
    for variable in limits.ENV.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("IMAGEGEN_MAX_STEPS", "30")
    monkeypatch.setenv("IMAGEGEN_MAX_OUTPUT_SIDE", "")  # restored (unset) after the test
    chosen = limits.configure(public=True)
    try:
        assert chosen.steps == 30 and chosen.images == limits.PUBLIC.images and chosen.public
        assert os.environ["IMAGEGEN_MAX_OUTPUT_SIDE"] == str(limits.PUBLIC.output_side)
        hub = app.build()
        config = hub.get_config_file()
        maxima = {c["props"].get("label"): c["props"].get("maximum") for c in config["components"]
                  if c.get("type") == "slider"}
        assert maxima["Steps"] == 30
        assert maxima["Number of faces"] == limits.PUBLIC.images
        assert maxima["Frames"] == limits.PUBLIC.frames
        assert maxima["Width (px)"] == 768
    finally:
        monkeypatch.delenv("IMAGEGEN_MAX_STEPS")
        limits.configure(public=False)


def test_a_bad_limit_variable_is_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("IMAGEGEN_MAX_STEPS", "lots")
    with pytest.raises(ValueError, match="IMAGEGEN_MAX_STEPS"):
        limits.configure(public=False)


def test_the_outcome_of_a_stopped_job_is_read_so_asyncio_logs_nothing(caplog):
    """After Stop, the job's future ends with "Stopped." and no one awaits it: serving._retrieved reads
    it (as a done callback), else asyncio logs "Future exception was never retrieved"."""
    import gc

    import gradio as gr

    loop = asyncio.new_event_loop()
    try:
        for read in (False, True):
            caplog.clear()
            work = loop.create_future()
            work.set_exception(gr.Error("Stopped."))
            if read:
                serving._retrieved(work)
            del work
            gc.collect()
            assert ("never retrieved" in caplog.text) is not read
    finally:
        loop.close()
