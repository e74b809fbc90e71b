"""Stable Diffusion through core: every model source, samplers, LoRAs, memory, ZeroGPU and bad files.

The models are the tiny random SD 1.x / SDXL pipelines of sd_fixtures, written as a diffusers
folder, a Hugging Face cache entry and original-layout single files; single files load through
the same config-folder mechanism as real checkpoints (core.sd_configs.CONFIGS_DIR points at the
tiny configs here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import core
import sd_fixtures
from core import diffusion, model_files, models, sd_configs, sd_models
from core.errors import ModelNotFound, UnsafeModelFile
from core.paths import REPO_DIR

pytestmark = pytest.mark.usefixtures("offline")
FAST = {"steps": 2, "width": 64, "height": 64, "seed": 3}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def kohya_lora(unet: torch.nn.Module, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random LoRA for every attention projection of `unet`, in kohya/A1111 key names
    (`lora_unet_<module path with _>.lora_down.weight` / `.lora_up.weight` / `.alpha`)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("to_q", "to_k", "to_v"):
            key = "lora_unet_" + name.replace(".", "_")
            state[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features, generator=gen) * 0.5
            state[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank, generator=gen) * 0.5
            state[f"{key}.alpha"] = torch.tensor(float(rank))
    return state


@pytest.fixture(scope="module")
def sd_root(tmp_path_factory):
    """A models folder with the tiny models in every form, and the tiny config folders in use."""
    root = tmp_path_factory.mktemp("sd")
    folder = root / "models"
    sd1, sdxl = sd_fixtures.tiny_sd1(0), sd_fixtures.tiny_sdxl(0)
    sd_fixtures.save_folder(sd1, folder / "tiny-sd1")
    sd_fixtures.save_single_file(sd1, folder / "checkpoints" / "tiny-sd1.safetensors")
    sd_fixtures.save_single_file(sdxl, folder / "checkpoints" / "tiny-sdxl.safetensors")
    for family, pipe in (("sd1", sd1), ("sdxl", sdxl)):
        configs = sd_fixtures.save_config_folder(pipe, root / "configs" / family)
        for tokenizer in configs.glob("tokenizer*"):  # the files core.sd_configs.prepare provides for real ones
            for name in ("vocab.json", "merges.txt"):
                shutil.copyfile(sd_fixtures.clip_tokenizer_dir() / name, tokenizer / name)
            pad = getattr(pipe, tokenizer.name).pad_token
            (tokenizer / "special_tokens_map.json").write_text(json.dumps({"pad_token": pad}))
    sd_fixtures.save_to_hub_cache(sd1, root / "hub", "imagegen-tests/tiny-sd1")
    (folder / "loras").mkdir()
    save_file(kohya_lora(sd1.unet), folder / "loras" / "style.safetensors")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model_files, "MODELS_DIR", folder)
        patch.setattr(sd_configs, "CONFIGS_DIR", root / "configs")
        yield root
    models.clear_cache()


def test_models_folder_lists_checkpoints_folders_and_loras(sd_root):
    assert model_files.scan("checkpoint") == ["checkpoints/tiny-sd1.safetensors",
                                              "checkpoints/tiny-sdxl.safetensors", "tiny-sd1"]
    assert model_files.scan("lora") == ["loras/style.safetensors"]
    choices = diffusion.choices()
    assert choices[0] == diffusion.DEFAULT_MODEL and "tiny-sd1" in choices and "stabilityai/sd-turbo" in choices


def test_folder_model_generates_at_the_requested_size(sd_root):
    result = core.text_to_image("a red apple", model="tiny-sd1", **FAST | {"width": 72, "height": 96})
    assert result.images[0].size == (72, 96) and result.parameters["model"] == "tiny-sd1"
    assert result.parameters["warnings"] == []


@pytest.mark.parametrize("name, family", [("checkpoints/tiny-sd1.safetensors", "sd1"),
                                          ("checkpoints/tiny-sdxl.safetensors", "sdxl")])
def test_single_files_load_offline_through_the_config_folders(sd_root, name, family):
    result = core.text_to_image("a red apple", model=name, **FAST | {"width": 64, "height": 80})
    assert result.images[0].size == (64, 80)
    assert diffusion.get_model(name).family == family
    assert sd_models.guess_family(name) == family  # from the header alone, for the UI


def test_single_file_and_folder_give_the_same_picture(sd_root):
    call = {"scheduler": "DDIM"} | FAST
    folder = core.text_to_image("a cat", model="tiny-sd1", **call).images[0]
    single = core.text_to_image("a cat", model="checkpoints/tiny-sd1.safetensors", **call).images[0]
    assert np.abs(pixels(folder) - pixels(single)).max() <= 1


def test_hub_id_loads_from_the_cache_and_an_uncached_id_says_how_to_fetch_it(sd_root, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sd_root / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = core.text_to_image("a cat", model="imagegen-tests/tiny-sd1", **FAST)
    assert result.images[0].size == (64, 64)
    with pytest.raises(ModelNotFound, match=r"imagegen-tests/missing is not in the Hugging Face cache.*hf download"):
        core.text_to_image("a cat", model="imagegen-tests/missing", **FAST)


@pytest.mark.usefixtures("offline")
def test_without_network_an_uncached_id_fails_at_once_even_when_downloads_are_on(sd_root, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sd_root / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = time.monotonic()
    with pytest.raises(ModelNotFound, match=r"imagegen-tests/elsewhere is not in the Hugging Face cache.*hf download"):
        core.text_to_image("a cat", model="imagegen-tests/elsewhere", **FAST)
    assert time.monotonic() - started < 10  # no minutes of retries (it took 24 s before)


def test_scheduler_change_changes_the_output_deterministically(sd_root):
    run = {sampler: core.text_to_image("a cat", model="tiny-sd1", scheduler=sampler, **FAST).images[0]
           for sampler in ("Euler", "DPM++ 2M Karras")}
    again = core.text_to_image("a cat", model="tiny-sd1", scheduler="Euler", **FAST).images[0]
    assert np.array_equal(pixels(run["Euler"]), pixels(again))
    assert np.abs(pixels(run["Euler"]) - pixels(run["DPM++ 2M Karras"])).mean() > 0.5


def test_lora_changes_the_output_and_weight_zero_does_not(sd_root):
    plain = pixels(core.text_to_image("a cat", model="tiny-sd1", **FAST).images[0])
    styled = core.text_to_image("a cat", model="tiny-sd1", loras={"loras/style.safetensors": 1.0}, **FAST)
    zero = core.text_to_image("a cat", model="tiny-sd1", loras=[("loras/style.safetensors", 0.0)], **FAST)
    after = core.text_to_image("a cat", model="tiny-sd1", **FAST)
    assert np.abs(pixels(styled.images[0]) - plain).mean() > 0.5
    assert styled.parameters["loras"] == [{"file": "loras/style.safetensors", "weight": 1.0}]
    assert np.abs(pixels(zero.images[0]) - plain).max() <= 1
    assert np.array_equal(pixels(after.images[0]), plain)  # left out: the model's own output again


def test_a_lora_named_twice_gets_the_sum_of_its_weights_and_pickled_loras_are_not_listed(sd_root):
    from core import lora

    assert lora.parse_loras([("a.safetensors", 0.5), ("b.safetensors", 1.0), ("a.safetensors", 0.5)]) == [
        ("a.safetensors", 1.0), ("b.safetensors", 1.0)]
    twice = core.text_to_image("a cat", model="tiny-sd1", loras=[("loras/style.safetensors", 0.5)] * 2, **FAST)
    once = core.text_to_image("a cat", model="tiny-sd1", loras={"loras/style.safetensors": 1.0}, **FAST)
    assert np.array_equal(pixels(twice.images[0]), pixels(once.images[0]))
    pickled = model_files.MODELS_DIR / "Lora" / "old.pt"
    pickled.parent.mkdir(exist_ok=True)
    torch.save({"lora_unet_x.lora_down.weight": torch.zeros(1)}, pickled)
    try:
        assert model_files.scan("lora") == ["loras/style.safetensors"]
    finally:
        pickled.unlink()


def test_a_lora_for_another_architecture_is_refused_and_the_model_still_works(sd_root):
    other = kohya_lora(sd_fixtures.tiny_sdxl(1).unet)
    save_file(other, model_files.MODELS_DIR / "loras" / "xl-style.safetensors")
    with pytest.raises(UnsafeModelFile, match="xl-style.safetensors is not a LoRA for tiny-sd1"):
        core.text_to_image("a cat", model="tiny-sd1", loras={"loras/xl-style.safetensors": 1.0}, **FAST)
    assert core.text_to_image("a cat", model="tiny-sd1", **FAST).images


def test_image_to_image_shares_storage_with_text_to_image(sd_root):
    m = diffusion.get_model("tiny-sd1")
    t2i, i2i = m.text_to_image, m.image_to_image
    assert type(i2i).__name__ == "StableDiffusionImg2ImgPipeline"
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(t2i, name), getattr(i2i, name)
        assert next(a.parameters()).data_ptr() == next(b.parameters()).data_ptr()
    result = core.image_to_image(Image.new("RGB", (50, 40), "red"), "a cat", model="tiny-sd1", strength=0.5,
                                 **FAST | {"steps": 4})
    assert result.images[0].size == (64, 64) and result.parameters["input_size"] == [50, 40]
    assert diffusion.get_model("tiny-sd1") is m


def test_long_prompts_are_cut_visibly(sd_root):
    prompt = " ".join(["a very detailed painting of a red apple"] * 12) + " signed by zebra"
    result = core.text_to_image(prompt, model="tiny-sd1", **FAST)
    warning, = result.parameters["warnings"]
    assert "prompt is 99 tokens; the text encoder reads 75" in warning
    assert warning.endswith('left out: "painting of a red apple a very detailed painting of a red … (12 more words)"')


def test_nan_from_a_half_precision_vae_is_decoded_again_in_float32(sd_root):
    m = diffusion.get_model("checkpoints/tiny-sd1.safetensors")
    reference = core.text_to_image("a cat", model="checkpoints/tiny-sd1.safetensors", **FAST).images[0]
    vae = m.text_to_image.vae.to(torch.bfloat16)

    def nan_when_low_precision(module, args, output):
        return output * float("nan") if output.dtype != torch.float32 else output

    hook = vae.decoder.register_forward_hook(nan_when_low_precision)
    try:
        result = core.text_to_image("a cat", model="checkpoints/tiny-sd1.safetensors", **FAST)
    finally:
        hook.remove()
    assert vae.dtype == torch.float32
    assert any("decoded in float32" in w for w in result.parameters["warnings"])
    assert np.abs(pixels(result.images[0]) - pixels(reference)).max() <= 2  # the picture, not a black square


def test_bad_checkpoints_are_refused_and_cached_models_stay_usable(sd_root, tmp_path):
    core.text_to_image("a cat", model="tiny-sd1", **FAST)
    folder = model_files.MODELS_DIR / "checkpoints"
    sd_fixtures.truncated_copy(folder / "tiny-sd1.safetensors", folder / "broken.safetensors")
    (folder / "garbage.safetensors").write_bytes(b"\xff" * 64)
    state = sd_fixtures.single_file_state(sd_fixtures.tiny_sd1(0))
    torch.save({"state_dict": state}, folder / "plain.ckpt")
    torch.save({"state_dict": state, "trainer": Image.new("RGB", (1, 1))}, folder / "code.ckpt")
    outside = tmp_path / "outside.safetensors"
    shutil.copyfile(folder / "tiny-sd1.safetensors", outside)
    for name, words in [("checkpoints/broken.safetensors", "corrupt or truncated|not a readable"),
                        ("checkpoints/garbage.safetensors", "not a readable .safetensors file"),
                        ("checkpoints/code.ckpt", "needs unpickling of code"),
                        (str(outside), "outside the allowed folders")]:
        with pytest.raises((UnsafeModelFile, ModelNotFound), match=words):
            core.text_to_image("a cat", model=name, **FAST)
    assert core.text_to_image("a cat", model="checkpoints/plain.ckpt", **FAST).images[0].size == (64, 64)
    assert "tiny-sd1" in " ".join(models.cached())
    assert core.text_to_image("a cat", model="tiny-sd1", **FAST).images


def test_the_cache_evicts_the_least_recently_used_model_over_budget(sd_root, monkeypatch):
    models.clear_cache()
    core.text_to_image("a cat", model="tiny-sd1", **FAST)
    one = models.weight_bytes(diffusion.get_model("tiny-sd1"))
    monkeypatch.setenv("IMAGEGEN_CACHE_GB", str(1.5 * one / 2**30))
    core.text_to_image("a cat", model="checkpoints/tiny-sdxl.safetensors", **FAST)
    assert [k for k in models.cached(diffusion.SOURCE_KIND)] == [
        sd_models.source_key("checkpoints/tiny-sdxl.safetensors")]


def test_files_replaced_while_loaded_never_crash_the_server(sd_root, tmp_path):
    """Weights are read into memory, not memory-mapped: a model or LoRA file truncated in place
    while loaded used to kill the process with SIGBUS. Run in a child process, which would die."""
    folder = tmp_path / "models"
    shutil.copytree(sd_root / "models" / "tiny-sd1", folder / "tiny-sd1")
    shutil.copytree(sd_root / "models" / "loras", folder / "loras")
    probe = textwrap.dedent(f"""
        from pathlib import Path
        import core
        fast = {FAST!r}
        lora = {{"loras/style.safetensors": 1.0}}
        before = core.text_to_image("a cat", model="tiny-sd1", loras=lora, **fast).images[0].tobytes()
        for name in ("tiny-sd1/unet/diffusion_pytorch_model.safetensors", "loras/style.safetensors"):
            path = Path({str(folder)!r}) / name
            path.write_bytes(path.read_bytes()[:1000])  # the same file, cut short
        try:
            core.text_to_image("a cat", model="tiny-sd1", loras=lora, **fast)
        except core.UnsafeModelFile as err:
            print("refused:", err)
        after = core.text_to_image("a cat", model="tiny-sd1", **fast).images[0]
        print("alive", after.size)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_DIR,
                         env={**os.environ, "IMAGEGEN_MODELS_DIR": str(folder), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2].startswith("refused: style.safetensors") and str(folder) not in lines[-2]
    assert lines[-1] == "alive (64, 64)"


def test_zerogpu_wraps_the_gpu_bound_function_only_when_spaces_is_installed(tmp_path):
    (tmp_path / "spaces.py").write_text(textwrap.dedent("""
        def GPU(duration=60):
            def wrap(fn):
                fn.zerogpu_duration = duration
                return fn
            return wrap
    """))
    probe = "import core.diffusion as d; print(getattr(d._denoise, 'zerogpu_duration', None))"
    for path, expected in ((str(tmp_path), "120"), ("", "None")):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_DIR,
                             env={"PYTHONPATH": f"{path}:{REPO_DIR}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin"})
        assert out.stdout.strip().splitlines()[-1] == expected, out.stderr[-2000:]


@pytest.mark.parametrize("index, encoder, family", [
    ({"text_encoder": [], "text_encoder_2": []}, {"hidden_size": 768}, "sdxl"),
    ({"text_encoder": []}, {"hidden_size": 1024}, "sd2"), ({"text_encoder": []}, {"hidden_size": 768}, "sd1")])
def test_a_folders_family_is_read_from_its_json_files(tmp_path, index, encoder, family):
    (tmp_path / "text_encoder").mkdir()
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    (tmp_path / "text_encoder" / "config.json").write_text(json.dumps(encoder))
    assert sd_models.folder_family(tmp_path) == family


def test_api_calls_naming_only_a_model_get_the_models_own_settings(sd_root):
    from demos.diffusion_settings import UNTOUCHED, call_args

    first = [UNTOUCHED[k] for k in ("scheduler", "steps", "guidance_scale", "width", "height")]
    args = call_args("", "checkpoints/tiny-sdxl.safetensors", *first, -1, 1, 1, True)
    assert (args["width"], args["height"], args["scheduler"], args["upscale"]) == (1024, 1024, "DPM++ 2M Karras", False)
    chosen = call_args("", "checkpoints/tiny-sdxl.safetensors", "Euler", 4, 5.0, 64, 32, -1, 1, 1, True)
    assert (chosen["width"], chosen["height"], chosen["scheduler"], chosen["steps"]) == (64, 1024, "Euler", 4)
    emoji = call_args("", diffusion.DEFAULT_MODEL, *first, -1, 1, 1, True)
    assert (emoji["width"], emoji["upscale"]) == (32, True)


def test_the_ui_gets_each_models_defaults_without_loading_it(sd_root):
    models.clear_cache()
    assert diffusion.suggested_settings("stabilityai/sdxl-turbo") == {
        "steps": 1, "guidance_scale": 0.0, "scheduler": "Euler a", "width": 512, "height": 512, "upscale": False}
    assert diffusion.suggested_settings("checkpoints/tiny-sdxl.safetensors") == {
        "steps": 25, "guidance_scale": 5.0, "scheduler": "DPM++ 2M Karras", "width": 1024, "height": 1024,
        "upscale": False}
    assert diffusion.suggested_settings(None)["width"] == 32
    assert models.cached() == []
