"""The hub in a real browser: every tab's default request, one with changed settings and one bad input.

Starts `python app.py --port <free port>` (offline), drives Debian's headless Chromium
(/usr/bin/chromium) with Playwright, and per tab checks that the result pictures are decoded and
laid out (naturalWidth > 0, non-zero box), that changed settings reach the result, and that a bad
input shows an error toast with the core's own message (not the generic one). One screenshot per
tab goes to docs/screenshots/<tab>.png (the README's pictures), taken after the changed-settings
request. After the bad input, the previous pictures must still be shown, not covered by an "Error"
badge.

The tests of this module share one server and one page and run in file order: each
`test_<tab>_keeps_result_after_error` looks at the page its tab's test left behind, and is skipped
when that test failed.

Skipped when Playwright or /usr/bin/chromium is missing (`apt-get install -y chromium`;
`pip install -e ".[test]"` brings Playwright; never `playwright install`), unless
IMAGEGEN_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return 'Playwright is not installed (pip install -e ".[test]")'
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


if (_reason := _missing()) is not None:
    if os.environ.get("IMAGEGEN_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"IMAGEGEN_REQUIRE_BROWSER=1 but {_reason}")
    pytest.skip(f"browser test skipped: {_reason}", allow_module_level=True)

from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from servers import free_port, log_tail, start_app, stop, wait_until_served

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 120_000
"""Per wait: a request on a 2-core CPU takes seconds, the first of a model up to ~15 s."""
START_S = 180
"""The server's start (imports torch, gradio, diffusers)."""
TABS = [("text_to_image", "Text to image"), ("image_to_image", "Image to image"), ("faces", "Faces"),
        ("super_resolution", "Super-resolution")]
"""(elem_id suffix, label) of each tab, as app.py makes them."""
GENERIC = "Something went wrong"
"""The start of demos.ui.GENERIC_ERROR: what a bad input must never get."""
DONE: set[str] = set()
"""The tabs whose test passed: the later tests that look at their page need them."""


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models_folder(tmp_path_factory) -> Path:
    """The app's models folder (IMAGEGEN_MODELS_DIR): empty, as in a fresh checkout (models/ is not committed);
    the ControlNet test puts its tiny models there while the app runs (the app reads the folder when asked)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def server(tmp_path_factory, request, models_folder):
    """`python app.py --port <free>` with HF_HUB_OFFLINE=1, as a user starts it, on the empty `models_folder`;
    yields its URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
           "IMAGEGEN_MODELS_DIR": str(models_folder)}
    url = f"http://127.0.0.1:{port}/"
    proc = start_app([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=env, log_path=log_path)
    try:
        wait_until_served(url, proc, log_path, START_S)
        yield url
    finally:
        stop(proc, wait_s=20)
    if len(DONE) < len(TABS):  # a tab failed: the server's side of the story, in the terminal summary
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n--- app.py log, last lines (exit code {proc.returncode}) ---\n{log_tail(log_path)}")


@pytest.fixture(scope="module")
def page(server):
    """One page on the hub, shared by the module's tests (they run in file order)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(WAIT_MS)
            page.goto(server)
            expect(page.get_by_role("tab", name="Text to image")).to_be_visible()
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, str]:
    """Input pictures drawn here: a 64x64 "apple" sketch, a 64x48 picture of shapes, a 4x4 one (too small)."""
    folder = tmp_path_factory.mktemp("pictures")
    apple = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(apple)
    draw.ellipse((10, 14, 54, 58), fill=(220, 30, 30))
    draw.rectangle((30, 4, 33, 16), fill=(110, 70, 20))
    draw.ellipse((34, 6, 48, 14), fill=(40, 160, 40))
    shapes = Image.new("RGB", (64, 48), (235, 235, 220))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((4, 4, 30, 30), fill=(200, 30, 30), outline="black")
    draw.rectangle((30, 18, 58, 42), fill=(30, 60, 200))
    draw.line((0, 47, 63, 20), fill=(20, 140, 20), width=2)
    draw.text((6, 34), "Hi", fill="black")
    paths = {"apple": folder / "apple.png", "shapes": folder / "shapes.png", "tiny": folder / "tiny.png"}
    apple.save(paths["apple"])
    shapes.save(paths["shapes"])
    Image.new("RGB", (4, 4), (200, 30, 30)).save(paths["tiny"])
    return {name: str(path) for name, path in paths.items()}


# --- helpers ----------------------------------------------------------------------------------

def open_tab(page: Page, name: str, *, after: bool = False) -> Locator:
    """Click the tab `name` (a TABS key) and return its panel (app.py gives it elem_id="tab-<name>").
    With `after`, the tab's own test must have passed (else this test is skipped)."""
    if after and name not in DONE:
        pytest.skip(f"test_{name} failed: nothing to look at")
    close_toasts(page)  # nothing left over from before
    page.get_by_role("tab", name=dict(TABS)[name], exact=True).click()
    panel = page.locator(f"#tab-{name}")
    expect(panel).to_be_visible()
    return panel


def block(panel: Locator, label: str) -> Locator:
    """The component whose floating block label starts with `label` (galleries, images, files)."""
    title = panel.page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}"))
    return panel.locator(".block").filter(has=title).last


def set_number(panel: Locator, label: str, value: float) -> None:
    """Type `value` into the number box of the slider or number field `label`."""
    field = panel.get_by_label(f"number input for {label}", exact=True)
    if not field.count():
        field = panel.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    field.blur()


def upload(panel: Locator, label: str, path: str) -> None:
    """Put the file `path` into the image input `label` and wait until its preview is shown."""
    target = block(panel, label)
    target.locator("input[type=file]").set_input_files(path)
    expect(target.locator("img").first).to_be_visible()
    _wait_images(target, 1)


def _wait_images(where: Locator, count: int, size: tuple[int, int] | None = None,
                 timeout: float = WAIT_MS) -> list[dict]:
    """Wait until `where` holds exactly `count` <img>, each loaded and decoded (naturalWidth > 0,
    and `size` when given) and laid out with a non-zero box; returns their sizes."""
    where.scroll_into_view_if_needed()  # gallery pictures load lazily: only near the viewport
    handle = where.element_handle()
    shown = """el => [...el.querySelectorAll('img')].map(img => ({
        natural: [img.naturalWidth, img.naturalHeight], alt: img.alt,
        box: [img.getBoundingClientRect().width, img.getBoundingClientRect().height]}))"""
    try:
        where.page.wait_for_function(
            """([el, count, size]) => {
            const imgs = [...el.querySelectorAll('img')];
            return imgs.length === count && imgs.every(img => {
                const box = img.getBoundingClientRect();
                return img.complete && img.naturalWidth > 0 && img.naturalHeight > 0
                    && box.width > 0 && box.height > 0
                    && (size === null || (img.naturalWidth === size[0] && img.naturalHeight === size[1]));
            });
        }""",
            arg=[handle, count, list(size) if size else None], timeout=timeout)
    except PlaywrightTimeoutError:
        raise AssertionError(f"waited for {count} picture(s) of {size}; shown: {handle.evaluate(shown)}; the page "
                             f"says: {where.inner_text()[:300]!r}") from None
    return handle.evaluate(shown)


def assert_pictures(where: Locator, count: int, size: tuple[int, int] | None = None,
                    timeout: float = WAIT_MS) -> None:
    shown = _wait_images(where, count, size, timeout)
    assert len(shown) == count
    for img in shown:
        assert img["natural"][0] > 0 and img["natural"][1] > 0, shown
        assert img["box"][0] > 0 and img["box"][1] > 0, shown


def error_toasts(page: Page) -> Locator:
    return page.get_by_test_id("toast-body").filter(has=page.get_by_text("Error", exact=True))


def wait_done(page: Page, done: Callable[[], bool], what: str) -> None:
    """Wait until `done()` is true (the request's result arrived); fail at once, with its text,
    when an error toast shows instead."""
    toast, deadline = error_toasts(page), time.monotonic() + WAIT_MS / 1000
    while not done():
        if toast.count() and toast.first.is_visible():
            pytest.fail(f"{what}: error toast instead of a result: {toast.first.inner_text()!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: no result within {WAIT_MS // 1000} s")
        page.wait_for_timeout(200)


def wait_seeds(panel: Locator, expected: str, what: str, index: int = 0) -> None:
    """Wait until the `index`-th "Seeds used" box fully matches the regular expression `expected`."""
    box = seeds(panel, index)
    wait_done(panel.page, lambda: re.fullmatch(expected, box.input_value()) is not None, what)


def close_toasts(page: Page) -> None:
    for close in page.get_by_test_id("toast-close").all():
        if close.is_visible():
            close.click()
    expect(page.get_by_test_id("toast-body")).to_have_count(0)


def assert_error_toast(page: Page, pattern: str) -> str:
    """Wait for an error toast; its text must match `pattern` (case-insensitive) and not be the
    generic message. Returns the text."""
    toast = error_toasts(page).first
    expect(toast).to_be_visible(timeout=WAIT_MS)
    text = toast.get_by_test_id("toast-text").inner_text()
    assert GENERIC not in text, f"a bad input got the generic error: {text!r}"
    assert re.search(pattern, text, re.IGNORECASE), f"error toast {text!r} does not match {pattern!r}"
    return text


def assert_still_shown(where: Locator, count: int, size: tuple[int, int] | None = None) -> None:
    """The previous result is still displayed: `count` decoded pictures, none of them covered by
    the block's status tracker (the red "Error" badge) or anything else outside the block."""
    assert_pictures(where, count, size, timeout=5_000)  # the page has settled: no long wait
    for img in where.locator("img").all():
        # a quarter in from the left: the middle of an image slider is its handle
        assert (cover := covered(img, x=0.25, within=where)) is None, f"a previous picture is covered: {cover}"


def covered(target: Locator, x: float = 0.5, within: Locator | None = None) -> str | None:
    """What covers `target` at `x` of its width, half its height: None when the point shows
    `target` itself (or, with `within`, anything of that block but its status tracker)."""
    target.scroll_into_view_if_needed()
    return target.evaluate("""(el, [x, within]) => {
        const r = el.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width * x, r.top + r.height / 2);
        const tracker = hit && hit.closest('[data-testid="status-tracker"]');
        if (hit && !tracker && (el === hit || el.contains(hit) || (within && within.contains(hit)))) return null;
        if (tracker) return 'the status tracker: ' + JSON.stringify(tracker.innerText.trim());
        return hit ? hit.outerHTML.slice(0, 160) : 'nothing (off screen)';
    }""", [x, within.element_handle() if within is not None else None])


def _file_cell(download: Locator, prefix: str) -> Locator:
    return download.get_by_role("cell", name=re.compile(rf"^{re.escape(prefix)}\S*\.png$"))


def assert_download(download: Locator, prefix: str, size: tuple[int, int]) -> None:
    """Wait until the file block offers `<prefix>....png`, fetch it through its link, check its size."""
    cell = _file_cell(download, prefix)
    wait_done(download.page, lambda: cell.count() > 0 and cell.first.is_visible(), f"{prefix}*.png to download")
    link = download.get_by_role("link").filter(has_text=re.compile(r"\d")).last  # the "70.3 KB" link
    href = link.get_attribute("href")
    assert href and prefix in href, href
    response = download.page.request.get(href)
    assert response.ok, f"GET {href}: {response.status}"
    with Image.open(io.BytesIO(response.body())) as png:
        assert (png.format, png.size) == ("PNG", size)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the last pictures paint
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def seeds(panel: Locator, index: int = 0) -> Locator:
    return panel.get_by_label("Seeds used").nth(index)


def set_numbers(panel: Locator, values: dict[str, float]) -> None:
    """`set_number` for each label: value of `values`, in order."""
    for label, value in values.items():
        set_number(panel, label, value)


def send(go: Locator, arrived: Callable[[], object], result: Locator, count: int, size: tuple[int, int]) -> None:
    """Click `go`, wait with `arrived()` until the request's answer is there (fails on an error
    toast), then check that `result` shows `count` decoded pictures of `size`."""
    go.click()
    arrived()
    assert_pictures(result, count, size)


def send_bad_input(page: Page, tab: str, go: Locator, pattern: str) -> None:
    """Click `go` on the bad input just given: an error toast with the core's own message (matching
    `pattern`, see `assert_error_toast`), closed again. The last step of `tab`'s test: marks it passed."""
    go.click()
    assert_error_toast(page, pattern)
    close_toasts(page)
    DONE.add(tab)


def assert_result_kept(page: Page, tab: str, label: str, count: int, size: tuple[int, int]) -> Locator:
    """After the bad input of `tab`'s test: the block `label` still shows its previous `count`
    pictures of `size`, uncovered (see `assert_still_shown`). Returns the tab's panel."""
    panel = open_tab(page, tab, after=True)
    assert_still_shown(block(panel, label), count, size)
    return panel


# --- text to image ----------------------------------------------------------------------------

def test_text_to_image(page):
    panel = open_tab(page, "text_to_image")
    pictures = block(panel, "Pictures")
    prompt = panel.get_by_label("Prompt", exact=True)
    go = panel.get_by_role("button", name="Generate", exact=True)

    prompt.fill("red apple")  # the prompt is required; everything else default
    # 32 px, upscaled x4 by default
    send(go, partial(wait_seeds, panel, r"\d+", "default request"), pictures, 1, (128, 128))

    set_numbers(panel, {"Seed": 7, "Steps": 15, "Batch size": 2})
    send(go, partial(wait_seeds, panel, "7, 8", "seed 7, 15 steps, batch size 2"), pictures, 2, (128, 128))
    screenshot(page, "text_to_image")

    prompt.fill("")
    send_bad_input(page, "text_to_image", go, r"prompt")


def test_text_to_image_keeps_result_after_error(page):
    panel = assert_result_kept(page, "text_to_image", "Pictures", 2, (128, 128))
    expect(seeds(panel)).to_have_value("7, 8")


def test_send_to_png_info_and_image_to_image(page):
    """A picture's parameters travel with it: "Send to PNG Info" shows them, "Send to image to image"
    puts the picture into that tab's start picture, and PNG Info's "Send to text to image" fills that
    tab with them: Generate then makes the picture's seed again (a round trip)."""
    panel = open_tab(page, "text_to_image", after=True)
    panel.get_by_role("button", name="Send to PNG Info", exact=True).click()
    target = page.locator("#tab-png_info")
    expect(target).to_be_visible(timeout=WAIT_MS)
    text = target.get_by_label("Parameters (AUTOMATIC1111)", exact=True)
    expect(text).to_have_value(re.compile(r"^red apple\n.*Steps: 15, Sampler: DDIM.*Seed: 7", re.S), timeout=WAIT_MS)
    expect(target).to_contain_text("trainedAlgorithmicMedia", timeout=WAIT_MS)  # the provenance panel: XMP
    expect(target).to_contain_text("c2pa.created")  # and the signed manifest
    screenshot(page, "png_info")
    panel = open_tab(page, "text_to_image")
    panel.get_by_role("button", name="Send to image to image", exact=True).click()
    target = page.locator("#tab-image_to_image")
    expect(target).to_be_visible(timeout=WAIT_MS)
    assert_pictures(block(target, "Start picture"), 1, (128, 128))
    expect(target.get_by_label("Prompt", exact=True)).to_have_value("red apple", timeout=WAIT_MS)  # and its settings
    expect(target.get_by_label("Seed", exact=True)).to_have_value("7")

    # PNG Info's "Send to text to image": the picture's settings fill that tab, and Generate makes it again
    panel = open_tab(page, "text_to_image")
    set_numbers(panel, {"Seed": 3, "Steps": 20})  # not the picture's, so the fill shows
    page.get_by_role("tab", name="PNG Info", exact=True).click()  # not in TABS: it makes no pictures
    panel = page.locator("#tab-png_info")
    panel.get_by_role("button", name="Send to text to image", exact=True).click()
    target = page.locator("#tab-text_to_image")
    expect(target).to_be_visible(timeout=WAIT_MS)
    expect(target.get_by_label("Prompt", exact=True)).to_have_value("red apple", timeout=WAIT_MS)
    expect(target.get_by_label("Seed", exact=True)).to_have_value("7", timeout=WAIT_MS)
    expect(target.get_by_label("number input for Steps", exact=True)).to_have_value("15")
    expect(target.get_by_label("number input for Batch size", exact=True)).to_have_value("1")
    send(target.get_by_role("button", name="Generate", exact=True),
         partial(wait_seeds, target, "7", "PNG Info's settings: seed 7, 15 steps"), block(target, "Pictures"), 1,
         (128, 128))


# --- image to image ---------------------------------------------------------------------------

def test_image_to_image(page, pictures):
    panel = open_tab(page, "image_to_image")
    result = block(panel, "Pictures")
    go = panel.get_by_role("button", name="Generate", exact=True)

    upload(panel, "Start picture", pictures["apple"])
    panel.get_by_label("Prompt", exact=True).fill("red apple")
    send(go, partial(wait_seeds, panel, r"\d+", "default request"), result, 1, (128, 128))

    set_numbers(panel, {"Strength": 0.4, "Seed": 3, "Batch count": 2})
    send(go, partial(wait_seeds, panel, "3, 4", "strength 0.4, seed 3, batch count 2"), result, 2, (128, 128))
    screenshot(page, "image_to_image")

    upload(panel, "Start picture", pictures["tiny"])
    send_bad_input(page, "image_to_image", go, r"4x4|8 px")


def test_image_to_image_keeps_result_after_error(page):
    panel = assert_result_kept(page, "image_to_image", "Pictures", 2, (128, 128))
    expect(seeds(panel)).to_have_value("3, 4")


# --- faces ------------------------------------------------------------------------------------

FACE = (1024, 1024)
"""MobileStyleGAN's own size, the faces tab's default (no upscale)."""


def test_faces(page):
    panel = open_tab(page, "faces")
    faces, frames = block(panel, "Faces"), block(panel, "Frames")
    go = panel.get_by_role("button", name="Generate", exact=True)

    # no input needed: 4 MobileStyleGAN faces, random seed, 1024 px
    send(go, partial(wait_seeds, panel, r"\d+(, \d+){3}", "default request"), faces, 4, FACE)

    set_numbers(panel, {"Number of faces": 2, "Seed": 42})
    send(go, partial(wait_seeds, panel, "42, 43", "2 faces from seed 42"), faces, 2, FACE)

    set_numbers(panel, {"Seed A": 42, "Seed B": 43, "Frames": 4})
    send(panel.get_by_role("button", name="Interpolate", exact=True),
         partial(wait_seeds, panel, "42, 43", "interpolation 42 -> 43, 4 frames", index=1), frames, 4, (256, 256))
    assert_pictures(block(panel, "Animation (GIF)"), 1, (256, 256))
    video = block(panel, "Video (MP4)").locator("video")
    expect(video).to_have_count(1, timeout=WAIT_MS)
    page.wait_for_function("v => v.readyState >= 1 && v.videoWidth === 256 && v.videoHeight === 256",
                           arg=video.element_handle(), timeout=WAIT_MS)  # the MP4 was served and decoded
    screenshot(page, "faces")

    # "Send to super-resolution": the first face goes into that tab's input, and the tab opens
    panel.get_by_role("button", name="Send to super-resolution", exact=True).click()
    target = page.locator("#tab-super_resolution")
    expect(target).to_be_visible(timeout=WAIT_MS)
    expect(panel).to_be_hidden()
    assert_pictures(block(target, "Low-res picture"), 1, FACE)

    panel = open_tab(page, "faces")
    panel.get_by_role("button", name=re.compile(r"^\s*Face restoration")).click()
    restorer = panel.get_by_label("Face restoration model", exact=True)
    restorer.fill("missing-restorer.pth")  # a file that is not in models/
    restorer.press("Enter")
    send_bad_input(page, "faces", go, r"missing-restorer\.pth")


def test_faces_keeps_result_after_error(page):
    panel = assert_result_kept(page, "faces", "Faces", 2, FACE)
    expect(seeds(panel, 0)).to_have_value("42, 43")


# --- super-resolution -------------------------------------------------------------------------

def test_super_resolution(page, pictures):
    panel = open_tab(page, "super_resolution")
    result, download = block(panel, "Bicubic | upscaled"), block(panel, "Download the full-size PNG")
    go = panel.get_by_role("button", name="Upscale", exact=True)

    # 64x48 px, default model x4: bicubic and the model's output, same size
    upload(panel, "Low-res picture", pictures["shapes"])
    send(go, partial(assert_download, download, "upscaled-x4-", (256, 192)), result, 2, (256, 192))

    set_numbers(panel, {"Scale": 2})
    send(go, partial(assert_download, download, "upscaled-x2-", (128, 96)), result, 2, (128, 96))
    screenshot(page, "super_resolution")

    upload(panel, "Low-res picture", pictures["tiny"])
    send_bad_input(page, "super_resolution", go, r"4x4|8 px")


def test_super_resolution_keeps_result_after_error(page):
    panel = assert_result_kept(page, "super_resolution", "Bicubic | upscaled", 2, (128, 96))
    expect(_file_cell(block(panel, "Download the full-size PNG"), "upscaled-x2-")).to_be_visible()


# --- after the errors above: the text of each tab's previous result -------------------------------

@pytest.mark.parametrize("tab", [name for name, _ in TABS])
def test_error_leaves_result_text_readable(page, tab):
    panel = open_tab(page, tab, after=True)
    if tab == "super_resolution":
        target = _file_cell(block(panel, "Download the full-size PNG"), "upscaled-x2-")
    else:
        target = seeds(panel)
    expect(target).to_be_visible()
    assert (cover := covered(target)) is None, f"the previous result's text is covered: {cover}"


# --- controls that follow the chosen model ------------------------------------------------------

def choose_model(panel: Locator, name: str) -> None:
    """Type a model into the Model list (it takes any name) and confirm it."""
    field = panel.get_by_label("Model", exact=True)
    field.fill(name)
    field.press("Enter")
    field.blur()


def test_switching_the_model_follows_it_and_keeps_a_set_size(page):
    """Ranges and labels follow the chosen model; a width the new model refuses stays set and a
    warning toast says so (it was only logged on the server before)."""
    panel = open_tab(page, "text_to_image")
    choose_model(panel, "stabilityai/sdxl-turbo")
    expect(panel.get_by_text("0 = the model's own (1)")).to_be_visible(timeout=WAIT_MS)  # Turbo: 1 step
    set_number(panel, "Width (px)", 512)
    choose_model(panel, "emoji-diffusion-32")
    expect(panel.get_by_text("0 = the model's own (25)")).to_be_visible(timeout=WAIT_MS)
    toast = page.get_by_test_id("toast-body").filter(has_text="takes a width of 16..64 px, and 512 px is set")
    expect(toast.first).to_be_visible(timeout=WAIT_MS)
    expect(panel.get_by_label("number input for Width (px)", exact=True)).to_have_value("512")
    close_toasts(page)
    set_number(panel, "Width (px)", 0)  # back to the model's own for the tests after this one


# --- Stop ---------------------------------------------------------------------------------------

def test_stop_ends_a_long_request_and_the_tab_serves_the_next(page):
    """Stop during a 1,600-step request: its progress goes away well before it could have finished,
    and the next request of the tab is answered (the cancelled job freed the device)."""
    panel = open_tab(page, "text_to_image", after=True)
    panel.get_by_label("Prompt", exact=True).fill("rocket")
    set_numbers(panel, {"Seed": 9, "Steps": 100, "Batch size": 1, "Batch count": 16})
    go = panel.get_by_role("button", name="Generate", exact=True)
    go.click()
    running = panel.locator(".status-line").get_by_text(re.compile(r"\d+/1\.6k steps"))  # Gradio's count
    expect(running.first).to_be_visible(timeout=WAIT_MS)
    screenshot(page, "stop")
    panel.get_by_role("button", name="Stop", exact=True).click()
    expect(running).to_have_count(0, timeout=WAIT_MS)
    expect(seeds(panel)).not_to_have_value(re.compile(r"\b24\b"))  # its 16 pictures (seeds 9..24) never came
    set_numbers(panel, {"Steps": 2, "Batch count": 1})
    send(go, partial(wait_seeds, panel, "9", "the request after Stop"), block(panel, "Pictures"), 1, (128, 128))


# --- image to image: inpaint, sketch, outpaint (issue 15) ----------------------------------------

def paint(editor: Locator, points: list[tuple[float, float]]) -> None:
    """Choose the image editor's brush and drag the mouse, button down, through `points`: fractions (x, y) of
    the editor's canvas box (the picture sits in its middle)."""
    editor.get_by_role("button", name="Brush").first.click()
    box = editor.locator("canvas").first.bounding_box()
    mouse = editor.page.mouse
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    mouse.move(*at[0])
    mouse.down()
    for point in at[1:]:
        mouse.move(*point, steps=6)
    mouse.up()


def own_upscale(panel: Locator) -> None:
    """Choose "the model's own" in the panel's Upscale x4 list (a test before may have set on or off)."""
    field = panel.get_by_label("Upscale x4", exact=True)
    field.click()
    panel.page.get_by_role("option", name=re.compile(r"^the model's own")).click()
    expect(field).to_have_value(re.compile(r"^the model's own"))


def open_mode(page: Page, mode: str) -> Locator:
    """The image-to-image tab showing its sub-tab `mode` ("Inpaint", "Sketch", "Outpaint"); returns the tab."""
    panel = open_tab(page, "image_to_image")
    panel.get_by_role("tab", name=mode, exact=True).click()
    return panel


def test_inpaint_paints_a_mask_and_redraws_there(page, pictures):
    """The mask is painted with the mouse over an uploaded picture; the result keeps the picture's size (64 px:
    "the model's own" x4 upscale is off to inpaint), where a plain redraw gives the model's 32 px x4."""
    panel = open_mode(page, "Inpaint")
    editor = block(panel, "Picture and mask")
    expect(editor.get_by_text("Upload an image")).to_be_visible()  # the sub-tab's editor is drawn, still empty
    editor.locator("input[type=file]").set_input_files(pictures["apple"])
    expect(editor.get_by_text("Upload an image")).to_have_count(0, timeout=WAIT_MS)
    paint(editor, [(0.45, 0.4), (0.55, 0.45), (0.5, 0.55), (0.42, 0.5)])
    panel.get_by_label("Prompt", exact=True).fill("grinning face")
    own_upscale(panel)
    set_numbers(panel, {"Seed": 5, "Batch count": 1})
    send(panel.get_by_role("button", name="Inpaint", exact=True), partial(wait_seeds, panel, "5", "inpaint"),
         block(panel, "Pictures"), 1, (64, 64))
    screenshot(page, "inpaint")


def test_sketch_draws_from_a_drawing(page):
    """Strokes drawn on the blank canvas are the start picture (SDEdit at the sketch strength)."""
    panel = open_mode(page, "Sketch")
    editor = block(panel, "Sketch")
    paint(editor, [(0.4, 0.35), (0.6, 0.35), (0.62, 0.6), (0.4, 0.62), (0.4, 0.35)])
    paint(editor, [(0.45, 0.45), (0.55, 0.5)])
    panel.get_by_label("Prompt", exact=True).fill("red apple")
    set_numbers(panel, {"Seed": 6, "Batch count": 1})
    send(panel.get_by_role("button", name="Generate from sketch", exact=True),
         partial(wait_seeds, panel, "6", "sketch to image"), block(panel, "Pictures"), 1, (128, 128))
    screenshot(page, "sketch")


def test_outpaint_extends_the_picture(page, pictures):
    """64x48 px extended by 16 px at the top: 64x64 px ("the model's own" x4 upscale is off to outpaint)."""
    panel = open_mode(page, "Outpaint")
    upload(panel, "Picture to extend", pictures["shapes"])
    own_upscale(panel)
    set_numbers(panel, {"Right (px)": 0, "Top (px)": 16, "Seed": 8, "Batch count": 1})
    send(panel.get_by_role("button", name="Outpaint", exact=True), partial(wait_seeds, panel, "8", "outpaint"),
         block(panel, "Pictures"), 1, (64, 64))
    screenshot(page, "outpaint")


# --- text to image: Hires. fix ------------------------------------------------------------------

def test_hires_fix_draws_at_twice_the_size(page):
    """Upscale by 2 in the "Hires. fix" accordion: the emoji model draws 32 px, the fix enlarges to 64 px and
    redraws there, and the tab's Upscale x4 makes 256 px, twice the 128 px of the same request without it."""
    panel = open_tab(page, "text_to_image")
    pictures = block(panel, "Pictures")
    go = panel.get_by_role("button", name="Generate", exact=True)
    choose_model(panel, "emoji-diffusion-32")
    panel.get_by_label("Prompt", exact=True).fill("red apple")
    set_numbers(panel, {"Width (px)": 0, "Height (px)": 0, "Seed": 11, "Steps": 10, "Batch size": 1,
                        "Batch count": 1})
    send(go, partial(wait_seeds, panel, "11", "without Hires. fix"), pictures, 1, (128, 128))

    panel.get_by_role("button", name=re.compile(r"^\s*Hires\. fix")).click()
    expect(panel.get_by_label("number input for Upscale by", exact=True)).to_be_visible()
    set_numbers(panel, {"Upscale by": 2, "Seed": 12})
    expect(panel.get_by_label("number input for Upscale by", exact=True)).to_have_value("2")
    try:
        send(go, partial(wait_seeds, panel, "12", "Hires. fix x2"), pictures, 1, (256, 256))
        screenshot(page, "hires_fix")
    finally:
        set_number(panel, "Upscale by", 1)  # off again for the tests after this one
        panel.get_by_role("button", name=re.compile(r"^\s*Hires\. fix")).click()  # and closed


# --- text to image: ControlNet ------------------------------------------------------------------

def test_controlnet_steers_a_stable_diffusion_model(page, pictures, models_folder):
    """A tiny random SD 1.x model and a ControlNet for it (tests/sd_fixtures.py) put into the models folder while
    the app runs: the ControlNet list finds it when opened, and a canny unit on an uploaded picture steers a
    64 px, 2-step request of the model (typed into the Model list)."""
    import sd_fixtures

    pipe = sd_fixtures.tiny_sd1(0)
    sd_fixtures.save_folder(pipe, models_folder / "tiny-sd1")
    sd_fixtures.save_controlnet(sd_fixtures.tiny_controlnet(pipe, 1),
                                models_folder / "ControlNet" / "sd1-canny.safetensors")

    panel = open_tab(page, "text_to_image")
    choose_model(panel, "tiny-sd1")
    panel.get_by_label("Prompt", exact=True).fill("a red ball beside a blue box")
    set_numbers(panel, {"Width (px)": 64, "Height (px)": 64, "Steps": 2, "Seed": 21, "Batch size": 1,
                        "Batch count": 1})
    panel.get_by_role("button", name=re.compile(r"^\s*ControlNet \(Stable Diffusion models\)")).click()
    unit = panel.get_by_label("ControlNet 1", exact=True)
    unit.click()  # opening the list reads the models folder
    option = page.get_by_role("option", name="ControlNet/sd1-canny.safetensors", exact=True)
    expect(option).to_be_visible(timeout=WAIT_MS)
    option.click()
    expect(unit).to_have_value("ControlNet/sd1-canny.safetensors")
    thresholds = panel.get_by_text("Canny low threshold 1", exact=True)
    expect(thresholds).to_be_hidden()  # shown for the canny preprocessor only
    panel.get_by_role("radio", name="canny", exact=True).first.check()
    expect(thresholds).to_be_visible()
    upload(panel, "Control image 1", pictures["shapes"])
    result = block(panel, "Pictures")
    send(panel.get_by_role("button", name="Generate", exact=True),
         partial(wait_seeds, panel, "21", "tiny SD 1.x with a canny ControlNet"), result, 1, None)
    # no size: "Upscale x4" is whatever the tests before left (PNG Info's "Send to text to image" sets it)
    expect(result.get_by_text("seed 21")).to_be_visible()
    screenshot(page, "controlnet")
    applied = panel.get_by_role("button", name=re.compile(r"^\s*Parameters applied"))
    applied.click()  # the unit ran: the result's parameters record it
    expect(panel.get_by_test_id("json")).to_contain_text("ControlNet/sd1-canny.safetensors")
    applied.click()
