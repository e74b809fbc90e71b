"""Config-only diffusers folders that let single-file Stable Diffusion checkpoints load offline.

A `.safetensors` checkpoint as A1111 or ComfyUI users keep it holds the weights of every component
but not the diffusers configs nor the tokenizer. `Pipeline.from_single_file(path, config=folder,
local_files_only=True)` takes both from a local folder in diffusers layout; without one it reaches
for the Hugging Face Hub. `weights/sd-configs/<family>/` are those folders, JSON written here from the
published architectures (no weights):

- sd1: Stable Diffusion 1.x as `stable-diffusion-v1-5/stable-diffusion-v1-5` (Rombach et al. 2022,
  arXiv:2112.10752; weights under CreativeML OpenRAIL-M): 512 px, epsilon prediction, CLIP ViT-L/14
  text encoder (Radford et al. 2021, arXiv:2103.00020).
- sd2: Stable Diffusion 2.x as `stabilityai/stable-diffusion-2-1` (weights under CreativeML
  OpenRAIL++-M): 768 px, v-prediction (Salimans & Ho 2022, arXiv:2202.00512), the OpenCLIP ViT-H/14
  text tower (Cherti et al. 2023, arXiv:2212.07143) minus its last layer, as a 23-layer CLIPTextModel.
- sdxl: `stabilityai/stable-diffusion-xl-base-1.0` (Podell et al. 2023, arXiv:2307.01952; weights under
  CreativeML OpenRAIL++-M): CLIP ViT-L/14 plus OpenCLIP ViT-bigG/14, UNet with size/crop conditioning.

Those licences cover the models' weights; the configs here are ours (MIT, like this repository). The
tokenizer vocabulary (vocab.json, merges.txt) is not committed: `prepare` builds it once with
`core.build.clip_tokenizer` and copies it into every `tokenizer*/` folder. See weights/README.md.

    python -c "from core import sd_configs; sd_configs.prepare()"
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from core.build import clip_tokenizer
from core.errors import ModelNotFound
from core.paths import WEIGHTS_DIR

CONFIGS_DIR = WEIGHTS_DIR / "sd-configs"
"""Holds one folder per family, each in diffusers layout (model_index.json and one folder per component)."""

FAMILIES: dict[str, str] = {
    "sd1": "Stable Diffusion 1.x (v1-5 configs): 512 px, epsilon prediction, CLIP ViT-L/14 text encoder",
    "sd2": "Stable Diffusion 2.x (2-1 configs): 768 px, v-prediction, OpenCLIP ViT-H/14 text encoder",
    "sdxl": "Stable Diffusion XL base 1.0: 1024 px, CLIP ViT-L/14 + OpenCLIP ViT-bigG/14 text encoders",
}
"""Family name -> one line on what it covers."""

UPSTREAM: dict[str, str] = {
    "sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd2": "stabilityai/stable-diffusion-2-1",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
}
"""Family name -> the Hub repository whose architecture the configs reproduce (never downloaded)."""

BPE_CACHE = ".clip-bpe"
"""Folder under the configs root where vocab.json and merges.txt are built once, then copied."""

COMPONENT_FILES: dict[str, tuple[str, ...]] = {
    "scheduler": ("scheduler_config.json",),
    "unet": ("config.json",),
    "vae": ("config.json",),
    "text_encoder": ("config.json",),
    "text_encoder_2": ("config.json",),
    "tokenizer": ("tokenizer_config.json", "special_tokens_map.json", *clip_tokenizer.FILES),
    "tokenizer_2": ("tokenizer_config.json", "special_tokens_map.json", *clip_tokenizer.FILES),
}
"""Component folder -> the files `from_single_file` reads there."""

FAMILY_COMPONENTS: dict[str, tuple[str, ...]] = {
    "sd1": ("scheduler", "unet", "vae", "text_encoder", "tokenizer"),
    "sd2": ("scheduler", "unet", "vae", "text_encoder", "tokenizer"),
    "sdxl": ("scheduler", "unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"),
}
"""Family name -> its component folders (the non-null entries of its model_index.json)."""


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ModelNotFound(f"unknown Stable Diffusion family {family!r}; expected one of {', '.join(FAMILIES)}")


def missing_files(family: str, root: Path = CONFIGS_DIR) -> list[Path]:
    """The files of `family`'s folder under `root` that are not there (empty when it is ready).

    Raises:
        ModelNotFound: `family` is not one of FAMILIES.
    """
    _check_family(family)
    folder = Path(root) / family
    wanted = [folder / "model_index.json"]
    wanted += [folder / part / name for part in FAMILY_COMPONENTS[family] for name in COMPONENT_FILES[part]]
    return [path for path in wanted if not path.is_file()]


def prepare(root: Path = CONFIGS_DIR) -> None:
    """Put vocab.json and merges.txt into every `tokenizer*/` folder of every family under `root`.

    Builds them once into `root/.clip-bpe/` with `core.build.clip_tokenizer.prepare` (from the cached
    open_clip_torch wheel, downloaded with pip if needed), then copies; identical files are left
    alone, so a second call does nothing. The JSON configs must already be there (they are committed).

    Raises:
        ModelNotFound: a family folder or one of its tokenizer folders is missing under `root`.
        RuntimeError: the open_clip_torch wheel is not cached and the package registry cannot be reached.
    """
    root = Path(root)
    # 1. check that the committed configs are there, so we never write into a half folder
    tokenizer_dirs = []
    for family, parts in FAMILY_COMPONENTS.items():
        for part in (p for p in parts if p.startswith("tokenizer")):
            folder = root / family / part
            if not (folder / "tokenizer_config.json").is_file():
                raise ModelNotFound(f"{folder} has no tokenizer_config.json; is {root} a checkout's sd-configs?")
            tokenizer_dirs.append(folder)
    # 2. build the BPE files once
    cache = clip_tokenizer.prepare(root / BPE_CACHE)
    # 3. copy them where they are missing or differ
    for folder in tokenizer_dirs:
        for name in clip_tokenizer.FILES:
            src, dest = cache / name, folder / name
            if not (dest.is_file() and filecmp.cmp(src, dest, shallow=False)):
                shutil.copyfile(src, dest)


def config_folder(family: str, root: Path = CONFIGS_DIR) -> Path:
    """The ready config folder of `family`, to pass as `config=` to `from_single_file`.

    Args:
        family: "sd1", "sd2" or "sdxl" (see FAMILIES).
        root: the folder holding one sub-folder per family.

    Returns:
        `root / family`, holding model_index.json and every component's config and tokenizer files.

    Raises:
        ModelNotFound: `family` is unknown, or files are missing (the tokenizer files appear only
            after `prepare`, which scripts/prepare_weights.py calls).
    """
    missing = missing_files(family, root)
    if missing:
        folder = Path(root) / family
        names = ", ".join(str(path.relative_to(folder)) for path in missing)
        raise ModelNotFound(f"{folder} is not ready, it lacks {names}; "
                            "run scripts/prepare_weights.py (core.build.sd_configs.prepare) to build the tokenizer files")
    return Path(root) / family
