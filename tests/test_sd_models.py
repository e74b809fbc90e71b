"""Stable Diffusion through core: every model source, samplers, LoRAs, memory, ZeroGPU and bad files.

The models are the tiny random SD 1.x / SDXL pipelines of sd_fixtures, written as a diffusers
folder, a Hugging Face cache entry and original-layout single files; single files load through
the same config-folder mechanism as real checkpoints (core.build.sd_configs.CONFIGS_DIR points at the
tiny configs here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sd_fixtures
import torch
from PIL import Image
from safetensors.torch import save_file

import core
from core import catalog
from core.build import sd_configs
from core.errors import ModelNotFound, UnsafeModelFile
from core.models import diffusion
from core.models import files as model_files
from core.models import registry as models
from core.models import stable_diffusion as sd_models
from core.models.registry import FileVersion, ModelKind
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
        sd_fixtures.save_family_config(pipe, root / "configs", family)
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
    choices = catalog.diffusion_models()
    assert choices[0] == catalog.DEFAULT_DIFFUSION_MODEL and "tiny-sd1" in choices and "stabilityai/sd-turbo" in choices


def test_folder_model_generates_at_the_requested_size(sd_root):
    result = core.text_to_image("a red apple", model="tiny-sd1", **FAST | {"width": 72, "height": 96})
    assert result.images[0].size == (72, 96) and result.parameters["model"] == "tiny-sd1"
    assert result.parameters["warnings"] == []


@pytest.mark.parametrize("name, family", [("checkpoints/tiny-sd1.safetensors", "sd1"),
                                          ("checkpoints/tiny-sdxl.safetensors", "sdxl")])
def test_single_files_load_offline_through_the_config_folders(sd_root, name, family):
    result = core.text_to_image("a red apple", model=name, **FAST | {"width": 64, "height": 80})
    assert result.images[0].size == (64, 80)
    assert diffusion.get(name).family == family
    assert sd_models.guess_family(name) == family  # from the header alone, for the UI


def test_single_file_and_folder_give_the_same_picture(sd_root):
    call = {"scheduler": "DDIM"} | FAST
    folder = core.text_to_image("a cat", model="tiny-sd1", **call).images[0]
    single = core.text_to_image("a cat", model="checkpoints/tiny-sd1.safetensors", **call).images[0]
    assert np.abs(pixels(folder) - pixels(single)).max() <= 1, f"seed {FAST['seed']}: folder and file differ"


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
    refused = socket.socket.connect  # the offline fixture's: every connection fails at once
    attempts = []
    monkeypatch.setattr(socket.socket, "connect", lambda *args: attempts.append(args) or refused(*args))
    with pytest.raises(ModelNotFound, match=r"imagegen-tests/elsewhere is not in the Hugging Face cache.*hf download"):
        core.text_to_image("a cat", model="imagegen-tests/elsewhere", **FAST)
    assert len(attempts) <= 1  # one probe of the Hub, then no retries (they once took 24 s)


def _cached_model_index(cache: Path, repo_id: str) -> None:
    """The least of a Hugging Face cache entry that says a pipeline is there: refs/main and its snapshot's
    model_index.json."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    revision = "0" * 40
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "snapshots" / revision / "model_index.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


def test_model_note_checks_a_hub_id_against_the_cache_alone(tmp_path, models_dir, monkeypatch):
    """What the page says when it loads (issue: a host's default "nonexistent/model" was only reported
    at the first request). The offline fixture makes any connection fail, so none is tried here."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _cached_model_index(tmp_path / "hub", "imagegen-tests/cached")
    (models_dir / "someone" / "local").mkdir(parents=True)  # a folder shaped like a Hub id
    for downloads_off in (True, False):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", downloads_off)
        for here in (None, catalog.DEFAULT_DIFFUSION_MODEL, "imagegen-tests/cached", "someone/local"):
            assert catalog.model_note(here) is None, (here, downloads_off)
        with pytest.raises(ModelNotFound, match="unknown model 'no-such-model'"):
            catalog.model_note("no-such-model")
        with pytest.raises(ModelNotFound, match="'org/a--b' is not a valid Hugging Face repo id"):
            catalog.model_note("org/a--b")
    assert catalog.model_note("nonexistent/model") == ("nonexistent/model is not in the Hugging Face cache yet: "
                                                       "it will be downloaded on first use")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFound, match=r"nonexistent/model is not in the Hugging Face cache and downloads are "
                                            r"off .*`hf download nonexistent/model`"):
        catalog.model_note("nonexistent/model")


def test_scheduler_change_changes_the_output_deterministically(sd_root):
    run = {sampler: core.text_to_image("a cat", model="tiny-sd1", scheduler=sampler, **FAST).images[0]
           for sampler in ("Euler", "DPM++ 2M Karras")}
    again = core.text_to_image("a cat", model="tiny-sd1", scheduler="Euler", **FAST).images[0]
    seed = FAST["seed"]
    assert np.array_equal(pixels(run["Euler"]), pixels(again)), f"seed {seed}: Euler differs between two runs"
    assert np.abs(pixels(run["Euler"]) - pixels(run["DPM++ 2M Karras"])).mean() > 0.5, \
        f"seed {seed}: Euler and DPM++ 2M Karras gave the same image"


def test_lora_changes_the_output_and_weight_zero_does_not(sd_root):
    plain = pixels(core.text_to_image("a cat", model="tiny-sd1", **FAST).images[0])
    styled = core.text_to_image("a cat", model="tiny-sd1", loras={"loras/style.safetensors": 1.0}, **FAST)
    zero = core.text_to_image("a cat", model="tiny-sd1", loras=[("loras/style.safetensors", 0.0)], **FAST)
    after = core.text_to_image("a cat", model="tiny-sd1", **FAST)
    seed = FAST["seed"]
    assert np.abs(pixels(styled.images[0]) - plain).mean() > 0.5, f"seed {seed}: the LoRA changed nothing"
    lora_sha = hashlib.sha256((sd_root / "models" / "loras" / "style.safetensors").read_bytes()).hexdigest()
    assert styled.parameters["loras"] == [{"file": "loras/style.safetensors", "weight": 1.0, "sha256": lora_sha}]
    assert styled.parameters["model_sha256"] is None  # a diffusers folder has no one file to hash
    assert np.abs(pixels(zero.images[0]) - plain).max() <= 1, f"seed {seed}: weight 0 changed the image"
    assert np.array_equal(pixels(after.images[0]), plain), \
        f"seed {seed}: without the LoRA the model's own output did not come back"


def test_a_lora_named_twice_gets_the_sum_of_its_weights_and_pickled_loras_are_not_listed(sd_root):
    from core.models import lora

    assert lora.parse_loras([("a.safetensors", 0.5), ("b.safetensors", 1.0), ("a.safetensors", 0.5)]) == [
        ("a.safetensors", 1.0), ("b.safetensors", 1.0)]
    twice = core.text_to_image("a cat", model="tiny-sd1", loras=[("loras/style.safetensors", 0.5)] * 2, **FAST)
    once = core.text_to_image("a cat", model="tiny-sd1", loras={"loras/style.safetensors": 1.0}, **FAST)
    assert np.array_equal(pixels(twice.images[0]), pixels(once.images[0])), f"seed {FAST['seed']}: 0.5 + 0.5 is not 1"
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
    m = diffusion.get("tiny-sd1")
    t2i, i2i = m.text_to_image, m.image_to_image
    assert type(i2i).__name__ == "StableDiffusionImg2ImgPipeline"
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(t2i, name), getattr(i2i, name)
        assert next(a.parameters()).data_ptr() == next(b.parameters()).data_ptr()
    result = core.image_to_image(Image.new("RGB", (50, 40), "red"), "a cat", model="tiny-sd1", strength=0.5,
                                 **FAST | {"steps": 4})
    assert result.images[0].size == (64, 64) and result.parameters["input_size"] == [50, 40]
    assert diffusion.get("tiny-sd1") is m


def test_long_prompts_are_read_in_chunks_not_cut(sd_root):
    prompt = " ".join(["a very detailed painting of a red apple"] * 12) + " signed by zebra"
    result = core.text_to_image(prompt, model="tiny-sd1", **FAST)
    assert result.parameters["warnings"] == []  # 99 tokens: two 75-token chunks (core.models.prompts)


def test_nan_from_a_half_precision_vae_is_decoded_again_in_float32(sd_root):
    m = diffusion.get("checkpoints/tiny-sd1.safetensors")
    reference = core.text_to_image("a cat", model="checkpoints/tiny-sd1.safetensors", **FAST).images[0]
    vae = m.text_to_image.vae.to(torch.bfloat16)

    def nan_when_low_precision(module, args, output):
        return output * float("nan") if output.dtype != torch.float32 else output

    hook = vae.decoder.register_forward_hook(nan_when_low_precision)
    try:
        result = core.text_to_image("a cat", model="checkpoints/tiny-sd1.safetensors", **FAST)
    finally:
        hook.remove()
        dtype, _ = vae.dtype, vae.to(torch.float32)  # the other tests of this module decode in float32
    assert dtype == torch.bfloat16  # the float32 copy was for that decode only
    assert any("decoded in float32" in w for w in result.parameters["warnings"])
    assert np.abs(pixels(result.images[0]) - pixels(reference)).max() <= 2, \
        f"seed {FAST['seed']}: not the picture"  # the picture, not a black square


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
    one = models.weight_bytes(diffusion.get("tiny-sd1"))
    monkeypatch.setenv("IMAGEGEN_CACHE_GB", str(1.5 * one / 2**30))
    core.text_to_image("a cat", model="checkpoints/tiny-sdxl.safetensors", **FAST)
    assert models.cached(ModelKind.DIFFUSION) == ["tiny-sdxl.safetensors"]
    sdxl = FileVersion.of(model_files.resolve_file("checkpoints/tiny-sdxl.safetensors"))
    assert models.peek(ModelKind.DIFFUSION, sdxl) is not None


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
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_DIR, check=False,
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
    probe = "import core.generators.diffusion as d; print(getattr(d._generate, 'zerogpu_duration', None))"
    for path, expected in ((str(tmp_path), "120"), ("", "None")):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_DIR,
                             check=False, env={"PYTHONPATH": f"{path}:{REPO_DIR}", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin"})
        assert out.stdout.strip().splitlines()[-1] == expected, out.stderr[-2000:]


@pytest.mark.parametrize("index, encoder, family", [
    ({"text_encoder": [], "text_encoder_2": []}, {"hidden_size": 768}, "sdxl"),
    ({"text_encoder": []}, {"hidden_size": 1024}, "sd2"), ({"text_encoder": []}, {"hidden_size": 768}, "sd1")])
def test_a_folders_family_is_read_from_its_json_files(tmp_path, index, encoder, family):
    (tmp_path / "text_encoder").mkdir()
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    (tmp_path / "text_encoder" / "config.json").write_text(json.dumps(encoder))
    assert sd_models.folder_family(tmp_path) == family


def test_api_calls_naming_only_a_model_get_the_models_own_settings(sd_root, monkeypatch):
    """The panel's "model's own" values reach core as None (upscale as the model's own), and core then
    runs the chosen model's own settings; a value that was set is sent and run as set."""
    from core.generators import diffusion as generator
    from demos.diffusion_settings import OWN, OWN_GUIDANCE, call_args

    def settings_only(m, pipe, seeds, settings, *rest, **more):  # what would run, without a 1024-px denoise
        return [Image.new("RGB", (settings["width"], settings["height"]))] * len(seeds), []

    monkeypatch.setattr(generator, "_generate", settings_only)
    own = (OWN, 0, OWN_GUIDANCE, 0, 0)  # sampler, steps, guidance, width, height left untouched
    sdxl = diffusion.get("checkpoints/tiny-sdxl.safetensors").settings  # the tiny UNet's native side: 64 px
    assert (sdxl.scheduler, sdxl.upscale) == ("DPM++ 2M Karras", False)
    args = call_args("", "checkpoints/tiny-sdxl.safetensors", *own, 3, 1, 1, OWN)
    assert (args["width"], args["height"], args["scheduler"], args["upscale"]) == (None, None, None, False)
    run = core.text_to_image("a cat", **args).parameters
    assert (run["width"], run["height"], run["scheduler"], run["steps"], run["guidance_scale"], run["upscale"]) == (
        sdxl.width, sdxl.height, sdxl.scheduler, sdxl.steps, sdxl.guidance_scale, sdxl.upscale)
    chosen = call_args("", "checkpoints/tiny-sdxl.safetensors", "Euler", 4, 5.0, 72, 0, 3, 1, 1, OWN)
    run = core.text_to_image("a cat", **chosen).parameters
    assert (run["width"], run["height"], run["scheduler"], run["steps"]) == (72, sdxl.height, "Euler", 4)
    emoji = call_args("", catalog.DEFAULT_DIFFUSION_MODEL, *own, 3, 1, 1, OWN)
    assert emoji["upscale"] is True
    run = core.text_to_image("a cat", **emoji).parameters
    assert (run["width"], run["upscale"]) == (32, True)


def test_the_ui_gets_each_models_defaults_without_loading_it(sd_root):
    def shown(settings: catalog.DiffusionSettings) -> dict:
        """What the controls follow (the fields the old settings dict had)."""
        return {key: getattr(settings, key) for key in ("steps", "guidance_scale", "scheduler", "width", "height",
                                                        "upscale")}

    models.clear_cache()
    assert shown(catalog.diffusion_settings("stabilityai/sdxl-turbo")) == {
        "steps": 1, "guidance_scale": 0.0, "scheduler": "Euler a", "width": 512, "height": 512, "upscale": False}
    assert shown(catalog.diffusion_settings("checkpoints/tiny-sdxl.safetensors")) == {
        "steps": 25, "guidance_scale": 5.0, "scheduler": "DPM++ 2M Karras", "width": 1024, "height": 1024,
        "upscale": False}
    assert catalog.diffusion_settings(None).width == 32
    assert models.cached() == []


def test_pictures_of_a_single_file_carry_its_model_hash_as_a1111_writes_it(sd_root):
    name = "checkpoints/tiny-sd1.safetensors"
    result = core.text_to_image("a cat", model=name, **FAST)
    sha = hashlib.sha256((sd_root / "models" / name).read_bytes()).hexdigest()
    assert result.parameters["model_sha256"] == sha
    png = core.imaging.io.png_bytes(result.images[0], result.parameters)
    assert f"Model hash: {sha[:10]}" in core.read_parameters(png)["text"]
