"""The model registry and the lazy, shared cache of loaded models.

Each generator registers the models it can use (`register`), naming a loader that builds the
model on first use. `load(kind, name)` returns the cached object, so switching tabs or calling a
generator twice loads nothing again. Loading happens under a lock: two requests for the same model
at once load it once.
"""

from __future__ import annotations

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
        return model


def cached(kind: str | None = None) -> list[str]:
    """Names of the models loaded now (of one kind, or all as "kind/name")."""
    with _LOCK:
        if kind is None:
            return [f"{k}/{n}" for (k, n) in _CACHE]
        return [n for (k, n) in _CACHE if k == kind]


def clear_cache() -> None:
    """Forget every loaded model (they are loaded again on next use)."""
    with _LOCK:
        _CACHE.clear()
