"""The sha256 of model files, for the "Model hash" and "Lora hashes" fields every picture carries.

AUTOMATIC1111 writes the first 10 hex digits of a checkpoint's sha256 as "Model hash" and the first
12 of each LoRA's as "Lora hashes" (its `modules/hashes.py`, the "AutoV2" hash that Civitai also
lists), so a picture can be traced to the files that made it. Hashing a 2-7 GB checkpoint takes
seconds, so each file version (path, size, modification time) is hashed once: kept in memory and in
`.cache/model-hashes.json`, which A1111 keeps the same way (its `cache.json`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from core.paths import REPO_DIR

CACHE_FILE = REPO_DIR / ".cache" / "model-hashes.json"
_lock = threading.Lock()
_known: dict[str, str] = {}
_loaded = False


def file_sha256(path: str | os.PathLike) -> str | None:
    """The hex sha256 of the file at `path` (a resolved path inside the models folder or weights/),
    from the cache when this version of it was hashed before; None for a folder or a missing file."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    with _lock:
        _load()
        if key in _known:
            return _known[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 2**20), b""):
            digest.update(block)
    with _lock:
        _known[key] = digest.hexdigest()
        _save()
        return _known[key]


def _load() -> None:
    """Read the cache file once (a damaged one is ignored: the hashes are made again)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        stored = json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        return
    if isinstance(stored, dict):
        _known.update({k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, str)})


def _save() -> None:
    """Write the cache file atomically; a read-only checkout just keeps the hashes in memory."""
    try:
        CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
        partial = CACHE_FILE.with_suffix(".partial")
        partial.write_text(json.dumps(_known, sort_keys=True))
        os.replace(partial, CACHE_FILE)
    except OSError:
        pass
