"""app.py's launch settings: flags and the host's environment (GRADIO_SERVER_NAME/PORT, as set by
Hugging Face Spaces), and calm_queue's use of Gradio's private queue attributes.

No server is started here (see test_app.py and test_spaces_deploy.py for that).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import gradio as gr
import pytest

import app

ENV = ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "GRADIO_SHARE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Each test starts from an environment without the variables a host may set."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def _options(argv: list[str]) -> dict:
    return app.launch_options(app.parse_args(argv))


def _queued_blocks() -> gr.Blocks:
    with gr.Blocks() as blocks:
        gr.Markdown("x")
    return blocks.queue(max_size=2)


# --- launch_options -------------------------------------------------------------------------------

def test_without_env_or_flags_it_serves_this_machine_only_on_7860_and_shares_nothing():
    options = _options([])
    assert options["server_name"] == "127.0.0.1"
    assert options["server_port"] == 7860
    assert options["share"] is False and options["auth"] is None and options["allowed_paths"] == []


def test_a_spaces_environment_is_honoured(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    options = _options([])
    assert (options["server_name"], options["server_port"]) == ("0.0.0.0", 7861)
    assert options["share"] is False


@pytest.mark.parametrize("env, argv, name, port", [
    ({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}, ["--port", "8080"], "0.0.0.0", 8080),
    ({"GRADIO_SERVER_NAME": "127.0.0.1"}, ["--listen"], "0.0.0.0", 7860),
    ({"GRADIO_SERVER_NAME": "192.0.2.7"}, ["--listen", "--port", "9000"], "0.0.0.0", 9000),
    ({"GRADIO_SERVER_PORT": "7999"}, [], "127.0.0.1", 7999),
    ({"GRADIO_SERVER_NAME": "0.0.0.0"}, [], "0.0.0.0", 7860),
    ({"GRADIO_SERVER_NAME": "", "GRADIO_SERVER_PORT": " "}, [], "127.0.0.1", 7860),
    ({}, ["--listen", "--port", "8080"], "0.0.0.0", 8080),
])
def test_flags_win_over_the_environment(monkeypatch, env, argv, name, port):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    options = _options(argv)
    assert (options["server_name"], options["server_port"]) == (name, port)


def test_a_public_link_only_with_the_share_flag(monkeypatch):
    monkeypatch.setenv("GRADIO_SHARE", "True")  # Gradio would read this when share=None
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert _options([])["share"] is False
    assert _options(["--share"])["share"] is True


def test_the_port_flag_defaults_to_none():
    assert app.parse_args([]).port is None
    assert app.parse_args(["--port", "8080"]).port == 8080


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1", "78.5"])
def test_a_bad_port_in_the_environment_is_refused_before_any_work(monkeypatch, value):
    monkeypatch.setenv("GRADIO_SERVER_PORT", value)
    with pytest.raises(ValueError, match="GRADIO_SERVER_PORT"):
        _options([])
    assert _options(["--port", "8080"])["server_port"] == 8080  # the flag wins, the variable is not read

    def no_work(*args, **kwargs):
        raise AssertionError("main() went on to build the weights")

    monkeypatch.setattr(app, "prepare_all", no_work)
    with pytest.raises(SystemExit, match="GRADIO_SERVER_PORT"):
        app.main([])


# --- calm_queue and Gradio's private queue attributes ---------------------------------------------

def test_the_installed_gradio_still_has_the_queue_attributes_calm_queue_sets():
    """Fails on a Gradio upgrade that changes what calm_queue relies on: check gradio/queueing.py
    (Queue.__init__ and the loops that sleep on these attributes), then update
    app.QUEUE_TUNED_GRADIO_MAJOR / app.QUEUE_SLEEP_ATTRIBUTES, or drop calm_queue."""
    assert app.gradio_major() == app.QUEUE_TUNED_GRADIO_MAJOR, (
        f"Gradio {gr.__version__} is installed, but calm_queue was checked on Gradio "
        f"{app.QUEUE_TUNED_GRADIO_MAJOR}.x only: it now leaves the queue alone. Check gradio/queueing.py "
        f"still has {app.QUEUE_SLEEP_ATTRIBUTES} and bump app.QUEUE_TUNED_GRADIO_MAJOR")
    queue = _queued_blocks()._queue
    missing = [name for name in app.QUEUE_SLEEP_ATTRIBUTES
               if not isinstance(getattr(queue, name, None), (int, float))]
    assert not missing, (
        f"Gradio {gr.__version__}'s queue ({type(queue).__module__}.{type(queue).__qualname__}) no longer "
        f"has the numeric attributes {missing}: calm_queue does nothing now. Find the new polling "
        f"intervals in gradio/queueing.py and update app.calm_queue, or drop it")


def test_calm_queue_sets_the_interval_on_this_gradio():
    blocks = app.calm_queue(_queued_blocks(), interval_s=0.03)
    for name in app.QUEUE_SLEEP_ATTRIBUTES:
        assert getattr(blocks._queue, name) == 0.03


def test_calm_queue_leaves_another_gradio_major_version_alone(monkeypatch, caplog):
    blocks = _queued_blocks()
    before = {name: getattr(blocks._queue, name) for name in app.QUEUE_SLEEP_ATTRIBUTES}
    monkeypatch.setattr(gr, "__version__", f"{app.QUEUE_TUNED_GRADIO_MAJOR + 1}.0.0")
    with caplog.at_level(logging.WARNING, logger="imagegen-hub"):
        assert app.calm_queue(blocks, interval_s=0.5) is blocks
    assert {name: getattr(blocks._queue, name) for name in app.QUEUE_SLEEP_ATTRIBUTES} == before
    assert "left at Gradio's default" in caplog.text


@pytest.mark.parametrize("queue", [None, SimpleNamespace(), SimpleNamespace(sleep_when_free=0.001),
                                   SimpleNamespace(sleep_when_free="fast", progress_update_sleep_when_free=0.01)])
def test_calm_queue_leaves_a_queue_without_the_attributes_alone(queue, caplog):
    hub = SimpleNamespace(_queue=queue)
    before = dict(vars(queue)) if queue is not None else None
    with caplog.at_level(logging.WARNING, logger="imagegen-hub"):
        assert app.calm_queue(hub, interval_s=0.5) is hub
    assert (dict(vars(queue)) if queue is not None else None) == before
    assert "left at Gradio's default" in caplog.text
