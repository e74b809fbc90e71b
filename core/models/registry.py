"""The model registry and the lazy, shared cache of loaded models.

Two kinds of entry share one cache:
- **named models** (the embedded ones, and any a caller registers): `register(ModelSpec(...))`, then
  `load(kind, name)`;
- **user files** (a checkpoint, upscaler or face restorer in the models folder):
  `load_source(kind, FileVersion.of(path), loader)`, keyed by the file's version, so a file replaced
  in place is loaded again and never confused with its old self.

Loading happens under a lock: two requests for the same model at once load it once. After each
load, the least recently used models are dropped until the weights held (parameters and buffers of
every torch module a cached object holds) fit `IMAGEGEN_CACHE_GB` (default: half of the machine's
RAM, or of the GPU's memory when models live there). The model just loaded always stays.
Importing this module loads no torch.
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.checks import check_name, shown
from core.errors import ModelNotFound


class ModelKind(str, enum.Enum):
    """What a model is for; each generator uses one or two kinds."""

    DIFFUSION = "diffusion"          # text to image and image to image (one loaded model serves both)
    FACES = "faces"                  # face GANs
    UPSCALER = "upscaler"            # super-resolution nets
    FACE_RESTORER = "face_restorer"  # GFPGAN, RestoreFormer, ...
    CONTROLNET = "controlnet"        # ControlNets, each built for one diffusion model's UNet

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class FileVersion:
    """One version of a file on disk: a model loaded from it is valid while all three stay the same.

    Attributes:
        path: the resolved path.
        size: bytes.
        mtime_ns: modification time in nanoseconds (os.stat).
    """

    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike) -> "FileVersion":
        """The current version of `path` (a file or a folder). Raises FileNotFoundError when it is gone."""
        path = Path(path)
        stat = path.stat()
        return cls(path, stat.st_size, stat.st_mtime_ns)

    def __str__(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ModelSpec:
    """One named entry of the registry.

    Attributes:
        kind: which generator uses it.
        name: the name shown in the UI and accepted as `model=`.
        loader: builds the model object (no arguments); called once, then cached.
        description: one line for the UI (source, size, licence).
    """

    kind: ModelKind
    name: str
    loader: Callable[[], Any]
    description: str = ""


Key = tuple[ModelKind, "str | FileVersion"]
_REGISTRY: dict[tuple[ModelKind, str], ModelSpec] = {}
_CACHE: "OrderedDict[Key, Any]" = OrderedDict()
_SIZES: dict[Key, int] = {}
_LOCK = threading.RLock()


def register(spec: ModelSpec) -> None:
    """Add a named model. Raises ValueError if (kind, name) is already registered with another loader."""
    key = (ModelKind(spec.kind), spec.name)
    if key in _REGISTRY and _REGISTRY[key] != spec:
        raise ValueError(f"model {spec.name!r} of kind {spec.kind} is already registered")
    _REGISTRY[key] = spec


def names(kind: ModelKind) -> list[str]:
    """The registered model names of one kind, in registration order (the default first)."""
    return [name for (k, name) in _REGISTRY if k == kind]


def spec(kind: ModelKind, name: str) -> ModelSpec:
    """The registry entry for (kind, name), the `model=` a user gave.

    Raises:
        InvalidInput: `name` is no name (not text, too long, control characters, invalid Unicode; see
            core.checks.check_name).
        ModelNotFound: no such entry; the message lists the known names.
    """
    try:
        return _REGISTRY[(ModelKind(kind), name)]
    except (KeyError, TypeError):  # TypeError: an unhashable `name`
        check_name("model", name)
        known = ", ".join(names(kind)) or "none"
        raise ModelNotFound(f"unknown {kind} model {shown(name)}; known models: {known}") from None


def load(kind: ModelKind, name: str) -> Any:
    """Return the loaded named model (kind, name), loading and caching it on first use.

    Raises:
        ModelNotFound: the name is not registered, or its loader cannot find its weights.
        UnsafeModelFile: the loader refused its weights file.
    """
    return _cached((ModelKind(kind), name), lambda: spec(kind, name).loader())


def load_source(kind: ModelKind, source: "FileVersion | str", loader: Callable[[], Any]) -> Any:
    """The cached model of a source that is not registered by name: one version of a user's file or
    folder, or a Hub repo id; `loader()` builds it on first use (see `load` for the errors). Older
    versions of the same file are dropped from the cache."""
    key = (ModelKind(kind), source)
    if isinstance(source, FileVersion):
        with _LOCK:
            for stale in [k for k in _CACHE if isinstance(k[1], FileVersion) and k[0] == key[0]
                          and k[1].path == source.path and k[1] != source]:
                del _CACHE[stale], _SIZES[stale]
    return _cached(key, loader)


def _cached(key: Key, loader: Callable[[], Any]) -> Any:
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        model = loader()
        _CACHE[key] = model
        _SIZES[key] = weight_bytes(model)
        _evict(keep=key)
        return model


def weight_bytes(obj: Any) -> int:
    """Bytes of the distinct tensors (parameters and buffers) of the torch modules `obj` holds.

    `obj` may be a module, a diffusers pipeline (its components), a dataclass, or a dict/list/tuple of
    those; storage shared between two pipelines (`from_pipe`) is counted once.
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


def _evict(keep: Key) -> None:
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


def cached(kind: ModelKind | None = None) -> list[str]:
    """Names of the models loaded now, least recently used first: of one kind (a file shows as its
    name), or of all as "kind/name"."""
    with _LOCK:
        if kind is None:
            return [f"{k}/{n}" for (k, n) in _CACHE]
        return [str(n) for (k, n) in _CACHE if k == kind]


def peek(kind: ModelKind, name: "str | FileVersion") -> Any | None:
    """The loaded model (kind, name) if it is cached now, else None; loads nothing."""
    with _LOCK:
        return _CACHE.get((ModelKind(kind), name))


def forget(kind: ModelKind, name: "str | FileVersion") -> None:
    """Drop one model from the cache (it is loaded again on next use); no error if it is not cached."""
    with _LOCK:
        _CACHE.pop((ModelKind(kind), name), None)
        _SIZES.pop((ModelKind(kind), name), None)


def clear_cache() -> None:
    """Forget every loaded model (they are loaded again on next use)."""
    with _LOCK:
        _CACHE.clear()
        _SIZES.clear()
