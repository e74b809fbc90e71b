"""Access flags of app.py (issue 12, item 6): `--auth-file`, public mode, the no-login warning and the
blocked paths handed to Gradio. Pure functions of the flags and the environment; no server."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import app
from core.models import files
from core.paths import REPO_DIR
from demos import limits

HOST_ENV = ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID", "IMAGEGEN_PUBLIC", "GRADIO_BLOCKED_PATHS")


@pytest.fixture(autouse=True)
def bare_host(monkeypatch):
    """No host variables unless a test sets them (the machine running the tests may be a Space)."""
    for name in HOST_ENV:
        monkeypatch.delenv(name, raising=False)


def _auth_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "users.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- --auth-file ----------------------------------------------------------------------------------

def test_an_auth_file_gives_every_login_and_skips_blanks_and_comments(tmp_path):
    path = _auth_file(tmp_path, "# who may log in\n\nann:first secret\n  bob:pa:ss:word  \n#carl:old\n")
    assert app.read_auth_file(path) == [("ann", "first secret"), ("bob", "pa:ss:word")]
    options = app.launch_options(app.parse_args(["--auth-file", path]))
    assert options["auth"] == [("ann", "first secret"), ("bob", "pa:ss:word")]
    both = app.launch_options(app.parse_args(["--auth-file", path, "--auth", "dan:pw"]))
    assert both["auth"] == [("ann", "first secret"), ("bob", "pa:ss:word"), ("dan", "pw")]
    assert app.launch_options(app.parse_args(["--auth", "dan:pw"]))["auth"] == ("dan", "pw")
    assert app.launch_options(app.parse_args([]))["auth"] is None


@pytest.mark.parametrize("text, words", [
    ("ann:ok\nbob-hunter2\n", "line 2 has no ':' between user and password"),
    ("ann:ok\n\n# c\n:hunter2\n", "line 4 has an empty user name"),
    ("ann:\n", "line 1 has an empty password"),
    ("ann:hunter2\nann:hunter3\n", "line 2 names user 'ann' again (first on line 1)"),
    ("# nobody\n\n", "holds no user:password line"),
])
def test_a_bad_auth_file_exits_naming_the_line_never_the_password(tmp_path, capsys, text, words):
    path = _auth_file(tmp_path, text)
    with pytest.raises(SystemExit):
        app.parse_args(["--auth-file", path])
    err = capsys.readouterr().err
    assert "--auth-file" in err and words in err
    assert "hunter" not in err  # neither password of the file is shown


def test_an_unreadable_auth_file_exits_with_a_message(tmp_path, capsys):
    for path in (tmp_path / "missing.txt", tmp_path):
        with pytest.raises(SystemExit):
            app.parse_args(["--auth-file", str(path)])
        assert f"cannot read --auth-file {path}" in capsys.readouterr().err
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"ann:\xff\xfe\n")
    with pytest.raises(SystemExit):
        app.parse_args(["--auth-file", str(binary)])
    assert "not UTF-8 text" in capsys.readouterr().err


def test_the_auth_file_is_read_once_at_start(tmp_path):
    path = _auth_file(tmp_path, "ann:one\n")
    args = app.parse_args(["--auth-file", path])
    Path(path).write_text("eve:changed\n")
    assert app.launch_options(args)["auth"] == [("ann", "one")]


# --- public mode -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, env, public", [
    ([], {}, False),
    (["--public"], {}, True),
    (["--no-public"], {}, False),
    (["--share"], {}, True),
    (["--listen"], {}, True),
    (["--share", "--no-public"], {}, False),
    (["--listen", "--no-public"], {"SPACE_ID": "me/hub"}, False),
    ([], {"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ([], {"GRADIO_SERVER_NAME": "192.168.1.20"}, True),
    ([], {"GRADIO_SERVER_NAME": "127.0.0.1"}, False),
    ([], {"GRADIO_SERVER_NAME": "localhost"}, False),
    ([], {"GRADIO_SERVER_NAME": "::1"}, False),
    ([], {"SPACE_ID": "me/hub"}, True),
    ([], {"IMAGEGEN_PUBLIC": "1"}, True),
    ([], {"IMAGEGEN_PUBLIC": "0"}, False),
    (["--share"], {"IMAGEGEN_PUBLIC": "0"}, True),     # the flags decide before the variable
    ([], {"SPACE_ID": "me/hub", "IMAGEGEN_PUBLIC": "0"}, True),
    (["--public"], {"IMAGEGEN_PUBLIC": "0"}, True),
    (["--no-public"], {"IMAGEGEN_PUBLIC": "1"}, False),
])
def test_public_mode_truth_table(monkeypatch, argv, env, public):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = app.parse_args(argv)
    assert args.public is (True if "--public" in argv else False if "--no-public" in argv else None)
    assert app.public_mode(args) is public


def test_a_bad_public_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("IMAGEGEN_PUBLIC", "yes")
    with pytest.raises(ValueError, match=r"\$IMAGEGEN_PUBLIC must be 1 or 0, got 'yes'"):
        app.public_mode(app.parse_args([]))


# --- binding and the no-login warning --------------------------------------------------------------

@pytest.mark.parametrize("argv, env, warned", [
    ([], {}, []),
    (["--share"], {}, ["public *.gradio.live link"]),
    (["--listen"], {}, ["serving on 0.0.0.0"]),
    (["--listen", "--share"], {}, ["public *.gradio.live link", "serving on 0.0.0.0"]),
    ([], {"GRADIO_SERVER_NAME": "0.0.0.0"}, ["serving on 0.0.0.0"]),
    ([], {"GRADIO_SERVER_NAME": "127.0.0.1"}, []),
    (["--listen", "--share", "--auth", "ann:pw"], {}, []),
    (["--listen", "--auth-file", "<file>"], {}, []),
])
def test_serving_beyond_this_machine_without_a_login_warns(tmp_path, monkeypatch, argv, env, warned):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = [_auth_file(tmp_path, "ann:pw\n") if arg == "<file>" else arg for arg in argv]
    options = app.launch_options(app.parse_args(argv))
    warnings = app.exposure_warnings(options)
    assert len(warnings) == len(warned)
    for warning, words in zip(warnings, warned):
        assert words in warning and "no login" in warning and "--auth-file" in warning


def test_only_listen_or_the_hosts_variable_bind_beyond_loopback(monkeypatch):
    assert app.launch_options(app.parse_args(["--share", "--public"]))["server_name"] == "127.0.0.1"
    assert app.launch_options(app.parse_args(["--listen"]))["server_name"] == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert app.launch_options(app.parse_args([]))["server_name"] == "0.0.0.0"


def test_main_warns_and_says_the_mode_before_serving(monkeypatch, caplog):
    """main logs the no-login warning and the mode, then builds and launches (both stubbed here)."""
    launched = {}

    class Hub:
        def launch(self, **options):
            launched.update(options)

    monkeypatch.setattr(app, "prepare_all", lambda: None)
    monkeypatch.setattr(app, "build", lambda *a, **k: Hub())
    monkeypatch.setattr(limits, "_current", limits._current)  # main chooses the preset: restored after
    monkeypatch.setenv("IMAGEGEN_MAX_OUTPUT_SIDE", "")  # which core then reads: restored (unset) after
    with caplog.at_level(logging.INFO, logger="imagegen-hub"):
        app.main(["--listen"])
    assert launched["server_name"] == "0.0.0.0" and launched["auth"] is None
    assert limits.current().public and launched["max_file_size"] == f"{limits.PUBLIC.upload_mb}mb"
    assert os.environ["IMAGEGEN_MAX_OUTPUT_SIDE"] == str(limits.PUBLIC.output_side)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("serving on 0.0.0.0" in w and "no login" in w for w in warnings)
    assert "public mode on: limits for strangers (--listen)" in caplog.text


def test_main_exits_on_a_bad_public_variable(monkeypatch):
    monkeypatch.setenv("IMAGEGEN_PUBLIC", "maybe")
    monkeypatch.setattr(app, "prepare_all", lambda: pytest.fail("must exit before preparing"))
    with pytest.raises(SystemExit, match="IMAGEGEN_PUBLIC must be 1 or 0"):
        app.main([])


# --- what Gradio may never serve -------------------------------------------------------------------

def test_blocked_paths_cover_weights_the_models_folder_and_dot_entries(models_dir, monkeypatch):
    monkeypatch.setenv("GRADIO_BLOCKED_PATHS", "/srv/private, /srv/keys")
    blocked = app.launch_options(app.parse_args([]))["blocked_paths"]
    assert app.launch_options(app.parse_args([]))["allowed_paths"] == []
    for path in (files.WEIGHTS_DIR, models_dir, REPO_DIR / ".git", REPO_DIR / ".venv", REPO_DIR / ".cache",
                 REPO_DIR / ".gradio", "/srv/private", "/srv/keys"):
        assert os.path.abspath(path) in blocked, path
    assert all(os.path.isabs(path) for path in blocked)
    dot_entries = [entry for entry in REPO_DIR.iterdir() if entry.name.startswith(".")]
    assert all(str(entry) in blocked for entry in dot_entries)
    assert str(REPO_DIR) not in blocked and str(REPO_DIR / "demos") not in blocked


def test_gradio_blocks_every_file_below_a_blocked_folder(models_dir):
    """Gradio's own check (gradio.utils.is_allowed_file) with our list: a folder blocks its contents,
    whatever the letter case, even where the path is otherwise allowed."""
    from gradio import utils

    blocked = app.blocked_paths()
    for path in (models_dir / "sub" / "x.safetensors", files.WEIGHTS_DIR / "upscalers" / "X.safetensors",
                 REPO_DIR / ".git" / "config", REPO_DIR / ".GIT" / "config", REPO_DIR / ".venv" / "pyvenv.cfg"):
        assert utils.is_allowed_file(Path(path), blocked_paths=blocked, allowed_paths=[REPO_DIR, models_dir],
                                     created_paths=[]) == (False, "in_blocklist"), path
    assert utils.is_allowed_file(REPO_DIR / "app.py", blocked_paths=blocked, allowed_paths=[REPO_DIR],
                                 created_paths=[]) == (True, "allowed")


@pytest.mark.parametrize("text, words", [("hunter2", "no ':'"), (":hunter2", "an empty user name"),
                                         ("ann:", "an empty password")])
def test_a_bad_auth_flag_says_what_is_wrong_without_echoing_it(capsys, text, words):
    with pytest.raises(SystemExit):
        app.parse_args(["--auth", text])
    err = capsys.readouterr().err
    assert f"--auth wants USER:PASSWORD, got {words}" in err and "hunter" not in err
