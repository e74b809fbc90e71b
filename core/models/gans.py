"""Face GANs: the registry entries and the loader of our DCGAN (net: core.models.dcgan).

The embedded model is a DCGAN generator trained on the synthetic DigiFace-1M faces, taken from the
MIT-licensed PyPI wheel `gan-face-generate` 1.1.1 and converted to safetensors by
`core.build.convert_dcgan` (see weights/README.md). Importing this module loads no torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.catalog import DEFAULT_FACE_MODEL
from core.errors import ModelNotFound, UnsafeModelFile, brief
from core.models import registry
from core.models.registry import ModelKind, ModelSpec
from core.paths import WEIGHTS_DIR

KIND = ModelKind.FACES
DCGAN_FILE = "dcgan-digiface-64.safetensors"
"""The converted weights under weights/faces/ (core.build.convert_dcgan.FILE_NAME)."""


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


registry.register(ModelSpec(
    kind=KIND,
    name=DEFAULT_FACE_MODEL,
    loader=lambda: load_dcgan(WEIGHTS_DIR / "faces" / DCGAN_FILE),
    description=("DCGAN, 64x64 RGB faces; weights MIT (PyPI gan-face-generate 1.1.1), trained on synthetic "
                 "DigiFace-1M (non-commercial research terms)"),
))
