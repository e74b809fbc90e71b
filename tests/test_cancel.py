"""Stop on request: on_step raising core.Cancelled ends each generator within one step, tile or face.

For every public generator: an on_step that raises at its k-th call makes Cancelled escape unchanged
after exactly k calls (no work after it), and the same call made again gives the pictures of an
uncancelled run (nothing half-made was kept). Also: a LoRA loaded for a stopped request is taken off,
the GPU cache is emptied, and a request that waits inside on_step lets another one run (what the
host's fair scheduler does there) without either changing the other's pictures.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import sd_fixtures
import torch
from PIL import Image
from safetensors.torch import save_file
from test_sd_models import kohya_lora

import core
from core import Cancelled
from core.catalog import DCGAN_FACE_MODEL, DEFAULT_FACE_MODEL
from core.generators import faces
from core.models import diffusion, stable_diffusion
from core.models import registry as models
from core.models.registry import ModelKind, ModelSpec

pytestmark = pytest.mark.usefixtures("offline", "free_memory")
T2I = {"model": "tiny-emoji-for-checks", "steps": 3, "seed": 7, "batch_size": 2, "upscale": True}  # CPU: 2 x 3 steps, then 2 x 1 tile


class StopAt:
    """An on_step that records its calls and raises core.Cancelled at the k-th."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))
        if len(self.calls) == self.k:
            raise Cancelled("Stopped.")


def pixels(result: core.Result) -> list[np.ndarray]:
    return [np.asarray(image, dtype=np.int16) for image in result.images]


def assert_same(a: core.Result, b: core.Result, what: str) -> None:
    assert len(a.images) == len(b.images), what
    for i, (x, y) in enumerate(zip(pixels(a), pixels(b))):
        assert np.array_equal(x, y), f"{what}: image {i + 1} differs from the uncancelled run"


def assert_stops(run, k: int, reference: core.Result, what: str) -> list[tuple[int, int]]:
    """Cancel `run(on_step=...)` at call k; check it stopped there and that the next run is as uncancelled."""
    stop = StopAt(k)
    with pytest.raises(Cancelled, match="Stopped."):
        run(on_step=stop)
    assert len(stop.calls) == k, f"{what}: on_step was called {len(stop.calls)} times, work went on after a cancel"
    assert [done for done, _ in stop.calls] == list(range(1, k + 1)), f"{what}: counts not 1..{k}: {stop.calls}"
    assert_same(run(), reference, what)
    return stop.calls




def noise(size=(120, 70), mode="RGB", seed=0) -> Image.Image:
    channels = len(mode)
    array = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(array, mode)


# --- each generator stops within one step, tile or face ---------------------------------------------------

@pytest.mark.parametrize("k", [2, 5, 7])  # in image 1's steps, in image 2's steps, in the x4 upscale's tiles
def test_text_to_image_stops_within_one_step_or_tile(tiny_emoji, k):
    reference = core.text_to_image("red apple", **T2I)
    calls = assert_stops(lambda **kw: core.text_to_image("red apple", **T2I, **kw), k, reference,
                         f"text_to_image seed {T2I['seed']}")
    assert {total for _, total in calls} == {2 * 3 + 2 * 1}  # steps of both images, then a tile each


def test_image_to_image_stops_within_one_step(tiny_emoji):
    start = noise((16, 16))
    call = {"model": tiny_emoji, "steps": 4, "strength": 0.5, "seed": 3}  # 2 of the 4 steps run
    reference = core.image_to_image(start, "blue circle", **call)
    calls = assert_stops(lambda **kw: core.image_to_image(start, "blue circle", **call, **kw), 1, reference,
                         "image_to_image seed 3")
    assert calls == [(1, 2)]


@pytest.mark.parametrize("model, upscale, k, total", [
    (DCGAN_FACE_MODEL, False, 2, 3),
    (DCGAN_FACE_MODEL, True, 3, 6),  # with upscale: a tile, then the face
    (DEFAULT_FACE_MODEL, False, 2, 3),  # faces drawn a wave at a time: the count still stops at the cancel
])
def test_generate_faces_stops_within_one_face_or_tile(model, upscale, k, total):
    call = {"count": 3, "seed": 21, "upscale": upscale, "model": model}
    reference = faces.generate_faces(**call)
    calls = assert_stops(lambda **kw: faces.generate_faces(**call, **kw), k, reference, f"generate_faces {model} seed 21")
    assert calls[-1] == (k, total)


@pytest.mark.parametrize("model", [DCGAN_FACE_MODEL, DEFAULT_FACE_MODEL])
def test_generate_faces_reports_every_face_without_upscale_or_restoration(model):
    seen = []
    faces.generate_faces(count=5, seed=1, model=model, on_step=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 5) for i in range(1, 6)]


def test_interpolate_faces_stops_within_one_frame_and_writes_no_gif_nor_video(tmp_path):
    gif, video = tmp_path / "morph.gif", tmp_path / "morph.mp4"
    call = {"frames": 4, "model": DCGAN_FACE_MODEL}
    reference = faces.interpolate_faces(4, 5, **call, gif_path=tmp_path / "reference.gif",
                                        video_path=tmp_path / "reference.mp4")
    assert_stops(lambda **kw: faces.interpolate_faces(4, 5, **call, **({"gif_path": gif, "video_path": video} | kw)),
                 3, reference, "interpolate_faces seeds 4, 5")
    gif.unlink()  # written by the uncancelled run at the end of assert_stops
    video.unlink()
    with pytest.raises(Cancelled):
        faces.interpolate_faces(4, 5, **call, gif_path=gif, video_path=video, on_step=StopAt(4))
    assert not gif.exists(), "a stopped morph still wrote its GIF"
    assert not video.exists(), "a stopped morph still wrote its video"


@pytest.mark.parametrize("k", [1, 6, 8])  # first tile, last colour tile, in the alpha pass
def test_upscale_stops_within_one_tile_including_the_alpha_pass(k):
    picture = noise(mode="RGBA")  # varied alpha: a second plane of 6 tiles
    call = {"tile": 64, "overlap": 16}
    reference = core.upscale(picture, **call)
    calls = assert_stops(lambda **kw: core.upscale(picture, **call, **kw), k, reference, "upscale of noise seed 0")
    assert calls[-1] == (k, 12)


def test_a_two_pass_upscale_stops_in_its_second_pass():
    picture = noise((40, 30))
    reference = core.upscale(picture, scale=8, tile=64)  # pass 1: 40x30 in 1 tile; pass 2: 80x60 in 2
    calls = assert_stops(lambda **kw: core.upscale(picture, scale=8, tile=64, **kw), 2, reference, "x8 of noise")
    assert calls[-1] == (2, 3)


# --- what a cancel leaves behind ----------------------------------------------------------------------

def test_a_cancel_empties_the_gpu_cache_and_other_errors_from_on_step_go_out_unchanged(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    with pytest.raises(Cancelled):
        core.upscale(noise((40, 30)), tile=64, on_step=StopAt(1))
    assert emptied, "torch.cuda.empty_cache did not run after the cancel"
    own = RuntimeError("CUDA out of memory (raised by the host's on_step)")  # must not be taken for the net's OOM

    def host_fails(done, total):
        raise own
    with pytest.raises(RuntimeError) as caught:
        core.upscale(noise((120, 70)), tile=128, on_step=host_fails)
    assert caught.value is own, "the host's exception was replaced or retried with a smaller tile"


@pytest.fixture(scope="module", name="tiny_sd")
def tiny_sd_model(tmp_path_factory):
    """A tiny random SD 1.x model registered by name, and a models folder with a LoRA for it."""
    name = "tiny-sd1-for-cancel"
    pipe = sd_fixtures.tiny_sd1(0)
    folder = tmp_path_factory.mktemp("cancel-models")
    save_file(kohya_lora(pipe.unet), folder / "style.safetensors")
    if name not in models.names(ModelKind.DIFFUSION):
        models.register(ModelSpec(ModelKind.DIFFUSION, name, lambda: stable_diffusion.wrap(name, pipe)))
    with pytest.MonkeyPatch.context() as patch:
        from core.models import files

        patch.setattr(files, "MODELS_DIR", folder)
        yield name
    models.forget(ModelKind.DIFFUSION, name)


SD = {"steps": 2, "width": 64, "height": 64, "seed": 3}


def test_a_lora_loaded_for_a_cancelled_request_is_taken_off(tiny_sd):
    plain = core.text_to_image("a cat", model=tiny_sd, **SD)
    with pytest.raises(Cancelled):
        core.text_to_image("a cat", model=tiny_sd, loras={"style.safetensors": 1.0}, **SD, on_step=StopAt(1))
    m = diffusion.get(tiny_sd)
    assert m.adapters == {}, "the LoRA of the stopped request stayed loaded"
    assert not any(m.text_to_image.get_list_adapters().values())
    assert_same(core.text_to_image("a cat", model=tiny_sd, **SD), plain, "seed 3 without LoRA after a cancel")
    styled = core.text_to_image("a cat", model=tiny_sd, loras={"style.safetensors": 1.0}, **SD)
    assert np.abs(pixels(styled)[0] - pixels(plain)[0]).mean() > 0.5, "seed 3: the LoRA changed nothing"


def run_inside_on_step(first, second):
    """Run `first(on_step)`; at its first step, run `second()` in another thread and wait for it, as the
    host's fair scheduler does when it hands the device to another user's request."""
    got = {}

    def on_step(done, total):
        if done == 1:
            other = threading.Thread(target=lambda: got.setdefault("second", second()))
            other.start()
            other.join(timeout=120)  # a guard against hanging for ever, not a measurement
            assert not other.is_alive(), "the second request waited for the first, which waited for it: deadlock"
    got["first"] = first(on_step)
    return got["first"], got["second"]


def test_a_request_waiting_in_on_step_lets_another_run_without_changing_either(tiny_emoji, tiny_sd):
    a = {"model": tiny_emoji, "steps": 3, "seed": 1, "scheduler": "DDIM"}
    b = {"model": tiny_emoji, "steps": 2, "seed": 2, "scheduler": "Euler a", "guidance_scale": 3.0}
    first, second = run_inside_on_step(lambda on_step: core.text_to_image("rocket", **a, on_step=on_step),
                                       lambda: core.text_to_image("moon", **b))
    assert_same(first, core.text_to_image("rocket", **a), "seed 1 with DDIM, interrupted by another request")
    assert_same(second, core.text_to_image("moon", **b), "seed 2 with Euler a, run inside another's step")
    styled = {"model": tiny_sd, "loras": {"style.safetensors": 1.0}, **SD}
    first, second = run_inside_on_step(lambda on_step: core.text_to_image("a cat", **styled, on_step=on_step),
                                       lambda: core.text_to_image("a dog", model=tiny_sd, **SD))
    assert_same(first, core.text_to_image("a cat", **styled), "seed 3 with the LoRA, interrupted by one without")
    assert_same(second, core.text_to_image("a dog", model=tiny_sd, **SD), "seed 3 without the LoRA, run inside")
