"""LoRAs: low-rank weight updates (Hu et al. 2021, arXiv:2106.09685) applied to a loaded model.

Files are `.safetensors` from the models folder, in kohya/A1111 key names (`lora_unet_...`,
`lora_te_...`) or diffusers/PEFT names; diffusers' `load_lora_weights` converts them (through
PEFT). A LoRA is loaded into a model once, as an adapter named after its file version (`adapter_name`),
and stays loaded; each call sets which adapters are active and with which weight (`set_adapters`), so
weight 0 or leaving a LoRA out restores the model's own output. Layers of a file that match no layer
of the model are counted and named in the result's warnings (`notes`); a file with none is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Sequence

from core.catalog import LORA_WEIGHT_RANGE
from core.checks import check_float, check_name, shown
from core.errors import CoreError, InvalidInput, UnsafeModelFile, brief
from core.models.files import SAFE_SUFFIX, resolve_file, safetensors_header
from core.models.registry import FileVersion

WEIGHT_RANGE = LORA_WEIGHT_RANGE
"""LoRA weights accepted (A1111 allows negatives to steer away from a LoRA's concept)."""


def parse_loras(loras: Iterable[Sequence] | dict | None) -> list[tuple[str, float]]:
    """Normalise the `loras` argument to [(file, weight), ...].

    Accepts None, a dict {file: weight}, or a list or tuple of pairs (file, weight); rows with an
    empty file name are skipped (UI rows left blank), and a file named twice gets the sum of its
    weights (one adapter cannot take two weights at once).

    Raises:
        InvalidInput: `loras` of another type (a number, text, ...), a row that is not (file, weight),
            a file name that is no name (core.checks.check_name: too long, control characters, invalid
            Unicode), or a weight outside WEIGHT_RANGE.
    """
    if loras is None:
        return []
    if not isinstance(loras, (dict, list, tuple)):
        raise InvalidInput(f"loras must be a list of (file, weight) pairs or a {{file: weight}} table, "
                           f"got {shown(loras)}")
    rows = loras.items() if isinstance(loras, dict) else loras
    parsed = []
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) != 2:
            raise InvalidInput(f"each LoRA must be (file, weight), got {shown(row)}")
        name, weight = row
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"a LoRA file must be a file name, got {type(name).__name__}")
        name = check_name("lora", name)
        if name is None:
            continue
        parsed.append((name, check_float(f"weight of LoRA {_label(name)}", weight, *WEIGHT_RANGE)))
    summed: dict[str, float] = {}
    for name, weight in parsed:
        summed[name] = summed.get(name, 0.0) + weight
    return [(name, check_float(f"total weight of LoRA {_label(name)}", weight, *WEIGHT_RANGE))
            for name, weight in summed.items()]


def _label(name: str) -> str:
    """A LoRA's file name for messages: as given, or quoted and cut when it is long."""
    return name if len(name) <= 80 else shown(name, 80)


_DOWN = re.compile(r"(lora_down|lora_A|lora[._]down|lora_linear_layer\.down)\.weight$")
"""The key of each LoRA layer's first (down) matrix, in kohya, PEFT and old diffusers names."""
_NOTES: dict[tuple[str, str], str] = {}
"""(model name, adapter name) -> what the LoRA file had that the model could not take (see `notes`)."""
EXAMPLES = 3
"""Unmatched layers named in a warning; the rest are counted."""


def apply(model, loras: list[tuple[str, float]]) -> tuple[list[dict], list[FileVersion]]:
    """Make exactly `loras` active on `model` (a core.models.diffusion.DiffusionModel), each at its weight.

    Returns (the applied list as [{"file": name, "weight": w}, ...] for the result's parameters, the
    file versions this call loaded as new adapters: give them to `unload` if the request fails).
    Layers of a file that match no layer of the model are left out and said in `notes(model, loras)`.
    Once every file is on, an older version of a file replaced in place is taken off.

    Raises:
        InvalidInput: LoRAs on a model without LoRA support (our emoji model).
        ModelNotFound: a file that is not in the models folder.
        UnsafeModelFile: a file that is not .safetensors, not a LoRA for this model's architecture, or with
            no layer that matches one of the model's.
        On any error the adapters this call loaded are taken off again, and only those: the model is
        left as it was.
    """
    pipe = model.text_to_image
    if loras and not hasattr(pipe, "load_lora_weights"):
        raise InvalidInput(f"{model.name} does not take LoRAs; choose a Stable Diffusion model")
    names, weights, loaded = [], [], []
    try:
        for file, weight in loras:
            key, new = _load(model, file)
            loaded += [key] if new else []
            names.append(model.adapters[key])
            weights.append(weight)
    except BaseException:
        unload(model, loaded)
        raise
    replaced = {key.path for key in loaded}
    unload(model, [key for key in model.adapters if key.path in replaced and key not in loaded])
    if names:
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=weights)
    elif model.adapters:
        pipe.disable_lora()
    return [{"file": file, "weight": weight} for file, weight in loras], loaded


def notes(model, loras: list[tuple[str, float]]) -> list[str]:
    """Warnings for the result: for each applied LoRA file with layers that match no layer of `model`,
    how many were ignored and the first few names (as diffusers names them). Call after `apply`."""
    said = []
    for file, _ in loras:
        try:
            key = FileVersion.of(resolve_file(file))
        except (OSError, CoreError):
            continue
        note = _NOTES.get((model.name, model.adapters.get(key, "")))
        if note and note not in said:
            said.append(note)
    return said


def unload(model, keys: list[FileVersion]) -> None:
    """Take the adapters of these LoRA file versions off `model` (those `apply` loaded for a request
    that then failed or was stopped, or older versions of replaced files); keys not loaded are skipped."""
    for key in keys:
        adapter = model.adapters.pop(key, None)
        if adapter is not None:
            _drop(model, adapter)


def adapter_name(key: FileVersion) -> str:
    """The adapter name of one version of a LoRA file: from its path, size and modification time, so two
    files, or two versions of one file, never share a name, and the same version always gets the same."""
    identity = f"{key.path}\0{key.size}\0{key.mtime_ns}".encode("utf-8", "surrogateescape")
    return "lora_" + hashlib.sha256(identity).hexdigest()[:16]


def _load(model, file: str) -> tuple[FileVersion, bool]:
    """Load LoRA `file` into `model` as a new adapter unless this version is loaded already (an older
    version of the same file stays on until `apply` has loaded all). Returns (its version, whether it
    was loaded now)."""
    pipe = model.text_to_image
    path = resolve_file(file)
    if path.suffix.lower() != SAFE_SUFFIX:
        raise UnsafeModelFile(f"{path.name}: LoRA files must be {SAFE_SUFFIX}")
    key = FileVersion.of(path)  # a file replaced in place loads again, under another name
    if key in model.adapters:
        return key, False
    adapter = adapter_name(key)
    _drop(model, adapter)  # a leftover of this version whose clean-up failed: load it afresh
    state = _read(path)
    layers = sum(1 for name in state if _DOWN.search(name))
    mismatch = f"{path.name} is not a LoRA for {model.name} ({model.family})"
    try:
        with _diffusers_reports() as said:
            pipe.load_lora_weights(state, adapter_name=adapter)
    except (ValueError, KeyError, RuntimeError, OSError, TypeError) as err:
        _drop(model, adapter)
        none = "none of its LoRA layers matches a layer of the model: " if "not found" in str(err) else ""
        raise UnsafeModelFile(f"{mismatch}: {none}{brief(err)}") from None
    applied = _applied(pipe, adapter)
    if not applied:
        _drop(model, adapter)
        raise UnsafeModelFile(f"{mismatch}: none of its {layers} LoRA layers matches a layer of the model")
    ignored = _unexpected(said)
    count = max(len(ignored), layers - applied)
    if count:
        shown_names = ", ".join(ignored[:EXAMPLES]) + (", ..." if len(ignored) > EXAMPLES else "")
        total = max(layers, applied + count)
        _NOTES[model.name, adapter] = (f"LoRA {path.name}: {count} of its {total} layers match no layer of "
                                       f"{model.name} and were ignored" + (f" ({shown_names})" if shown_names else ""))
    model.adapters[key] = adapter
    return key, True


@contextlib.contextmanager
def _diffusers_reports():
    """The warnings diffusers logs meanwhile (`_maybe_warn_for_unhandled_keys`: LoRA keys that PEFT found
    no layer for), as a list of messages."""
    import logging

    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    handler, logger = Keep(logging.WARNING), logging.getLogger("diffusers")
    logger.addHandler(handler)
    try:
        yield said
    finally:
        logger.removeHandler(handler)


def _unexpected(messages: list[str]) -> list[str]:
    """The layer names in diffusers' "unexpected keys" warnings, in order, each once
    ("add_embedding.linear_1" for "add_embedding.linear_1.lora_A.weight")."""
    names: list[str] = []
    for message in messages:
        _, found, rest = message.partition("unexpected keys found in the model:")
        if not found:
            continue
        for key in rest.split("Loading adapter weights")[0].strip().rstrip(".").split(","):
            name = re.sub(r"\.(lora_[AB]|lora_embedding_[AB]|lora_magnitude_vector)(\..*)?$", "", key.strip())
            if name and name not in names:
                names.append(name)
    return names


def _applied(pipe, adapter: str) -> int:
    """How many layers of the pipeline's modules carry `adapter`."""
    import torch

    count = 0
    for part in pipe.components.values():
        if isinstance(part, torch.nn.Module):
            count += sum(1 for module in part.modules() if adapter in getattr(module, "lora_A", {})
                         or adapter in getattr(module, "lora_embedding_A", {}))
    return count


def _drop(model, adapter: str) -> None:
    """Take `adapter` off every module of the model's pipeline that has it (nothing when none has)."""
    pipe = model.text_to_image
    _NOTES.pop((model.name, adapter), None)
    if adapter in _loaded_adapters(pipe):
        pipe.delete_adapters(adapter)


def _read(path) -> dict:
    """The LoRA's tensors, read into memory (not memory-mapped: a file replaced while the app runs
    must not pull the weights from under a loaded model). The header is checked first.

    Raises:
        UnsafeModelFile: not a complete safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    safetensors_header(path)  # truncation and garbage give a clear message here
    try:
        return load(path.read_bytes())
    except (SafetensorError, ValueError) as err:
        raise UnsafeModelFile(f"{path.name} is not a readable safetensors file ({brief(err)})") from None


def _loaded_adapters(pipe) -> set[str]:
    """Adapter names present in any of the pipeline's modules."""
    try:
        return {name for names in pipe.get_list_adapters().values() for name in names}
    except (ValueError, AttributeError):
        return set()
