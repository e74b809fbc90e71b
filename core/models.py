"""The model registry and the lazy, shared cache of loaded models.

Each generator registers the models it can use (`register`), naming a loader that builds the
model on first use. `load(kind, name)` returns the cached object, so switching tabs or calling a
generator twice loads nothing again. Loading happens under a lock: two requests for the same model
at once load it once.

The cache keeps models within a memory budget: after each load, the least recently used models
are dropped until the weights held (parameters and buffers of every torch module a cached object
holds) fit `IMAGEGEN_CACHE_GB` (default: half of the machine's RAM, or of the GPU's memory when
models live there). The model just loaded always stays.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from core.errors import ModelNotFound


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the registry.

    Attributes:
        kind: which generator uses it: "text_to_image", "faces" or "upscaler".
        name: the name shown in the UI and accepted as `model=`.
        loader: builds the model object (no arguments); called once, then cached.
        description: one line for the UI (source, size, licence).
    """

    kind: str
    name: str
    loader: Callable[[], Any]
    description: str = ""


_REGISTRY: dict[tuple[str, str], ModelSpec] = {}
_CACHE: "OrderedDict[tuple[str, str], Any]" = OrderedDict()
_SIZES: dict[tuple[str, str], int] = {}
_LOCK = threading.RLock()


def register(spec: ModelSpec) -> None:
    """Add a model to the registry. Raises ValueError if (kind, name) is already registered."""
    key = (spec.kind, spec.name)
    if key in _REGISTRY and _REGISTRY[key] != spec:
        raise ValueError(f"model {spec.name!r} of kind {spec.kind!r} is already registered")
    _REGISTRY[key] = spec


def names(kind: str) -> list[str]:
    """The registered model names of one kind, in registration order (the default first)."""
    return [name for (k, name) in _REGISTRY if k == kind]


def spec(kind: str, name: str) -> ModelSpec:
    """The registry entry for (kind, name). Raises ModelNotFound listing the known names."""
    try:
        return _REGISTRY[(kind, name)]
    except KeyError:
        known = ", ".join(names(kind)) or "none"
        raise ModelNotFound(f"unknown {kind} model {name!r}; known models: {known}") from None


def load(kind: str, name: str) -> Any:
    """Return the loaded model (kind, name), loading and caching it on first use.

    After a load, least recently used models are evicted until the cache fits `budget_bytes()`.

    Raises:
        ModelNotFound: the name is not registered, or its loader cannot find its weights.
        UnsafeModelFile: the loader refused its weights file.
    """
    key = (kind, name)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        model = spec(kind, name).loader()
        _CACHE[key] = model
        _SIZES[key] = weight_bytes(model)
        _evict(keep=key)
        return model


def load_file(kind: str, path: os.PathLike, loader: Callable[[], Any]) -> Any:
    """The cached model of a user's file, registered under `kind` as "path@mtime" on first use, so a
    file replaced in place is loaded again; `loader()` builds it (see `load` for the errors)."""
    key = f"{os.fspath(path)}@{os.stat(path).st_mtime_ns}"
    if key not in names(kind):
        register(ModelSpec(kind, key, loader))
    return load(kind, key)


def weight_bytes(obj: Any) -> int:
    """Bytes of the distinct tensors (parameters and buffers) of the torch modules `obj` holds.

    `obj` may be a module, a diffusers pipeline (its components), a dataclass, or a dict/list/tuple of those;
    storage shared between two pipelines (`from_pipe`) is counted once.
    """
    import torch

    seen: set[int] = set()
    total = 0

    def visit(item: Any) -> None:
        nonlocal total
        if isinstance(item, torch.nn.Module):
            for tensor in [*item.parameters(), *item.buffers()]:
                ptr = tensor.untyped_storage().data_ptr()
                if ptr not in seen:
                    seen.add(ptr)
                    total += tensor.untyped_storage().nbytes()
        elif isinstance(item, dict):
            for value in item.values():
                visit(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                visit(value)
        elif hasattr(item, "components"):  # a diffusers pipeline
            visit(dict(item.components))
        elif dataclasses.is_dataclass(item):
            visit(vars(item))

    visit(obj)
    return total


def budget_bytes() -> int:
    """The cache's memory budget: `IMAGEGEN_CACHE_GB` GiB if set, else half of the GPU's memory (CUDA)
    or of the machine's RAM."""
    if os.environ.get("IMAGEGEN_CACHE_GB"):
        return int(float(os.environ["IMAGEGEN_CACHE_GB"]) * 2**30)
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory // 2
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def _evict(keep: tuple[str, str]) -> None:
    """Drop least recently used models (never `keep`) until the cache fits the budget."""
    budget = budget_bytes()
    dropped = False
    while sum(_SIZES.values()) > budget:
        oldest = next((k for k in _CACHE if k != keep), None)
        if oldest is None:
            break
        del _CACHE[oldest], _SIZES[oldest]
        dropped = True
    if dropped:
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def cached(kind: str | None = None) -> list[str]:
    """Names of the models loaded now (of one kind, or all as "kind/name"), least recently used first."""
    with _LOCK:
        if kind is None:
            return [f"{k}/{n}" for (k, n) in _CACHE]
        return [n for (k, n) in _CACHE if k == kind]


def forget(kind: str, name: str) -> None:
    """Drop one model from the cache (it is loaded again on next use); no error if it is not cached."""
    with _LOCK:
        _CACHE.pop((kind, name), None)
        _SIZES.pop((kind, name), None)


def clear_cache() -> None:
    """Forget every loaded model (they are loaded again on next use)."""
    with _LOCK:
        _CACHE.clear()
        _SIZES.clear()
