"""Tiny random Stable Diffusion pipelines, written in the three forms the hub loads them from.

No real weights are reachable in tests, so we build SD 1.x and SDXL pipelines with the real architectures
at toy sizes (seeded random weights; a 64x64 image takes a fraction of a second per step on one core)
and write them as (a) a diffusers folder, (b) a Hugging Face cache entry under a repo id, (c) one
`.safetensors` file in the original LDM/SGM key layout that A1111 and ComfyUI users keep.

`save_single_file` is the inverse of diffusers' reader (`diffusers/loaders/single_file_utils.py`:
`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`, `convert_ldm_clip_checkpoint`,
`convert_open_clip_checkpoint`), written from the layouts, with block numbers derived from the configs.
Importing this module loads neither diffusers nor huggingface_hub, so HF_HUB_CACHE can still be set.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.build import clip_tokenizer
from core.paths import REPO_DIR

TOKENIZER_DIR = REPO_DIR / ".cache" / "clip-tokenizer"
CLIP_POSITIONS = 77  # tokens per prompt, start and end included; the vocabulary is CLIP's 49,408 BPE tokens
LINEAR = {"linear_1": "0", "linear_2": "2"}  # TimestepEmbedding -> nn.Sequential(Linear, SiLU, Linear)
UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_RESNET = {"conv_shortcut": "nin_shortcut"}  # the other resnet names are the same in both layouts
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "fc1": "c_fc", "fc2": "c_proj"}


def clip_tokenizer_dir() -> Path:
    """The folder holding CLIP's vocab.json and merges.txt, built once under `.cache/clip-tokenizer`."""
    return clip_tokenizer.prepare(TOKENIZER_DIR)


@torch.no_grad()
def _finish(*models: torch.nn.Module) -> None:
    """Eval mode, and noise (std 0.02) on every parameter so that no two tensors are alike: with
    default inits (norm weights 1, biases 0) a writer that swapped two of them would still round-trip."""
    for model in models:
        model.eval()
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)


def _clip(hidden: int, layers: int, *, projection: bool, act: str):
    """A CLIP text tower of width `hidden`: (B, 77) token ids -> (B, 77, hidden) states (+ pooled)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=clip_tokenizer.VOCAB_SIZE, max_position_embeddings=CLIP_POSITIONS,
                            hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                            num_attention_heads=4, projection_dim=hidden, hidden_act=act,
                            bos_token_id=49406, eos_token_id=49407)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _tokenizer(**kwargs):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(clip_tokenizer_dir()), model_max_length=CLIP_POSITIONS, **kwargs)


def _vae(scaling_factor: float):
    """AutoencoderKL (32, 32, 64 ch): (B, 3, H, W) in [-1, 1] <-> (B, 4, H/4, W/4) latents.

    Three levels, not two: with H/2 latents SD 1's full-resolution attention made a 64-px step 3x slower.
    """
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(32, 32, 64), down_block_types=("DownEncoderBlock2D",) * 3,
                         up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=4, sample_size=64,
                         scaling_factor=scaling_factor)


def tiny_sd1(seed: int = 0):
    """A random StableDiffusionPipeline shaped like SD 1.5: a CLIP-L-like text encoder (32 wide, 2 layers),
    a UNet (32, 64 ch, 1 layer per block) with cross-attention at the top level as in SD, PNDM."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    with torch.random.fork_rng():  # seeded, and the caller's random state left alone
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(sample_size=16, block_out_channels=(32, 64), layers_per_block=1,
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                    cross_attention_dim=32, attention_head_dim=4)
        vae, text_encoder = _vae(0.18215), _clip(32, 2, projection=False, act="quick_gelu")
        _finish(unet, vae, text_encoder)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=_tokenizer(), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def tiny_sdxl(seed: int = 0):
    """A random StableDiffusionXLPipeline shaped like SDXL base, Euler: CLIP-L-like (32 wide) and
    OpenCLIP-bigG-like (64 wide, 10 layers) text encoders, so cross-attention is 96 wide; a UNet (32, 64 ch,
    2 layers per block) with attention at the lower level (2 transformer layers) and size/crop conditioning
    (6 values x 8 + the pooled 64 = 112 inputs to `add_embedding`).

    The encoders must differ in width: diffusers tells them apart in a single file by comparing the CLIP-L
    position table's width with each model's own. bigG's 10th layer is what marks a file as SDXL.
    """
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(sample_size=16, block_out_channels=(32, 64), layers_per_block=2,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                    transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4),
                                    use_linear_projection=True, cross_attention_dim=96,
                                    addition_embed_type="text_time", addition_time_embed_dim=8,
                                    projection_class_embeddings_input_dim=112)
        vae, text_encoder = _vae(0.13025), _clip(32, 2, projection=False, act="quick_gelu")
        text_encoder_2 = _clip(64, 10, projection=True, act="gelu")
        _finish(unet, vae, text_encoder, text_encoder_2)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=_tokenizer(), tokenizer_2=_tokenizer(pad_token="!"), unet=unet,
                                     scheduler=scheduler, add_watermarker=False)


def save_folder(pipe, dest: Path) -> Path:
    """The pipeline in diffusers layout (model_index.json, one folder per component, safetensors)."""
    pipe.save_pretrained(dest, safe_serialization=True)
    return Path(dest)


def save_to_hub_cache(pipe, cache_dir: Path, repo_id: str) -> Path:
    """Put the pipeline into a Hugging Face cache the way huggingface_hub lays one out; returns the snapshot.

    `cache_dir/models--org--name/` gets `blobs/<sha256>`, `snapshots/<rev>/...` (relative symlinks to the
    blobs) and `refs/main` holding <rev> (40 hex digits, from the contents). With HF_HUB_CACHE=cache_dir
    and HF_HUB_OFFLINE=1, `DiffusionPipeline.from_pretrained(repo_id)` loads it.
    """
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=repo) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        files = {path.relative_to(tmp).as_posix(): path for path in sorted(Path(tmp).rglob("*")) if path.is_file()}
        blobs = {rel: hashlib.sha256(path.read_bytes()).hexdigest() for rel, path in files.items()}
        rev = hashlib.sha1("".join(f"{rel} {blob}\n" for rel, blob in blobs.items()).encode()).hexdigest()
        for rel, path in files.items():
            blob, link = repo / "blobs" / blobs[rel], repo / "snapshots" / rev / rel
            os.replace(path, blob)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(rev)
    return repo / "snapshots" / rev


def save_config_folder(pipe, dest: Path) -> Path:
    """The pipeline in diffusers layout without weights (model_index.json, model and scheduler configs,
    tokenizer files): what `from_single_file(path, config=dest, local_files_only=True)` reads."""
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    for name, part in pipe.components.items():
        if isinstance(part, PreTrainedModel):
            part.config.save_pretrained(Path(dest) / name)
        elif isinstance(part, PreTrainedTokenizerBase):
            part.save_pretrained(Path(dest) / name)
        elif part is not None:  # diffusers models and schedulers
            part.save_config(Path(dest) / name)
    pipe.save_config(dest)
    return Path(dest)


def _unet_key(key: str, config) -> str:
    """A diffusers UNet2DConditionModel key -> its name in the LDM UNet (`openaimodel.UNetModel`).

    LDM numbers blocks flat: input_blocks.0 is conv_in, then per level `layers_per_block` blocks of
    [resnet, attention] and a downsampler block (none after the last level); middle_block is [resnet,
    attention, resnet]; output_blocks has `layers_per_block + 1` blocks per level of [resnet, attention,
    upsampler], the upsampler at index 1 where the level has no attention.
    """
    n = config["layers_per_block"]
    if not isinstance(n, int):
        raise ValueError(f"the LDM layout needs one layers_per_block for all levels, got {n}")

    def down(level: str, i: str | int) -> str:
        return f"input_blocks.{1 + int(level) * (n + 1) + int(i)}"

    def up(level: str, i: str | int) -> str:
        return f"output_blocks.{int(level) * (n + 1) + int(i)}"

    match key.split("."):
        case ["time_embedding" | "add_embedding" as emb, linear, *rest]:
            parts = ["time_embed" if emb == "time_embedding" else "label_emb.0", LINEAR[linear], *rest]
        case ["conv_in" | "conv_norm_out" | "conv_out" as layer, *rest]:
            parts = [{"conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}[layer], *rest]
        case ["down_blocks", level, "resnets", i, layer, *rest]:
            parts = [down(level, i), "0", UNET_RESNET[layer], *rest]
        case ["down_blocks", level, "attentions", i, *rest]:
            parts = [down(level, i), "1", *rest]
        case ["down_blocks", level, "downsamplers", "0", "conv", *rest]:
            parts = [down(level, n), "0.op", *rest]
        case ["mid_block", "resnets", i, layer, *rest]:
            parts = [f"middle_block.{2 * int(i)}", UNET_RESNET[layer], *rest]
        case ["mid_block", "attentions", "0", *rest]:
            parts = ["middle_block.1", *rest]
        case ["up_blocks", level, "resnets", i, layer, *rest]:
            parts = [up(level, i), "0", UNET_RESNET[layer], *rest]
        case ["up_blocks", level, "attentions", i, *rest]:
            parts = [up(level, i), "1", *rest]
        case ["up_blocks", level, "upsamplers", "0", "conv", *rest]:
            parts = [up(level, n), "2" if "CrossAttn" in config["up_block_types"][int(level)] else "1", "conv", *rest]
        case _:
            raise ValueError(f"no LDM name for UNet key {key!r}")
    return ".".join(parts)


def _vae_key(key: str, config) -> str:
    """A diffusers AutoencoderKL key -> its LDM name (`ldm.modules.diffusionmodules.model`).

    Resnets are `block.M`, mid resnets `block_1`/`block_2`, the mid attention `attn_1` with q/k/v/proj_out;
    decoder levels count from the bottom, so diffusers' up_blocks.0 is up.{N-1}.
    """
    top = len(config["up_block_types"]) - 1
    match key.split("."):
        case ["encoder" | "decoder", "conv_in" | "conv_out", _] | ["quant_conv" | "post_quant_conv", _]:
            return key
        case [coder, "conv_norm_out", *rest]:
            parts = [coder, "norm_out", *rest]
        case ["encoder", "down_blocks", level, "resnets", i, layer, *rest]:
            parts = ["encoder.down", level, "block", i, VAE_RESNET.get(layer, layer), *rest]
        case ["encoder", "down_blocks", level, "downsamplers", "0", *rest]:
            parts = ["encoder.down", level, "downsample", *rest]
        case ["decoder", "up_blocks", level, "resnets", i, layer, *rest]:
            parts = ["decoder.up", str(top - int(level)), "block", i, VAE_RESNET.get(layer, layer), *rest]
        case ["decoder", "up_blocks", level, "upsamplers", "0", *rest]:
            parts = ["decoder.up", str(top - int(level)), "upsample", *rest]
        case [coder, "mid_block", "resnets", i, layer, *rest]:
            parts = [coder, f"mid.block_{int(i) + 1}", VAE_RESNET.get(layer, layer), *rest]
        case [coder, "mid_block", "attentions", "0", layer, *rest]:
            rest = rest[1:] if layer == "to_out" else rest  # to_out is [Linear, Dropout]: to_out.0.weight
            parts = [coder, "mid.attn_1", VAE_ATTENTION[layer], *rest]
        case _:
            raise ValueError(f"no LDM name for VAE key {key!r}")
    return ".".join(parts)


def _clip_state(model, prefix: str) -> dict[str, torch.Tensor]:
    """CLIPTextModel as transformers names it, under `prefix` + `text_model.` (which transformers >= 5.6 drops)."""
    return {prefix + "text_model." + key.removeprefix("text_model."): t for key, t in model.state_dict().items()}


def _open_clip_state(model, prefix: str) -> dict[str, torch.Tensor]:
    """CLIPTextModelWithProjection -> OpenCLIP's text tower (`open_clip.model.CLIP`) under `prefix`.

    Each layer's q/k/v projections, (hidden, hidden) each, become nn.MultiheadAttention's one
    `attn.in_proj_weight` (3 * hidden, hidden); `text_projection` is a bare parameter used as `x @ P`,
    so it is stored transposed, (hidden, projection); the position table is a bare `positional_embedding`.
    """
    sd = {key.removeprefix("text_model."): t for key, t in model.state_dict().items()}
    out = {}
    for key, t in sd.items():
        match key.split("."):
            case ["embeddings", "token_embedding", "weight"]:
                out["token_embedding.weight"] = t
            case ["embeddings", "position_embedding", "weight"]:
                out["positional_embedding"] = t
            case ["final_layer_norm", param]:
                out[f"ln_final.{param}"] = t
            case ["text_projection", "weight"]:
                out["text_projection"] = t.T
            case ["encoder", "layers", n, "self_attn", "q_proj", param]:
                qkv = [sd[f"encoder.layers.{n}.self_attn.{p}_proj.{param}"] for p in "qkv"]
                out[f"transformer.resblocks.{n}.attn.in_proj_{param}"] = torch.cat(qkv)
            case ["encoder", "layers", _, "self_attn", "k_proj" | "v_proj", _]:
                pass  # went into in_proj with q_proj
            case ["encoder", "layers", n, "self_attn", "out_proj", param]:
                out[f"transformer.resblocks.{n}.attn.out_proj.{param}"] = t
            case ["encoder", "layers", n, "mlp" | "layer_norm1" | "layer_norm2" as part, *rest]:
                out[".".join([f"transformer.resblocks.{n}", *(OPEN_CLIP_LAYER.get(p, p) for p in [part, *rest])])] = t
            case _:
                raise ValueError(f"no OpenCLIP name for text encoder key {key!r}")
    return {prefix + key: t for key, t in out.items()}


def single_file_state(pipe) -> dict[str, torch.Tensor]:
    """Every weight of `pipe` (UNet, VAE, text encoders) under its name in an original single-file checkpoint.

    SD 1.x: `model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.text_model.*`.
    SDXL: the same UNet and VAE prefixes, `conditioner.embedders.0.transformer.text_model.*` (CLIP-L) and
    `conditioner.embedders.1.model.*` (OpenCLIP bigG).

    Raises:
        ValueError: a key has no LDM name, or two keys got the same one.
    """
    unet = {"model.diffusion_model." + _unet_key(k, pipe.unet.config): t for k, t in pipe.unet.state_dict().items()}
    vae = {"first_stage_model." + _vae_key(k, pipe.vae.config): t for k, t in pipe.vae.state_dict().items()}
    # LDM's VAE attention is made of 1x1 convolutions: (C, C) -> (C, C, 1, 1)
    parts = [unet, {k: t[:, :, None, None] if ".mid.attn_1." in k and t.ndim == 2 else t for k, t in vae.items()}]
    if getattr(pipe, "text_encoder_2", None) is not None:
        parts.append(_clip_state(pipe.text_encoder, "conditioner.embedders.0.transformer."))
        parts.append(_open_clip_state(pipe.text_encoder_2, "conditioner.embedders.1.model."))
    else:
        parts.append(_clip_state(pipe.text_encoder, "cond_stage_model.transformer."))
    state = {k: t for part in parts for k, t in part.items()}
    if len(state) != sum(map(len, parts)):
        raise ValueError("two weights were given the same single-file name")
    return state


def save_single_file(pipe, path: Path) -> Path:
    """Write `single_file_state(pipe)` to `path` as one safetensors file (dtypes kept, contiguous copies)."""
    state = {key: t.detach().contiguous().clone() for key, t in single_file_state(pipe).items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"format": "pt"})
    return Path(path)


def truncated_copy(path: Path, dest: Path, keep: float = 0.5) -> Path:
    """A corrupt checkpoint: the first `keep` (0 <= keep < 1) of `path`'s bytes, written to `dest`."""
    if not 0 <= keep < 1:
        raise ValueError(f"keep must be in [0, 1), got {keep}")
    data = Path(path).read_bytes()
    Path(dest).write_bytes(data[: int(len(data) * keep)])
    return Path(dest)


# --- ControlNets ---------------------------------------------------------------------------------------

def tiny_controlnet(pipe, seed: int = 0):
    """A random ControlNetModel for `pipe`'s UNet (diffusers' `ControlNetModel.from_unet`), with a hint encoder
    of (8, 16, 32) channels: two stride-2 convolutions, 4x smaller, as the tiny VAE's latents (real ones have
    (16, 32, 96, 256): 8x). Noise (std 0.1) on every weight, the zero-initialised output convolutions included,
    so that the control image changes the output."""
    from diffusers import ControlNetModel

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(8, 16, 32))
        with torch.no_grad():
            for param in net.parameters():
                param.add_(torch.randn_like(param) * 0.1)
    return net.eval()


def controlnet_state(net) -> dict[str, torch.Tensor]:
    """A ControlNetModel's weights in the original layout of lllyasviel/ControlNet, as A1111 users keep them:
    `control_model.` + the LDM UNet names of its encoder (`_unet_key`), `zero_convs.N.0` (controlnet_down_blocks.N),
    `middle_block_out.0` (controlnet_mid_block) and `input_hint_block.N` for the hint encoder, a Sequential of
    convolutions with SiLUs between: conv_in at 0, blocks.j at 2 (j + 1), conv_out after the last block.
    The inverse of diffusers' `convert_controlnet_checkpoint` (for its 15-layer hint encoder)."""
    config = net.config
    blocks = len(net.controlnet_cond_embedding.blocks)
    out = {}
    for key, tensor in net.state_dict().items():
        match key.split("."):
            case ["controlnet_down_blocks", i, param]:
                name = f"zero_convs.{i}.0.{param}"
            case ["controlnet_mid_block", param]:
                name = f"middle_block_out.0.{param}"
            case ["controlnet_cond_embedding", "conv_in" | "conv_out" as layer, param]:
                name = f"input_hint_block.{0 if layer == 'conv_in' else 2 * (blocks + 1)}.{param}"
            case ["controlnet_cond_embedding", "blocks", j, param]:
                name = f"input_hint_block.{2 * (int(j) + 1)}.{param}"
            case _:
                name = _unet_key(key, config)
        out["control_model." + name] = tensor
    if len(out) != len(net.state_dict()):
        raise ValueError("two ControlNet weights were given the same single-file name")
    return out


def save_controlnet(net, path: Path, layout: str = "original") -> Path:
    """One `.safetensors` file of a ControlNet: `layout` "original" (controlnet_state) or "diffusers"
    (net.state_dict() as it is, what `diffusion_pytorch_model.safetensors` holds)."""
    state = controlnet_state(net) if layout == "original" else net.state_dict()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: t.detach().contiguous().clone() for k, t in state.items()}, str(path), metadata={"format": "pt"})
    return Path(path)


def save_family_config(pipe, root: Path, family: str) -> Path:
    """`root / family`: the pipeline's config folder with the tokenizer files core.build.sd_configs.prepare
    provides for the real ones, to stand in for weights/sd-configs/<family> (patch sd_configs.CONFIGS_DIR)."""
    import json
    import shutil

    configs = save_config_folder(pipe, root / family)
    for tokenizer in configs.glob("tokenizer*"):
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(clip_tokenizer_dir() / name, tokenizer / name)
        pad = getattr(pipe, tokenizer.name).pad_token
        (tokenizer / "special_tokens_map.json").write_text(json.dumps({"pad_token": pad}))
    return configs
