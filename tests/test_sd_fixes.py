"""Issue 14 fixes on the tiny SD pipelines: UNet-only checkpoints, LoRA adapter names and unmatched keys,
the VAE's latents mean/std and its precision after a NaN fallback. Offline, fixed seeds."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sd_fixtures
import torch
from safetensors.torch import save_file
from test_sd_models import kohya_lora

import core
from core.errors import UnsafeModelFile
from core.models import diffusion, lora
from core.models import files as model_files
from core.models import registry as models
from core.models import stable_diffusion as sd_models
from core.models import vae as vae_decode

pytestmark = pytest.mark.usefixtures("offline")
FAST = {"steps": 2, "width": 64, "height": 64, "seed": 3}
SD1 = "tiny-sd1"


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


@pytest.fixture(scope="module")
def sd1():
    return sd_fixtures.tiny_sd1(0)


@pytest.fixture(scope="module")
def root(tmp_path_factory, sd1):
    """A models folder with the tiny SD 1.x pipeline as a diffusers folder, and a LoRA folder."""
    folder = tmp_path_factory.mktemp("fixes") / "models"
    sd_fixtures.save_folder(sd1, folder / SD1)
    (folder / "loras").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        yield folder
    models.clear_cache()


def _write(path, state, bump: int = 0):
    """Save a LoRA; `bump` seconds added to its mtime so a rewrite is a new version even within one tick."""
    save_file(state, path)
    if bump:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 10**9))


def test_a_unet_only_checkpoint_names_what_is_missing_and_what_to_do(root, sd1):
    state = {k: t.contiguous() for k, t in sd_fixtures.single_file_state(sd1).items()
             if k.startswith("model.diffusion_model.")}
    save_file(state, root / "unet-only.safetensors")
    with pytest.raises(UnsafeModelFile) as caught:
        core.text_to_image("a cat", model="unet-only.safetensors", **FAST)
    message = str(caught.value)
    assert "unet-only.safetensors has only the UNet" in message and "text encoder and VAE" in message
    assert "full checkpoint" in message and "SingleFileComponentError" not in message


def test_replacing_one_of_two_loras_loads_it_under_its_own_name_and_keeps_the_other(root, sd1):
    a, b = root / "loras" / "a.safetensors", root / "loras" / "b.safetensors"
    _write(a, kohya_lora(sd1.unet, seed=1))
    _write(b, kohya_lora(sd1.unet, seed=2))
    both = {"loras/a.safetensors": 0.7, "loras/b.safetensors": 0.7}
    first = core.text_to_image("a cat", model=SD1, loras=both, **FAST)
    m = diffusion.get(SD1)
    name_a = m.adapters[models.FileVersion.of(a)]
    _write(b, kohya_lora(sd1.unet, seed=3), bump=5)  # b replaced in place by a new version
    second = core.text_to_image("a cat", model=SD1, loras=both, **FAST)
    only_a = core.text_to_image("a cat", model=SD1, loras={"loras/a.safetensors": 0.7}, **FAST)
    names = sorted(m.adapters.values())
    assert m.adapters[models.FileVersion.of(a)] == name_a and len(names) == 2 and len(set(names)) == 2
    assert set(names) == {n for ns in m.text_to_image.get_list_adapters().values() for n in ns}  # old b is off
    assert np.abs(pixels(first) - pixels(second)).mean() > 0.5, "the new version of b changed nothing"
    models.clear_cache()  # a fresh load of the same files gives the same pictures
    fresh = core.text_to_image("a cat", model=SD1, loras=both, **FAST)
    fresh_a = core.text_to_image("a cat", model=SD1, loras={"loras/a.safetensors": 0.7}, **FAST)
    assert np.abs(pixels(second) - pixels(fresh)).max() <= 1, f"seed {FAST['seed']}: not a fresh load's picture"
    assert np.abs(pixels(only_a) - pixels(fresh_a)).max() <= 1, f"seed {FAST['seed']}: a alone changed"


def test_a_lora_that_fails_takes_off_only_what_its_request_added(root, sd1):
    good, bad = root / "loras" / "good.safetensors", root / "loras" / "nothing.safetensors"
    _write(good, kohya_lora(sd1.unet, seed=4))
    gen = torch.Generator().manual_seed(7)
    _write(bad, {"lora_unet_no_such_layer.lora_down.weight": torch.randn(4, 32, generator=gen),
                 "lora_unet_no_such_layer.lora_up.weight": torch.randn(32, 4, generator=gen)})
    core.text_to_image("a cat", model=SD1, loras={"loras/good.safetensors": 1.0}, **FAST)
    m = diffusion.get(SD1)
    before = dict(m.adapters)
    fresh = root / "loras" / "fresh.safetensors"
    _write(fresh, kohya_lora(sd1.unet, seed=5))
    with pytest.raises(UnsafeModelFile, match="nothing.safetensors is not a LoRA for tiny-sd1.*none of its"):
        core.text_to_image("a cat", model=SD1, loras=[("loras/good.safetensors", 1.0),
                                                       ("loras/fresh.safetensors", 1.0),
                                                       ("loras/nothing.safetensors", 1.0)], **FAST)
    assert m.adapters == before  # good stays, fresh (added by the failed request) is gone
    assert set(before.values()) == {n for ns in m.text_to_image.get_list_adapters().values() for n in ns}


def test_lora_layers_that_match_nothing_are_listed_and_a_lora_of_only_those_is_refused(root, sd1):
    state = kohya_lora(sd1.unet, seed=6)
    layers = sum(k.endswith("lora_down.weight") for k in state) + 1
    gen = torch.Generator().manual_seed(8)
    state |= {"lora_unet_label_emb_0_0.lora_down.weight": torch.randn(4, 32, generator=gen),
              "lora_unet_label_emb_0_0.lora_up.weight": torch.randn(32, 4, generator=gen),
              "lora_unet_label_emb_0_0.alpha": torch.tensor(4.0)}
    _write(root / "loras" / "extra.safetensors", state)
    loras = [("loras/extra.safetensors", 1.0)]
    m = diffusion.get(SD1)
    with torch.inference_mode():  # as core.generators.diffusion calls it
        lora.apply(m, loras)
    note, = lora.notes(m, loras)
    assert note == (f"LoRA extra.safetensors: 1 of its {layers} layers match no layer of tiny-sd1 and were "
                    f"ignored (add_embedding.linear_1)")
    result = core.text_to_image("a cat", model=SD1, loras=dict(loras), **FAST)
    assert result.images
    only = {k: t for k, t in state.items() if "label_emb" in k}
    _write(root / "loras" / "only-extra.safetensors", only)
    with pytest.raises(UnsafeModelFile, match="only-extra.safetensors is not a LoRA for tiny-sd1.*none of its"):
        core.text_to_image("a cat", model=SD1, loras={"loras/only-extra.safetensors": 1.0}, **FAST)
    assert lora.notes(m, [("loras/only-extra.safetensors", 1.0)]) == []


def _sdxl_with_latents_stats():
    pipe = sd_fixtures.tiny_sdxl(0)
    pipe.vae.register_to_config(latents_mean=[0.3, -0.2, 0.1, 0.05], latents_std=[2.0, 0.5, 1.5, 0.8])
    return sd_models.wrap("tiny-sdxl-stats", pipe, "sdxl")


def test_a_vae_with_latents_mean_and_std_decodes_as_diffusers_pipeline_does():
    m = _sdxl_with_latents_stats()
    pipe, config = m.text_to_image, m.text_to_image.vae.config
    call = {"prompt": "a cat", "num_inference_steps": 2, "width": 64, "height": 64}
    latents = pipe(generator=torch.Generator().manual_seed(3), output_type="latent", **call).images
    ours, upcast = vae_decode.decode(m, latents)
    theirs = pipe(generator=torch.Generator().manual_seed(3), output_type="pt", **call).images
    assert not upcast and ours.shape == theirs.shape == (1, 3, 64, 64)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    mean, std = (torch.tensor(v).view(1, 4, 1, 1) for v in (config.latents_mean, config.latents_std))
    with torch.inference_mode():
        formula = pipe.vae.decode(latents * std / config.scaling_factor + mean).sample
        plain = pipe.vae.decode(latents / config.scaling_factor).sample
    assert torch.allclose(ours, (formula / 2 + 0.5).clamp(0, 1), atol=1e-5)
    assert (ours - (plain / 2 + 0.5).clamp(0, 1)).abs().mean() > 1e-2  # the statistics matter


def test_after_a_nan_fallback_the_vae_goes_back_to_its_own_precision(sd1):
    m = sd_models.wrap("tiny-sd1-bf16", sd_fixtures.tiny_sd1(0), "sd1")
    vae = m.text_to_image.vae.to(torch.bfloat16)
    latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3))

    def nan_when_low_precision(module, args, output):
        return output * float("nan") if output.dtype != torch.float32 else output

    hook = vae.decoder.register_forward_hook(nan_when_low_precision)
    try:
        fallback, upcast = vae_decode.decode(m, latents)
    finally:
        hook.remove()
    assert upcast and not torch.isnan(fallback).any()
    assert vae.dtype == torch.bfloat16  # back to its own precision for the next request
    again, upcast = vae_decode.decode(m, latents)
    assert not upcast and vae.dtype == torch.bfloat16
    assert (again - fallback).abs().max() < 0.1  # the same picture, in bf16 this time
