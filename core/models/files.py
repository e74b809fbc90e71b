"""The user's model files: where they may live, what kind each one is, and reading them safely.

Users keep checkpoints, LoRAs, ControlNets and upscalers in the models folder (`core.paths.MODELS_DIR`,
default `models/`, or `IMAGEGEN_MODELS_DIR`), in any sub-folders (A1111's `Stable-diffusion/`, `Lora/`,
`ControlNet/`, `ESRGAN/` or ComfyUI's `checkpoints/`, `loras/`, `controlnet/`, `upscale_models/` all
work). The server reads model files only from there and from the bundled `weights/`: a name with `..`,
an absolute path elsewhere, or a symbolic link that leads out of its folder is refused, and such a link
is left out of the lists.

A file's kind comes from its tensor names, read from the safetensors header without loading any
tensor: ControlNets hold `control_model.input_hint_block.*` or `input_hint_block.*` (the original
layout of lllyasviel/ControlNet, which A1111 reads) or `controlnet_cond_embedding.*` (diffusers'
layout), Stable Diffusion checkpoints hold `model.diffusion_model.*` (the original LDM/SGM layout),
LoRAs hold `lora_*` keys (kohya/A1111) or `.lora_A.`/`.lora_down.` keys (diffusers/PEFT), StyleGAN
face generators the keys of `core.models.stylegan.is_style_file`; anything else is taken for an upscaler (spandrel decides when it loads). Pickle-based files (`.ckpt`, `.pt`,
`.pth`) have no readable header, so their kind comes from the folder they sit in. Diffusers folders are
pipelines (`model_index.json`, kind "checkpoint") or ControlNets (`config.json` naming `ControlNetModel`).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any, Iterable

from core.checks import check_name, shown
from core.errors import InvalidInput, ModelNotFound, UnsafeModelFile
from core.paths import MODELS_DIR, WEIGHTS_DIR

SAFE_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth")
KINDS = ("checkpoint", "lora", "upscaler", "face", "controlnet")
_FOLDER_HINTS = {  # lower-case folder name -> kind, for files without a readable header
    "stable-diffusion": "checkpoint", "checkpoints": "checkpoint", "sd": "checkpoint",
    "lora": "lora", "loras": "lora",
    "esrgan": "upscaler", "realesrgan": "upscaler", "upscale_models": "upscaler", "upscalers": "upscaler",
    "stylegan": "face", "faces": "face", "face_models": "face", "gan": "face",
    "controlnet": "controlnet", "controlnets": "controlnet",
}
CONTROLNET_KEYS = ("control_model.input_hint_block.", "input_hint_block.", "controlnet_cond_embedding.")
"""Tensor-name beginnings that only ControlNets have: the hint encoder of the original layout (with or without
the `control_model.` prefix of A1111's files) and of diffusers' layout."""
NVIDIA_PICKLE_SUFFIX = ".pkl"
"""NVIDIA's StyleGAN pickles: listed as "face" in the face folders so that choosing one explains how to
convert it (core.models.stylegan refuses to unpickle them)."""


def resolve_file(path: str | os.PathLike) -> Path:
    """Find `path` inside the models folder or weights/ and return it resolved.

    A relative path is tried under the models folder, then weights/, then the working directory
    (where it must name something inside one of the two folders); an absolute path must lie inside
    one of them. `..` is refused anywhere in the path, and whatever the path names must stay inside
    the folder it lies in once links are followed: a symbolic link in the models folder that points
    elsewhere (weights/ included) is refused, one that points inside it is followed. Hugging Face
    repo ids (`org/name`) are no paths: they end in ModelNotFound("not found"), which callers catch.

    Raises:
        InvalidInput: `path` is empty, over 1024 characters, or holds a control character, a line break
            or invalid Unicode (core.checks.check_name).
        ModelNotFound: the path has `..`, lies outside those folders, is a link out of its folder, or
            names nothing. The message never shows a server path the user did not give.
    """
    text = os.fspath(path)
    if not text:
        raise InvalidInput(f"model file name is empty; name a file in the models folder ({MODELS_DIR.name}/)")
    check_name("model file name", text)  # no control characters, invalid Unicode or 100,000 characters
    given = Path(text)
    if ".." in given.parts:
        raise ModelNotFound(f"model file {_short(text)} is outside the allowed folders: '..' is not accepted in a "
                            f"model name; name a file inside the models folder ({MODELS_DIR.name}/), e.g. "
                            "Lora/style.safetensors")
    try:
        given = given.expanduser()
    except RuntimeError:  # "~someone" with no such user: taken as a plain relative name
        pass
    roots = [Path(os.path.abspath(root)) for root in (MODELS_DIR, WEIGHTS_DIR)]  # read now: tests patch them
    tries = [given] if given.is_absolute() else [root / given for root in roots] + [Path.cwd() / given]
    placed = [(candidate, root) for candidate in tries for root in roots if _lies_in(candidate, root)]
    if not placed:
        raise ModelNotFound(f"model file {given.name} is outside the allowed folders; copy it into the models "
                            f"folder ({MODELS_DIR.name}/, or set IMAGEGEN_MODELS_DIR)")
    for candidate, root in placed:
        try:
            if not os.path.lexists(candidate):
                continue
            real = candidate.resolve()
            inside, there = real.is_relative_to(root.resolve()), real.exists()
        except (OSError, RuntimeError, ValueError):  # too long a name, a link loop: nothing usable there
            continue
        if not inside:
            raise ModelNotFound(f"model file {_short(text)} is a link to a file outside the {root.name}/ folder "
                                "(outside the allowed folders); copy the file itself into the models folder")
        if there:
            return real
    raise ModelNotFound(f"model file {_short(text)} not found in the models folder ({MODELS_DIR.name}/) or weights/")


def _lies_in(path: Path, root: Path) -> bool:
    """True when the absolute, `..`-free `path` is `root` or below it, as written or with root's links followed."""
    try:
        return path.is_relative_to(root) or path.is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def stays_inside(path: Path, root: Path) -> bool:
    """True when `path` (a models-folder entry), links followed, is still inside `root` (links followed).
    False for a link out of it, a link loop, or a path that cannot be resolved."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def _short(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters for messages (a 100,000-character name stays readable), quoted
    with escapes when it holds control or other unprintable characters."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return shown if shown.isprintable() else repr(shown)


def safetensors_header(path: Path) -> dict[str, dict]:
    """The JSON header of a `.safetensors` file: tensor name -> {"dtype", "shape", "data_offsets"}.

    Reads only the header (8-byte length, then JSON; format: github.com/huggingface/safetensors),
    never a tensor, and checks that the file is long enough for the tensors the header declares,
    so a truncated download is caught here too.

    Raises:
        UnsafeModelFile: the file is not a well-formed safetensors file, or is truncated.
    """
    try:
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if size > 100 * 2**20 or size > path.stat().st_size:
                raise ValueError("header size out of range")
            header = json.loads(handle.read(size))
    except (OSError, ValueError, struct.error) as err:
        raise UnsafeModelFile(f"{path.name} is not a readable .safetensors file ({err})") from None
    if not isinstance(header, dict):
        raise UnsafeModelFile(f"{path.name} is not a readable .safetensors file (header is not a table)")
    header.pop("__metadata__", None)
    problem = _header_problem(header)
    if problem:
        raise UnsafeModelFile(f"{path.name} is not a readable .safetensors file (its header lies: {problem})")
    declared = 8 + size + max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if declared > path.stat().st_size:
        raise UnsafeModelFile(f"{path.name} is not a readable .safetensors file (truncated: {declared:,} bytes "
                              f"declared, {path.stat().st_size:,} present)")
    return header


_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16,
               "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
               "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}
"""Bits per element of safetensors' dtypes; a dtype not listed (a newer format's) skips the size check."""


def _header_problem(header: dict) -> str | None:
    """What is wrong with a safetensors header's tensor table, in a few words, or None. Each entry must
    have a dtype, a shape of whole numbers and data_offsets [begin, end] that span exactly its
    elements; no two tensors may share bytes. (The safetensors library checks the same when it loads;
    diffusers' model detection reads the header alone, so it is checked here first.)"""
    spans = []
    for name, entry in header.items():
        label = shown(name)
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            return f"tensor {label} lacks dtype, shape or data_offsets"
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            return f"tensor {label} has the shape {str(shape)[:40]}"
        if not (type(begin) is int and type(end) is int and 0 <= begin <= end):
            return f"tensor {label} has the data_offsets {str(entry['data_offsets'])[:40]}"
        if dtype in _DTYPE_BITS:
            count = 1
            for n in shape:
                count *= n
            if end - begin != -(-count * _DTYPE_BITS[dtype] // 8):
                return f"tensor {label} declares {end - begin:,} bytes for {count:,} {dtype} values"
        if end > begin:  # an empty tensor takes no bytes
            spans.append((begin, end, label))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            return f"tensors {first} and {second} overlap"
    return None


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a `.safetensors` file (header only). Raises UnsafeModelFile as `safetensors_header`."""
    return list(safetensors_header(path))


def kind_of(path: Path) -> str | None:
    """"checkpoint", "lora", "upscaler", "face" (a StyleGAN generator), "controlnet" (a file, or a diffusers
    ControlNet folder: see `is_controlnet_folder`) or "diffusers" (a pipeline folder) for a models-folder
    entry; None for anything else (other suffixes, unreadable files). A `.pkl` is "face" in a face folder
    (`_FOLDER_HINTS`) and None elsewhere; it is never opened."""
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return "diffusers"
        return "controlnet" if is_controlnet_folder(path) else None
    suffix = path.suffix.lower()
    if suffix == SAFE_SUFFIX:
        try:
            return _kind_of_names(safetensors_keys(path))
        except UnsafeModelFile:
            return None
    if suffix in PICKLE_SUFFIXES:
        for folder in reversed(path.parent.parts):
            if folder.lower() in _FOLDER_HINTS:
                return _FOLDER_HINTS[folder.lower()]
        names = pickled_names(path)
        if names is None:  # torch's legacy format: no cheap look inside
            return "upscaler" if path.stat().st_size < 300 * 2**20 else "checkpoint"
        return _kind_of_names(names)
    if suffix == NVIDIA_PICKLE_SUFFIX:
        hinted = next((_FOLDER_HINTS[f.lower()] for f in reversed(path.parent.parts) if f.lower() in _FOLDER_HINTS),
                      None)  # the innermost hinting folder decides, as for the other pickles
        return "face" if hinted == "face" else None
    return None


def is_controlnet_folder(path: Path) -> bool:
    """True for a diffusers ControlNet folder: a `config.json` whose `_class_name` is "ControlNetModel"."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "ControlNetModel"


def _kind_of_names(names: Iterable[str]) -> str:
    """"controlnet" (CONTROLNET_KEYS; first, since the first ControlNet releases also carry a whole SD
    model), "checkpoint" (a UNet's tensors), "lora" (LoRA tensors), "face" (a StyleGAN2/StyleGAN3
    generator, core.models.stylegan.is_style_file) or "upscaler" from a file's tensor names."""
    from core.models.stylegan import is_style_file

    names = list(names)
    if any(name.startswith(CONTROLNET_KEYS) for name in names):
        return "controlnet"
    if any(name.startswith("model.diffusion_model.") for name in names):
        return "checkpoint"
    if any(name.startswith("lora_") or ".lora_" in name or ".lora." in name for name in names):
        return "lora"
    if is_style_file(names):
        return "face"
    return "upscaler"


def pickled_names(path: Path, limit: int = 64 * 2**20) -> set[str] | None:
    """The strings (tensor names among them) in a torch zip file's pickle, read as opcodes only:
    nothing is unpickled, so no code can run. None for torch's legacy (non-zip) format, a file
    that cannot be read, or a pickle over `limit` bytes."""
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            member = next((i for i in archive.infolist() if i.filename.endswith("/data.pkl")), None)
            if member is None or member.file_size > limit:
                return None
            data = archive.read(member)
        return {arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def scan(kind: str, root: Path | None = None) -> list[str]:
    """Paths (relative to the models folder, sorted) of its entries of one kind.

    `kind` is "checkpoint" (single files and diffusers folders), "lora", "upscaler", "face" or
    "controlnet" (single files and diffusers ControlNet folders). A missing models folder gives an
    empty list. Hidden files and folders are skipped, and so is a symbolic link that leads out of the
    folder (it is not even opened); one that stays inside is listed. Linked folders are not walked into
    (a linked diffusers folder inside is listed). Diffusers folders are listed, never looked into.
    """
    root = MODELS_DIR if root is None else root
    if not root.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and stays_inside(here / d, root))
        for d in list(dirnames):
            folder_kind = kind_of(here / d)
            if folder_kind in ("diffusers", "controlnet"):
                dirnames.remove(d)  # a pipeline or ControlNet folder: list it, do not look inside
                if kind == {"diffusers": "checkpoint"}.get(folder_kind, folder_kind):
                    found.append(here / d)
        for name in filenames:
            if name.startswith(".") or not stays_inside(here / name, root):
                continue
            if kind_of(here / name) == kind:
                if kind == "lora" and not name.lower().endswith(SAFE_SUFFIX):
                    continue  # LoRAs are read from .safetensors only: a .pt one would always be refused
                found.append(here / name)
    return sorted(str(p.relative_to(root)) for p in found)


def load_pickle_weights(path: Path) -> dict[str, Any]:
    """Read a `.ckpt`/`.pt`/`.pth` file with `torch.load(weights_only=True)`: tensors and plain data only.

    Raises:
        UnsafeModelFile: the file needs unpickling of code (refused), or is corrupt or truncated.
    """
    import zipfile

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: not repeated to users
        raise UnsafeModelFile(f"{path.name} needs unpickling of code, which could run anything; refused. "
                              "Convert it to .safetensors with a tool you trust") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UnsafeModelFile(f"{path.name} is corrupt or truncated ({err})") from None
