"""Read image-model files (upscalers, face restorers) with spandrel, safely, and say what they are.

spandrel (chaiNNer-org/spandrel, MIT) recognises an architecture from the state dict's keys and
shapes and rebuilds it. Files are only ever read as tensors: `.safetensors` directly, `.pth` through
`torch.load(weights_only=True)`, so a file that needs code unpickled is refused, never run.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import UnsafeModelFile, brief
from core.models.registry import FileVersion

SUFFIXES = (".safetensors", ".pth")


@dataclass(frozen=True)
class ModelFile:
    """A read model: spandrel's ImageModelDescriptor (on the CPU, eval mode) and the file's
    "imagegen" safetensors metadata (see core.build.convert_ncnn; {} for other files)."""

    descriptor: Any
    meta: dict[str, Any]


def read(path: str | Path) -> ModelFile:
    """Read `path` with spandrel onto the CPU.

    Raises:
        UnsafeModelFile: another extension, a file that needs unpickling beyond tensors, a corrupt
            file, an architecture spandrel does not know, or a model that is not a 3-channel image
            model; the message names the file (not its folder) and the reason.
    """
    import spandrel
    from safetensors import safe_open

    _install_extra_arches()
    path = Path(path)
    suffix, meta = path.suffix.lower(), {}
    if suffix not in SUFFIXES:
        raise UnsafeModelFile(f"{path.name}: model files must be {' or '.join(SUFFIXES)}, got {suffix or 'no extension'}")
    try:
        if suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("imagegen", "{}"))
            descriptor = spandrel.ModelLoader().load_from_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            descriptor = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state))
    except pickle.UnpicklingError:
        raise UnsafeModelFile(f"{path.name} needs unpickling of code, which could run anything; refused. "
                              "Convert it to .safetensors with a tool you trust") from None
    except spandrel.UnsupportedModelError:
        raise UnsafeModelFile(f"{path.name} holds no upscaler or face-restoration architecture that spandrel "
                              "knows") from None
    except Exception as err:  # noqa: BLE001  empty, truncated or odd files: torch, safetensors and spandrel
        # raise SafetensorError, OSError, EOFError, RuntimeError, KeyError, struct.error, ... for them
        reason = brief(err, 120) if _looks_like_weights(path) else "it is neither a PyTorch nor a safetensors file"
        raise UnsafeModelFile(f"{path.name} is not a readable model file ({reason})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or (
            descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise UnsafeModelFile(f"{path.name} is {a_or_an(descriptor.architecture.name)} model, not a 3-channel "
                              "image model")
    return ModelFile(descriptor.eval(), meta)


def a_or_an(word: str) -> str:
    """"a GFPGAN", "an ESRGAN": the article for an architecture name (by its first letter)."""
    return f"{'an' if word[:1].upper() in 'AEIOU' else 'a'} {word}"


def _install_extra_arches() -> None:
    """Let spandrel also read the architectures of `spandrel_extra_arches` (CodeFormer and others
    under non-commercial licences) when the user has installed that package; never installed here."""
    global _EXTRA_DONE
    if not _EXTRA_DONE:
        _EXTRA_DONE = True
        try:
            import spandrel_extra_arches
        except ImportError:
            return
        spandrel_extra_arches.install()


_EXTRA_DONE = False
_SUMMARIES: dict[FileVersion, tuple[str, int, str]] = {}  # file version -> (architecture, scale, purpose)


def _looks_like_weights(path: Path) -> bool:
    """Whether a file starts like a model file: a safetensors header (a little-endian length, then
    "{"), a torch zip archive, or a pickle of protocol 2 or later (torch's legacy format)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return head[8:9] == b"{" or head[:2] == b"PK" or head[:1] == b"\x80"


def describe(path: Path) -> tuple[str, int, str] | None:
    """(architecture name, scale, purpose) of a model file, e.g. ("ESRGAN", 4, "SR") or
    ("GFPGAN", 1, "FaceSR"); None when it cannot be read (see `read`). Remembered per file version,
    so listing a models folder again reads only new or changed files."""
    try:
        key = FileVersion.of(path)
    except OSError:
        return None
    if key not in _SUMMARIES:
        try:
            model = read(path)
        except UnsafeModelFile:
            return None
        d = model.descriptor
        _SUMMARIES[key] = (d.architecture.name, int(model.meta.get("output_scale", d.scale)), d.purpose)
    return _SUMMARIES[key]


def labelled(entries: dict[str, Path], purpose: str) -> list[tuple[str, str]]:
    """(label, name) pairs for a model list from {name: file}: only the files spandrel reads as
    `purpose` ("SR" upscalers, "FaceSR" face restorers), labelled like "name (x4 ESRGAN)"."""
    found = []
    for name, path in entries.items():
        described = describe(path)
        if described and described[2] == purpose:
            found.append((f"{name} (x{described[1]} {described[0]})", name))
    return found
