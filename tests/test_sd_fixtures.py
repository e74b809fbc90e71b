"""The tiny Stable Diffusion fixtures: detected as the real families, and loadable from all three forms.

The single-file test is the proof that `sd_fixtures.save_single_file` writes the original layout:
diffusers' own reader must give back every tensor of the pipeline, bit for bit.

Hub cache: huggingface_hub copies HF_HUB_CACHE into `huggingface_hub.constants.HF_HUB_CACHE` once, at
its first import, and every cache lookup (`hf_hub_download`, `snapshot_download`) reads that constant
at call time; diffusers keeps no copy of its own. So the test sets the variable (for any child
process) and patches the constant with monkeypatch. That works whichever test module imported
huggingface_hub first, and it spares starting a second interpreter, which costs more than the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import sd_fixtures
import torch

pytestmark = pytest.mark.usefixtures("offline")

FAMILIES = {"sd1": ("v1", sd_fixtures.tiny_sd1), "sdxl": ("xl_base", sd_fixtures.tiny_sdxl)}
"""Our family name -> (what diffusers' `infer_diffusers_model_type` must say, the builder)."""
MODELS = ("unet", "vae", "text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class Written:
    family: str
    pipe: object      # the pipeline as built, the reference for every comparison
    single: Path      # original-layout .safetensors
    configs: Path     # diffusers layout without weights, for from_single_file(config=...)
    folder: Path      # diffusers layout with weights
    cache: Path       # a Hugging Face cache holding `repo_id`
    repo_id: str


@pytest.fixture(scope="module", params=list(FAMILIES))
def written(request, tmp_path_factory) -> Written:
    """One tiny pipeline per family, written in every form once per module."""
    family = request.param
    root = tmp_path_factory.mktemp(family)
    pipe = FAMILIES[family][1]()
    repo_id = f"imagegen-tests/tiny-{family}"
    sd_fixtures.save_to_hub_cache(pipe, root / "hub", repo_id)
    return Written(family, pipe, sd_fixtures.save_single_file(pipe, root / f"{family}.safetensors"),
                   sd_fixtures.save_config_folder(pipe, root / "configs"),
                   sd_fixtures.save_folder(pipe, root / "folder"), root / "hub", repo_id)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run on one thread: these tiny ops are too small to share, and on a loaded 2-core machine a second
    thread that waits for a core made generation 2-4x slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generate(pipe) -> list:
    return pipe("a red apple on a table", num_inference_steps=2, height=64, width=64, output_type="pil",
                generator=torch.Generator().manual_seed(0)).images


def settings(scheduler) -> dict:
    """A scheduler's config without diffusers' bookkeeping (`_class_name`, `_use_default_values`, ...)."""
    return {key: value for key, value in scheduler.config.items() if not key.startswith("_")}


def test_single_file_is_detected_as_the_real_family(written):
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from safetensors.torch import load_file

    state = load_file(written.single)
    assert infer_diffusers_model_type(state) == FAMILIES[written.family][0]
    assert state["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (64, 64, 1, 1)  # 1x1 conv in LDM
    assert all(key.split(".")[0] in ("model", "first_stage_model", "cond_stage_model", "conditioner")
               for key in state)


def test_single_file_reproduces_every_weight(written):
    loaded = type(written.pipe).from_single_file(str(written.single), config=str(written.configs),
                                                 local_files_only=True)
    for name in (name for name in MODELS if getattr(written.pipe, name, None) is not None):
        want, got = getattr(written.pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert sorted(got) == sorted(want), name
        differ = [key for key in want if not torch.equal(got[key], want[key])]
        assert not differ, f"{name}: {len(differ)} tensors differ, first {differ[:3]}"
    assert settings(loaded.scheduler) == settings(written.pipe.scheduler)


def test_folder_loads_and_generates(written):
    from diffusers import DiffusionPipeline

    loaded = DiffusionPipeline.from_pretrained(written.folder, local_files_only=True)
    assert type(loaded) is type(written.pipe)
    [image] = generate(loaded)
    assert (image.size, image.mode) == ((64, 64), "RGB")


def test_hub_cache_loads_by_repo_id(written, monkeypatch):
    import huggingface_hub.constants
    from diffusers import DiffusionPipeline

    snapshot = next((written.cache / f"models--{written.repo_id.replace('/', '--')}" / "snapshots").iterdir())
    assert (snapshot / "model_index.json").is_symlink() and (snapshot / "model_index.json").is_file()
    monkeypatch.setenv("HF_HUB_CACHE", str(written.cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(written.cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    loaded = DiffusionPipeline.from_pretrained(written.repo_id)
    assert type(loaded) is type(written.pipe)
    [image] = generate(loaded)
    assert (image.size, image.mode) == ((64, 64), "RGB")


def test_same_seed_same_weights():
    def unet(seed):
        return sd_fixtures.tiny_sd1(seed).unet.state_dict()

    first, again, other = unet(0), unet(0), unet(1)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["conv_in.weight"], other["conv_in.weight"])


def test_truncated_copy_cannot_be_read(written, tmp_path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    broken = sd_fixtures.truncated_copy(written.single, tmp_path / "broken.safetensors")
    assert broken.stat().st_size == written.single.stat().st_size // 2
    with pytest.raises(SafetensorError):
        load_file(broken)
