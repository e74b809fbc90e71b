"""ControlNet files: which they are, what model they were made for, and their weights under diffusers' names.

Forms (see core.models.controlnet): a diffusers folder (`config.json` naming ControlNetModel), or one file,
`.safetensors` (or `.pth`/`.ckpt`, read with `torch.load(weights_only=True)`), in the original layout of
lllyasviel/ControlNet (`control_model.input_hint_block.*`, also without `control_model.`) or in diffusers'
layout (`controlnet_cond_embedding.*`). What a ControlNet was made for is read from its header or config
alone; weights are read into memory of their own (no memory map: a file replaced while the app runs must not
pull the weights from under a loaded ControlNet). Importing this module loads no torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import UnsafeModelFile, brief
from core.models.files import (
    PICKLE_SUFFIXES,
    SAFE_SUFFIX,
    is_controlnet_folder,
    kind_of,
    load_pickle_weights,
    resolve_file,
    safetensors_header,
)


def locate(model: str) -> Path:
    """The ControlNet file or folder `model` names in the models folder.

    Raises:
        ModelNotFound: as core.models.files.resolve_file.
        UnsafeModelFile: a truncated or garbled `.safetensors` file, or something that is no ControlNet.
    """
    path = resolve_file(model)
    if path.is_file() and path.suffix.lower() == SAFE_SUFFIX:
        safetensors_header(path)  # a truncated or garbled file says so, rather than "not a ControlNet"
    if kind_of(path) != "controlnet":
        raise UnsafeModelFile(f"{path.name} is not a ControlNet: a ControlNet file holds input_hint_block.* or "
                              "controlnet_cond_embedding.* weights; a folder has a config.json of a ControlNetModel")
    return path


def shape_of(path: Path) -> tuple[int | None, bool]:
    """(cross-attention width or None, SDXL size conditioning) of a ControlNet, from its config or header alone.

    Raises:
        UnsafeModelFile: an unreadable, truncated or unsafe file or config.
    """
    if path.is_dir():
        config = folder_config(path)
        width = config.get("cross_attention_dim")
        return (width if isinstance(width, int) else None), config.get("addition_embed_type") == "text_time"
    if path.suffix.lower() == SAFE_SUFFIX:
        shapes = {name: entry["shape"] for name, entry in safetensors_header(path).items()}
    else:
        shapes = {name: list(t.shape) for name, t in _pickled(path).items()}
    widths = [shape[1] for name, shape in shapes.items() if name.endswith("attn2.to_k.weight") and len(shape) == 2]
    names = [name.removeprefix("control_model.") for name in shapes]
    return (widths[0] if widths else None), any(n.startswith(("add_embedding.", "label_emb.")) for n in names)


def misfit(wanted: dict, given: dict, examples: int = 3) -> str | None:
    """What keeps `given` tensors from loading strictly in place of `wanted` ones, in a few words, or None."""
    said = []
    for what, names in (("lacks", [n for n in wanted if n not in given]),
                        ("has no place for", [n for n in given if n not in wanted]),
                        ("has other shapes for", [n for n in wanted if n in given
                                                  and tuple(given[n].shape) != tuple(wanted[n].shape)])):
        if names:
            more = f" and {len(names) - examples} more" if len(names) > examples else ""
            said.append(f"{what} {', '.join(names[:examples])}{more}")
    return "; ".join(said) or None


def folder_config(path: Path) -> dict:
    """A diffusers ControlNet folder's config.json. Raises UnsafeModelFile when it is not one."""
    if not is_controlnet_folder(path):
        raise UnsafeModelFile(f"the folder {path.name} has no config.json of a ControlNetModel")
    return json.loads((path / "config.json").read_text(encoding="utf-8"))


def _pickled(path: Path) -> dict:
    """A pickled file's tensor table (torch.load(weights_only=True); a `state_dict` entry is looked into)."""
    state = load_pickle_weights(path)
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(t, "shape") for t in state.values()):
        raise UnsafeModelFile(f"{path.name} holds no table of tensors")
    return state


def read(path: Path) -> dict[str, Any]:
    """A single file's tensors, in memory of their own. Raises UnsafeModelFile for an unreadable file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if path.suffix.lower() in PICKLE_SUFFIXES:
        return {name: t.clone() for name, t in _pickled(path).items()}
    if path.suffix.lower() != SAFE_SUFFIX:
        raise UnsafeModelFile(f"{path.name}: ControlNet files must be {SAFE_SUFFIX} or {', '.join(PICKLE_SUFFIXES)}")
    safetensors_header(path)  # truncation and garbage give a clear message here
    try:
        return load(path.read_bytes())
    except (SafetensorError, ValueError) as err:
        raise UnsafeModelFile(f"{path.name} is not a readable safetensors file ({brief(err)})") from None


def diffusers_names(state: dict, layers_per_block: int) -> dict:
    """A ControlNet's tensors under diffusers' names (ControlNetModel.state_dict), from either layout.

    The original layout (with or without `control_model.`; other prefixes, e.g. the whole SD model of the
    first releases, are dropped) goes through diffusers' `convert_controlnet_checkpoint`, except the hint
    encoder (`input_hint_block.N`: first conv -> conv_in, last -> conv_out, the others -> blocks.0, 1, ...)
    and SDXL's `label_emb.0.{0,2}` (-> add_embedding.linear_{1,2}), renamed here.
    """
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    if any(name.startswith("controlnet_cond_embedding.") for name in state):
        return state
    if any(name.startswith("control_model.") for name in state):
        state = {n.removeprefix("control_model."): t for n, t in state.items() if n.startswith("control_model.")}
    try:
        hint = sorted({int(n.split(".")[1]) for n in state if n.startswith("input_hint_block.")})
    except ValueError:
        raise UnsafeModelFile("a ControlNet file has input_hint_block weights without a layer number") from None
    renamed = {}
    for name, tensor in state.items():
        parts = name.split(".")
        if parts[0] == "input_hint_block":
            index = hint.index(int(parts[1]))
            layer = "conv_in" if index == 0 else "conv_out" if index == len(hint) - 1 else f"blocks.{index - 1}"
            renamed[f"controlnet_cond_embedding.{layer}.{parts[-1]}"] = tensor
        elif parts[:2] == ["label_emb", "0"]:
            renamed[f"add_embedding.linear_{1 if parts[2] == '0' else 2}.{parts[-1]}"] = tensor
    rest = {n: t for n, t in state.items() if not n.startswith(("input_hint_block.", "label_emb."))}
    try:
        converted = convert_controlnet_checkpoint(rest, {"layers_per_block": layers_per_block})
    except (KeyError, ValueError, IndexError, AttributeError) as err:
        raise UnsafeModelFile(f"a ControlNet file in the original layout could not be converted: {brief(err)}"
                              ) from None
    return {name: t for name, t in converted.items() if t is not None} | renamed


def hint_config(name: str, state: dict) -> dict[str, dict[str, Any]]:
    """What the weights say beyond the UNet's config: {"from_unet": the hint encoder's input and layer channels
    (from_unet's arguments), "config": {"in_channels": the latent channels, 4 also for the ControlNets of
    9-channel inpainting UNets}}."""
    try:
        first = state["controlnet_cond_embedding.conv_in.weight"]
        blocks = sum(1 for n in state if n.startswith("controlnet_cond_embedding.blocks.") and n.endswith(".weight"))
        channels = [first.shape[0]] + [state[f"controlnet_cond_embedding.blocks.{2 * i + 1}.weight"].shape[0]
                                       for i in range(blocks // 2)]
        return {"from_unet": {"conditioning_channels": first.shape[1],
                              "conditioning_embedding_out_channels": tuple(channels)},
                "config": {"in_channels": state["conv_in.weight"].shape[1]}}
    except (KeyError, IndexError, AttributeError) as err:
        raise UnsafeModelFile(f"{name} has no complete ControlNet hint encoder (missing {brief(err)})") from None
