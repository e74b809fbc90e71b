"""LoRAs: low-rank weight updates (Hu et al. 2021, arXiv:2106.09685) applied to a loaded model.

Files are `.safetensors` from the models folder, in kohya/A1111 key names (`lora_unet_...`,
`lora_te_...`) or diffusers/PEFT names; diffusers' `load_lora_weights` converts them (through
PEFT). A LoRA is loaded into a model once, as a named adapter, and stays loaded; each call sets
which adapters are active and with which weight (`set_adapters`), so weight 0 or leaving a LoRA
out restores the model's own output.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from core.catalog import LORA_WEIGHT_RANGE
from core.checks import check_float, check_name, shown
from core.errors import InvalidInput, UnsafeModelFile, brief
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


_ADAPTER_IDS = itertools.count()


def apply(model, loras: list[tuple[str, float]]) -> tuple[list[dict], list[FileVersion]]:
    """Make exactly `loras` active on `model` (a core.models.diffusion.DiffusionModel), each at its weight.

    Returns (the applied list as [{"file": name, "weight": w}, ...] for the result's parameters, the
    file versions this call loaded as new adapters: give them to `unload` if the request fails).

    Raises:
        InvalidInput: LoRAs on a model without LoRA support (our emoji model).
        ModelNotFound: a file that is not in the models folder.
        UnsafeModelFile: a file that is not .safetensors, or not a LoRA for this model's architecture.
        On any error the adapters this call loaded are taken off again: the model is left as it was.
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
    if names:
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=weights)
    elif model.adapters:
        pipe.disable_lora()
    return [{"file": file, "weight": weight} for file, weight in loras], loaded


def unload(model, keys: list[FileVersion]) -> None:
    """Take the adapters of these LoRA file versions off `model` (those `apply` loaded for a request
    that then failed or was stopped); keys that are not loaded are skipped."""
    pipe = model.text_to_image
    for key in keys:
        adapter = model.adapters.pop(key, None)
        if adapter is not None and adapter in _loaded_adapters(pipe):
            pipe.delete_adapters(adapter)


def _load(model, file: str) -> tuple[FileVersion, bool]:
    """Load LoRA `file` into `model` as a new adapter unless this version is loaded already (an older
    version of the same file is taken off first). Returns (its version, whether it was loaded now)."""
    pipe = model.text_to_image
    path = resolve_file(file)
    if path.suffix.lower() != SAFE_SUFFIX:
        raise UnsafeModelFile(f"{path.name}: LoRA files must be {SAFE_SUFFIX}")
    key = FileVersion.of(path)  # a file replaced in place loads again
    if key in model.adapters:
        return key, False
    for stale in [k for k in model.adapters if k.path == path]:
        pipe.delete_adapters(model.adapters.pop(stale))
    adapter = f"lora{next(_ADAPTER_IDS)}"  # never reused, so no two files share a name
    state = _read(path)
    try:
        pipe.load_lora_weights(state, adapter_name=adapter)
    except (ValueError, KeyError, RuntimeError, OSError, TypeError) as err:
        if adapter in _loaded_adapters(pipe):
            pipe.delete_adapters(adapter)
        raise UnsafeModelFile(f"{path.name} is not a LoRA for {model.name} ({model.family}): "
                              f"{brief(err)}") from None
    model.adapters[key] = adapter
    return key, True


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
