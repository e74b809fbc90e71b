"""Issue 14: every explicit choice is honoured, and the SD default sampler runs every step count.

(a) Through the live app (gradio_client) with a tiny SD 1.x pipeline: a sampler, guidance scale and
    "Upscale x4" that were set are run and reported as set; those left out get the model's own.
(b) "DPM++ 2M Karras" on the SD1/SD2/SDXL noise schedules takes every step count 1..100, and runs
    them as diffusers does; only the emoji model's cosine schedule, where diffusers' loop truly
    breaks, is refused.
(c) Image to image at a low strength (whose steps land in the range that was refused) runs.
"""

from __future__ import annotations

import json

import pytest
import sd_fixtures
import torch
from gradio_client import Client, handle_file
from PIL import Image
from servers import free_port

import core
from core import catalog
from core.build import sd_configs
from core.errors import InvalidInput
from core.models import files as model_files
from core.models import registry as models
from core.models.schedulers import make_scheduler
from core.paths import REPO_DIR, WEIGHTS_DIR

SD = "tiny-sd1"
"""A diffusers folder in the test's models folder (the tiny SD 1.x pipeline of sd_fixtures, native 64 px)."""
KARRAS = "DPM++ 2M Karras"
SD_CONFIGS = {family: json.loads((REPO_DIR / "weights" / "sd-configs" / family / "scheduler" /
                                  "scheduler_config.json").read_text()) for family in ("sd1", "sd2", "sdxl")}
EMOJI_CONFIG = json.loads((WEIGHTS_DIR / "emoji-diffusion" / "scheduler" / "scheduler_config.json").read_text())


@pytest.fixture(scope="module")
def sd_models(tmp_path_factory):
    """A models folder holding the tiny SD 1.x pipeline as the diffusers folder `SD`."""
    root = tmp_path_factory.mktemp("choices")
    sd_fixtures.save_folder(sd_fixtures.tiny_sd1(0), root / "models" / SD)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", root / "models")
        patch.setattr(sd_configs, "CONFIGS_DIR", root / "configs")  # nothing here may need the real configs
        yield root / "models"
    models.clear_cache()


@pytest.fixture(scope="module")
def client(sd_models):
    """The hub, started as `python app.py` starts it (on a free port), and a gradio_client on it (the app
    reaches nothing but this machine: its models are the local folder's)."""
    import app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    hub = app.build()
    hub.launch(**app.launch_options(app.parse_args(["--port", str(free_port())])), prevent_thread_lock=True,
               quiet=True)
    yield Client(hub.local_url, verbose=False)
    hub.close()
    torch.set_num_threads(threads)


# --- (a) explicit choices through the API ------------------------------------------------------------


def applied(parameters: dict) -> dict:
    return {key: parameters[key] for key in ("scheduler", "steps", "guidance_scale", "upscale", "width", "height")}


@pytest.mark.parametrize("upscale", [True, "on"])
def test_an_explicit_sampler_guidance_and_upscale_are_run_as_set(client, upscale):
    """The issue's call: DDIM, guidance 5 and x4 with an SD model (whose own are DPM++ 2M Karras, 7, off)."""
    gallery, seeds, parameters = client.predict("a cat", model=SD, scheduler="DDIM", steps=2, guidance_scale=5.0,
                                                upscale=upscale, seed=1, api_name="/text_to_image")
    assert applied(parameters) == {"scheduler": "DDIM", "steps": 2, "guidance_scale": 5.0, "upscale": True,
                                   "width": 64, "height": 64}
    assert Image.open(gallery[0]["image"]).size == (256, 256)  # x4 of the native 64 px


def test_the_models_own_settings_fill_only_what_was_left_out(client):
    own = catalog.diffusion_settings(SD)
    assert (own.scheduler, own.guidance_scale, own.upscale) == (KARRAS, 7.0, False)
    _, _, parameters = client.predict("a cat", model=SD, steps=2, seed=1, api_name="/text_to_image")
    assert applied(parameters) == {"scheduler": KARRAS, "steps": 2, "guidance_scale": 7.0, "upscale": False,
                                   "width": 64, "height": 64}
    _, _, parameters = client.predict("a cat", model=SD, steps=2, upscale=False, guidance_scale=7.0, seed=1,
                                      api_name="/text_to_image")  # a choice equal to the model's own is one too
    assert applied(parameters)["upscale"] is False and applied(parameters)["guidance_scale"] == 7.0


def test_only_a_prompt_still_gets_the_default_models_own_settings(client):
    _, _, parameters = client.predict("red apple", api_name="/text_to_image")
    own = catalog.diffusion_settings(None)
    assert applied(parameters) == {"scheduler": own.scheduler, "steps": own.steps, "guidance_scale": own.guidance_scale,
                                   "upscale": own.upscale, "width": own.width, "height": own.height}


def test_an_upscale_value_that_is_no_choice_is_refused_by_name(client):
    with pytest.raises(Exception, match="Upscale x4"):
        client.predict("a cat", model=SD, steps=1, upscale="yes", api_name="/text_to_image")


# --- (b) DPM++ 2M Karras at every step count ---------------------------------------------------------


@pytest.mark.parametrize("family", sorted(SD_CONFIGS))
def test_karras_takes_every_step_count_on_the_sd_schedules(family):
    """Every step count runs to the end as diffusers' own loop steps it: the sigmas the solver uses fall
    strictly to 0, and the timesteps the UNet is given never rise. Rounded to whole timesteps, the last
    Karras sigmas can share one (e.g. ..., 2, 1, 1, 0 at 50 steps: diffusers' own schedule), which
    diffusers' step counter runs."""
    for steps in range(1, 101):
        scheduler = make_scheduler(KARRAS, SD_CONFIGS[family], steps)
        timesteps, sigmas = scheduler.timesteps.tolist(), scheduler.sigmas.tolist()
        assert len(timesteps) == steps and len(sigmas) == steps + 1, steps
        assert all(a > b for a, b in zip(sigmas, sigmas[1:])) and sigmas[-1] == 0, steps
        assert all(a >= b for a, b in zip(timesteps, timesteps[1:])), steps
        assert timesteps.count(timesteps[0]) == 1, steps  # where diffusers' loop finds its first step
        sample = torch.ones(1, 1, 2, 2)
        for t in scheduler.timesteps:  # the solver itself, on a constant model output
            sample = scheduler.step(torch.zeros_like(sample), t, sample).prev_sample
        assert scheduler.step_index == steps and torch.isfinite(sample).all(), steps


def test_karras_on_the_emoji_cosine_schedule_is_refused_where_diffusers_cannot_run_it():
    """Karras sigmas on a cosine schedule repeat the first timestep from 4 steps on, and diffusers' loop
    then starts one sigma late and steps past the end (diffusers issue 12771)."""
    for steps in (1, 2, 3):
        make_scheduler(KARRAS, EMOJI_CONFIG, steps)
    for steps in (4, 25, 100):
        with pytest.raises(InvalidInput, match="choose DPM\\+\\+ 2M or another sampler"):
            make_scheduler(KARRAS, EMOJI_CONFIG, steps)
    assert KARRAS not in catalog.diffusion_settings(None).samplers


# --- (c) image to image at a low strength -------------------------------------------------------------


@pytest.mark.usefixtures("offline")
def test_image_to_image_at_a_low_strength_runs_the_sd_default_sampler(sd_models):
    picture = Image.new("RGB", (64, 64), (200, 40, 40))
    result = core.image_to_image(picture, "a cat", model=SD, strength=0.1, steps=50, seed=2)
    assert result.parameters["scheduler"] == KARRAS and result.parameters["steps"] == 50
    assert result.images[0].size == (64, 64)
    raised = core.image_to_image(picture, "a cat", model=SD, strength=0.02, steps=25, seed=2)  # raised to 50
    assert raised.parameters["steps"] == 50 and any("raised" in w for w in raised.parameters.get("warnings", []))


def test_image_to_image_through_the_api_honours_its_choices(client, tmp_path):
    path = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (40, 200, 40)).save(path)
    _, _, parameters = client.predict(handle_file(str(path)), "a cat", model=SD, scheduler="DDIM", steps=2,
                                      guidance_scale=5.0, strength=0.5, upscale=True, seed=1,
                                      api_name="/image_to_image")
    assert applied(parameters) == {"scheduler": "DDIM", "steps": 2, "guidance_scale": 5.0, "upscale": True,
                                   "width": 64, "height": 64}


def test_the_panel_never_takes_a_value_it_does_not_know_as_the_models_own(sd_models):
    """call_args, as both tabs call it (image to image passes its values unprocessed)."""
    from demos.diffusion_settings import OWN, OWN_GUIDANCE, call_args

    def upscale(value):
        return call_args("", SD, OWN, 0, OWN_GUIDANCE, 0, 0, -1, 1, 1, value)["upscale"]

    assert (upscale(True), upscale("on"), upscale(False), upscale("off")) == (True, True, False, False)
    assert upscale(OWN) is upscale(None) is catalog.diffusion_settings(SD).upscale is False
    for bad in ("yes", 1, 0, "ON"):
        with pytest.raises(Exception, match=r"upscale \(Upscale x4\) must be"):
            upscale(bad)
    assert call_args("", SD, OWN, 0, -2.0, 0, 0, -1, 1, 1, OWN)["guidance_scale"] == -2.0  # core names it
    assert call_args("", SD, OWN, 0, OWN_GUIDANCE, 0, 0, -1, 1, 1, OWN)["guidance_scale"] is None
