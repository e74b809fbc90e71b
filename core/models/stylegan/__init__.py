"""StyleGAN2/StyleGAN3 face generators in PyTorch for the files people bring.

Accepted files (in the models folder; the caller resolves the path):

- `.safetensors`, or `.pt`/`.pth`/`.ckpt` read with `torch.load(weights_only=True)` only;
- two StyleGAN2 layouts: the PyTorch port's `Generator` (rosinality/stylegan2-pytorch: `style.*`,
  `input.input`, `convs.*`, ...; a training checkpoint {"g_ema": ..., "latent_avg": ..., "g", "d", ...},
  or `g_ema.`-prefixed keys in a flat file) and NVIDIA's `G_ema.state_dict()` (stylegan2-ada-pytorch,
  stylegan3: `mapping.fc*`, `synthesis.b{res}.*`, optional `G_ema.` prefix);
- StyleGAN3 `G_ema.state_dict()` files, handed to `core.models.stylegan.stylegan3`.

NVIDIA's `.pkl` files need NVIDIA's code to unpickle and are refused with how to convert them.
Importing this package loads no torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from core.errors import ModelNotFound, UnsafeModelFile
from core.models.style_generator import StyleGenerator

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt")
CONVERT_HOWTO = (
    "NVIDIA's .pkl files can only be read by running NVIDIA's code, so they are refused here. Convert it "
    "once, in a clone of NVlabs/stylegan3 or NVlabs/stylegan2-ada-pytorch that you trust: "
    "`import pickle, torch; G = pickle.load(open('network.pkl', 'rb'))['G_ema']; "
    "torch.save(G.state_dict(), 'g.pt')` (or `safetensors.torch.save_file(G.state_dict(), 'g.safetensors')`), "
    "then put the new file in the models folder")
_NV_SG2 = re.compile(r"^synthesis\.b(\d+)\.const$")
_SG3 = re.compile(r"^synthesis\.L(\d+)_(\d+)_(\d+)\.")
_PREFIXES = ("g_ema.", "G_ema.")


def is_style_file(keys: Iterable[str]) -> bool:
    """True when tensor names `keys` (a file's header, or strings from its pickle) look like a StyleGAN2
    generator in either layout, or a StyleGAN3 generator (with or without a `g_ema.`/`G_ema.` prefix)."""
    return _layout(_strip(set(keys))) is not None


def describe(path: str | os.PathLike) -> str | None:
    """A one-line label such as "StyleGAN2 1024 px (NVIDIA layout)" read from the file's header or
    tensor names without building the net, "StyleGAN pickle (.pkl, convert first)" for a `.pkl`,
    or None when the file is no style generator or cannot be read (never raises for a bad file)."""
    path = Path(path)
    if path.suffix.lower() == ".pkl":
        return "StyleGAN pickle (.pkl, convert to .pt or .safetensors first)"
    try:
        shapes = _shapes(path)
    except (UnsafeModelFile, ModelNotFound, OSError):
        return None
    shapes = {k: v for k, v in _strip_map(shapes).items()}
    layout = _layout(set(shapes))
    if layout is None:
        return None
    res = _resolution(layout, shapes)
    side = f" {res} px" if res else ""
    return {"nv": f"StyleGAN2{side} (NVIDIA layout)", "port": f"StyleGAN2{side} (stylegan2-pytorch layout)",
            "sg3": f"StyleGAN3{side} (NVIDIA layout)"}[layout]


def load_style_file(path: str | os.PathLike) -> StyleGenerator:
    """Load a StyleGAN2/StyleGAN3 generator file as a `StyleGenerator` (numpy in and out).

    Args:
        path: a resolved path to a `.safetensors`, `.pt`, `.pth` or `.ckpt` file (see the module docstring).

    Returns:
        `TorchStyleGenerator` on `core.models.devices.default_device()`, float32; its mean style is the
        file's `w_avg`/`latent_avg` when present.

    Raises:
        ModelNotFound: nothing at `path`.
        UnsafeModelFile: a `.pkl` (with how to convert it), a pickle that needs code to load, an unknown
            suffix, a file of no known layout, a conditional or non-"skip" generator, or a missing,
            extra or misshapen key; the message names the file (never its folder) and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"style generator file {path.name} not found")
    if path.suffix.lower() == ".pkl":
        raise UnsafeModelFile(f"{path.name} is a pickle. {CONVERT_HOWTO}")
    state, latent_avg = _read_generator_state(path)
    layout = _layout(set(state), ask_stylegan3=True)
    if layout is None:
        raise UnsafeModelFile(f"{path.name} is no StyleGAN2/StyleGAN3 generator: expected the keys of "
                              "stylegan2-pytorch's Generator (style.1.weight, input.input, ...) or of NVIDIA's "
                              "G_ema.state_dict() (mapping.fc0.weight, synthesis.b4.const, ...)")
    from core.models.stylegan.torch_side import TorchStyleGenerator

    try:
        if layout == "nv":
            from core.models.stylegan.stylegan2_nv import NVGenerator
            net, label = NVGenerator.from_state_dict(state), "StyleGAN2 (NVIDIA layout)"
        elif layout == "port":
            from core.models.stylegan.stylegan2_port import PortGenerator
            net, label = PortGenerator.from_state_dict(state, latent_avg), "StyleGAN2 (stylegan2-pytorch layout)"
        else:
            from core.models.stylegan import stylegan3
            net, label = stylegan3.from_state_dict(state), "StyleGAN3 (NVIDIA layout)"
    except UnsafeModelFile as err:
        raise UnsafeModelFile(f"{path.name}: {err}") from None
    return TorchStyleGenerator(net, source=f"{path.name}: {label} {net.img_resolution} px, weights brought by "
                                           "the user (the licence of their source applies)")


def _read_generator_state(path: Path):
    """(generator state dict with prefixes stripped, latent_avg tensor or None) from a safetensors or
    weights-only pickle file. Raises UnsafeModelFile for other suffixes or unreadable files."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        from core.models.files import safetensors_header
        safetensors_header(path)  # checks the header first, names the file
        flat = load_file(str(path), device="cpu")
    elif suffix in PICKLE_SUFFIXES:
        flat = _flatten(_load_pickle(path))
    else:
        raise UnsafeModelFile(f"{path.name} has the suffix {suffix or '(none)'}; style generators are read "
                              "from .safetensors, .pt, .pth or .ckpt files")
    latent_avg = flat.get("latent_avg")
    return _strip_map(flat), latent_avg


def _load_pickle(path: Path):
    """`torch.load(weights_only=True)` of `path`, also accepting the argparse.Namespace of the port's
    training checkpoints (plain attributes, no code). Raises UnsafeModelFile as `files.load_pickle_weights`."""
    import argparse

    import torch

    from core.models.files import load_pickle_weights
    with torch.serialization.safe_globals([argparse.Namespace]):
        return load_pickle_weights(path)


def _flatten(obj, prefix: str = "") -> dict:
    """Nested dicts of tensors -> {"a.b.c": tensor}; other values (numbers, Namespaces) are dropped."""
    import torch

    if isinstance(obj, torch.Tensor):
        return {prefix[:-1]: obj}
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {}


def _strip(keys: set[str]) -> set[str]:
    """The generator's own names: those under `g_ema.`/`G_ema.` when present, else all of them."""
    return set(_strip_map(dict.fromkeys(keys)))


def _strip_map(flat: dict) -> dict:
    """`flat` restricted to the `g_ema.`/`G_ema.` entries, prefix removed, when there are any; else `flat`."""
    for prefix in _PREFIXES:
        sub = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
        if sub:
            return sub
    return {k: v for k, v in flat.items() if k != "latent_avg"}


def _layout(keys: set[str], ask_stylegan3: bool = False) -> str | None:
    """"nv" (NVIDIA StyleGAN2), "port" (stylegan2-pytorch), "sg3" (StyleGAN3) or None, from key names.
    Detection order: NVIDIA StyleGAN2, the port, StyleGAN3 (their key sets do not overlap). StyleGAN3 is
    told by its `synthesis.L{i}_{size}_{channels}` layers, or, with `ask_stylegan3`, by that module's
    own `looks_like` (which imports torch; the file scanner does without)."""
    if "mapping.fc0.weight" in keys and any(_NV_SG2.match(k) for k in keys):
        return "nv"
    if {"style.1.weight", "input.input", "to_rgb1.conv.weight"} <= keys:
        return "port"
    if ask_stylegan3:
        try:
            from core.models.stylegan import stylegan3
        except ImportError:  # the StyleGAN3 module is optional
            pass
        else:
            return "sg3" if stylegan3.looks_like(keys) else None
    if "mapping.fc0.weight" in keys and any(_SG3.match(k) for k in keys):
        return "sg3"
    return None


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, or from a weights-only pickle (memory-mapped)."""
    from core.models.files import safetensors_header

    if path.suffix.lower() == ".safetensors":
        return {k: tuple(v["shape"]) for k, v in safetensors_header(path).items()}
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return {k: tuple(v.shape) for k, v in _flatten(_load_pickle(path)).items()}
    return {}


def _resolution(layout: str, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """The output side from key names and shapes, or None when it cannot be told."""
    if layout == "nv":
        return max(int(m.group(1)) for k in shapes if (m := re.match(r"^synthesis\.b(\d+)\.", k)))
    if layout == "port":
        ups = len({k.split(".")[1] for k in shapes if k.startswith("to_rgbs.")})
        const = shapes.get("input.input", ())
        return const[-1] * 2 ** ups if len(const) == 4 else None
    layers = [(int(m.group(1)), int(m.group(2))) for k in shapes if (m := _SG3.match(k))]
    return max(layers)[1] if layers else None
