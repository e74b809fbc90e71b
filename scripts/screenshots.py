"""Screenshot each tab of the hub after running its default request: docs/screenshots/<tab>.png.

    .venv/bin/python scripts/screenshots.py                      # all four tabs
    .venv/bin/python scripts/screenshots.py --tabs faces super_resolution

Starts the hub on a free local port, drives headless Chromium with Playwright (Debian's
/usr/bin/chromium: `apt-get install -y chromium`), clicks each tab's button with its default
settings (plus a prompt or a picture where one is required) and waits for the result.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

import app  # noqa: E402
from core.paths import REPO_DIR  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 300_000  # the first request of a tab loads its model; slow CPUs need minutes
PHOTO = REPO_DIR / ".cache" / "photos" / "chelsea.png"  # from the scikit-image wheel (tests/conftest.py)


def low_res_picture(folder: Path) -> str:
    """A small picture to upscale: a 128x96 crop of the scikit-image cat photo, or a drawn one."""
    path = folder / "low-res.png"
    if PHOTO.is_file():
        Image.open(PHOTO).convert("RGB").crop((150, 20, 310, 140)).resize((128, 96), Image.LANCZOS).save(path)
    else:
        Image.radial_gradient("L").resize((128, 96)).convert("RGB").save(path)
    return str(path)


def text_to_image(panel, folder: Path) -> None:
    panel.get_by_label("Prompt", exact=True).fill("red apple")
    panel.get_by_role("button", name="Generate").click()
    _wait_for_seeds(panel, 0)


def image_to_image(panel, folder: Path) -> None:
    panel.locator(".gallery-item, table tbody tr, button.example").first.click()  # the first sketch example
    panel.get_by_role("button", name="Generate").click()
    _wait_for_seeds(panel, 0)


def faces(panel, folder: Path) -> None:
    panel.get_by_role("button", name="Generate").click()
    _wait_for_seeds(panel, 0)
    panel.get_by_role("button", name="Interpolate").click()
    _wait_for_seeds(panel, 1)


def super_resolution(panel, folder: Path) -> None:
    panel.locator("input[type=file]").first.set_input_files(low_res_picture(folder))
    panel.get_by_role("button", name="Upscale").click()
    panel.get_by_role("link", name=".png").or_(panel.locator("a[download]")).first.wait_for(timeout=WAIT_MS)


def _wait_for_seeds(panel, index: int) -> None:
    """Wait until the `index`-th "Seeds used" box is filled (the request finished)."""
    from playwright.sync_api import expect

    expect(panel.get_by_label("Seeds used").nth(index)).not_to_have_value("", timeout=WAIT_MS)


STEPS: dict[str, Callable] = {f.__name__: f for f in (text_to_image, image_to_image, faces, super_resolution)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "screenshots")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hub = app.build()
    hub.launch(**app.launch_options(app.parse_args(["--port", str(port)])), prevent_thread_lock=True, quiet=True)
    labels = {demo.__name__.rsplit(".", 1)[-1]: label for label, demo in app.TABS}
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(hub.local_url)
            for name in args.tabs:
                page.get_by_role("tab", name=labels[name]).click()
                panel = page.locator(f"#tab-{name}")
                STEPS[name](panel, Path(tmp))
                page.wait_for_timeout(500)  # let images finish painting
                target = args.out / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target}")
            browser.close()
    finally:
        hub.close()


if __name__ == "__main__":
    main()
