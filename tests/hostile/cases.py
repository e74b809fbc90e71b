"""The hostile inputs, built here byte by byte, shared by the core and the live-app tests.

Pictures (`PICTURES`: name -> (bytes, words the refusal must contain, or None when the picture must be
accepted)), numbers (`BAD_NUMBERS`), texts (`BAD_TEXTS`), and model files (`write_model_files`: pickles
under every weight extension, safetensors whose header lies, partial checkpoints) with the names a
request gives them (`MODEL_FILES`).

Nothing here is random: every file is the same on every run.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zlib
from pathlib import Path

from PIL import Image

MB = 2**20


# --- pictures ------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int = 16, height: int = 16, *, before: list[bytes] = (), after: list[bytes] = (),
        idat: bytes | None = None) -> bytes:
    """An 8-bit RGB PNG of `width` x `height` grey pixels, its header written by hand (so it may declare
    any size), with extra chunks `before` and `after` the pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"".join(b"\x00" + b"\x80" * (3 * width) for _ in range(height)))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + b"".join(before) + _chunk(b"IDAT", idat)
            + b"".join(after) + _chunk(b"IEND", b""))


def png_bomb(width: int, height: int) -> bytes:
    """A PNG declaring width x height px, with 1 KB of pixel data: a decompression bomb's header."""
    return png(width, height, idat=zlib.compress(b"\x00" * 1024))


def gif_bomb() -> bytes:
    """A GIF whose logical screen and only frame declare 65535 x 65535 px (4.3 G px)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x4c\x01\x00"
    return screen + frame + b"\x3b"


def webp_bomb() -> bytes:
    """An animated WebP of two 16x16 frames whose canvas (VP8X chunk) declares 16383 x 16383 px, the
    format's largest: 268 M px, a 1 GB RGBA canvas for libwebp's animation decoder."""
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    data = bytearray(_saved(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=50))
    at = data.find(b"VP8X") + 12  # chunk id, size, flags and reserved bytes; then width - 1, height - 1 (24 bits each)
    data[at:at + 6] = (16383 - 1).to_bytes(3, "little") * 2
    return bytes(data)


def png_text_chunk(kind: bytes, size: int) -> bytes:
    """A PNG ancillary chunk of `kind` whose text (or ICC profile) is `size` bytes once decompressed."""
    payload = b"A" * size
    if kind == b"tEXt":
        return _chunk(kind, b"Comment\x00" + payload)
    if kind == b"zTXt":
        return _chunk(kind, b"Comment\x00\x00" + zlib.compress(payload, 9))
    if kind == b"iTXt":
        return _chunk(kind, b"Comment\x00\x01\x00\x00\x00" + zlib.compress(payload, 9))
    if kind == b"iCCP":
        return _chunk(kind, b"icc\x00\x00" + zlib.compress(payload, 9))
    raise ValueError(kind)


def _saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture_bytes() -> dict[str, bytes]:
    """Name -> file content of every hostile picture (see PICTURES for what each must give)."""
    good_png = png(64, 64)
    jpeg = _saved(Image.new("RGB", (64, 64), (200, 40, 40)), "JPEG", quality=90)
    many_ztxt = [_chunk(b"zTXt", b"k%d\x00\x00" % i + zlib.compress(b"A" * (MB - 64), 9)) for i in range(70)]
    zero = png(0, 0, idat=zlib.compress(b""))
    return {
        # decompression bombs
        "bomb-100k.png": png_bomb(100_000, 100_000),
        "bomb-20k.png": png_bomb(20_000, 20_000),
        "bomb.gif": gif_bomb(),
        "bomb.webp": webp_bomb(),
        # oversized ancillary chunks
        "ztxt-50mb.png": png(before=[png_text_chunk(b"zTXt", 50 * MB)]),
        "itxt-50mb.png": png(before=[png_text_chunk(b"iTXt", 50 * MB)]),
        "iccp-50mb.png": png(before=[png_text_chunk(b"iCCP", 50 * MB)]),
        "ztxt-after-pixels.png": png(after=[png_text_chunk(b"zTXt", 50 * MB)]),
        "ztxt-70x1mb.png": png(before=many_ztxt),
        "text-4mb.png": png(64, 64, before=[png_text_chunk(b"tEXt", 4 * MB)]),
        # truncated, corrupt, not a picture
        "truncated.png": good_png[: len(good_png) // 2],
        "truncated.jpg.png": jpeg[: len(jpeg) // 2],
        "bad-crc.png": good_png[:29] + b"\x00\x00\x00\x00" + good_png[33:],
        "bad-zlib.png": png(64, 64, idat=b"\x78\x9c" + b"\xff" * 200),
        "empty.png": b"",
        "text.png": b"just some notes, not a picture\n",
        "zip.png": b"PK\x03\x04\x14\x00\x00\x00\x00\x00" + b"\x00" * 20 + b"PK\x05\x06" + b"\x00" * 18,
        "html.png": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
        "eps.png": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n",
        # sizes
        "0x0.png": zero,
        "1x1.png": _saved(Image.new("RGB", (1, 1)), "PNG"),
        "1x4096.png": _saved(Image.new("RGB", (1, 4096)), "PNG"),
        "4096x1.png": _saved(Image.new("RGB", (4096, 1)), "PNG"),
        "8x2048.png": _saved(Image.new("RGB", (8, 2048), (90, 140, 200)), "PNG"),
        "2048x8.png": _saved(Image.new("RGB", (2048, 8), (90, 140, 200)), "PNG"),
    }


TEXT_LIMIT = "carries PNG metadata"
UNREADABLE = "not a readable picture"
PICTURES: dict[str, tuple[str, ...] | None] = {
    "bomb-100k.png": ("image", "too many pixels", "at most 4096 px"),
    "bomb-20k.png": ("image", "20000x20000", "at most 4096 px"),
    "bomb.gif": ("image", "at most 4096 px"),
    "bomb.webp": ("image", "at most 4096 px"),
    "ztxt-50mb.png": ("image", TEXT_LIMIT, "without its metadata"),
    "itxt-50mb.png": ("image", TEXT_LIMIT, "without its metadata"),
    "iccp-50mb.png": ("image", TEXT_LIMIT, "without its metadata"),
    "ztxt-after-pixels.png": ("image", TEXT_LIMIT, "without its metadata"),
    "ztxt-70x1mb.png": ("image", TEXT_LIMIT, "without its metadata"),
    "text-4mb.png": None,  # plain text under Pillow's limits: read, and the text is not carried on
    "truncated.png": ("image", UNREADABLE, "upload a PNG"),
    "truncated.jpg.png": ("image", UNREADABLE, "upload a PNG"),
    "bad-crc.png": ("image", UNREADABLE, "upload a PNG"),
    "bad-zlib.png": ("image", UNREADABLE, "upload a PNG"),
    "empty.png": ("image", UNREADABLE, "upload a PNG"),
    "text.png": ("image", UNREADABLE, "upload a PNG"),
    "zip.png": ("image", UNREADABLE, "upload a PNG"),
    "html.png": ("image", UNREADABLE, "upload a PNG"),
    "svg.png": ("image", UNREADABLE, "upload a PNG"),
    "eps.png": ("image", UNREADABLE, "upload a PNG"),
    "0x0.png": ("image", "upload a PNG"),
    "1x1.png": ("image", "1x1 px", "at least 8 px"),
    "1x4096.png": ("image", "1x4096 px", "at least 8 px"),
    "4096x1.png": ("image", "4096x1 px", "at least 8 px"),
    "8x2048.png": None,
    "2048x8.png": None,
}
"""What each picture of picture_bytes() must give: the words of its refusal, or None: accepted."""


# --- numbers and texts ---------------------------------------------------------------------------

BAD_NUMBERS = {
    "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "text": "5", "list": [1], "none": None,
    "true": True, "1e30": 10**30, "-1e30": -(10**30), "10**400": 10**400, "-7": -7,
}
"""Values no numeric parameter takes (None is the model's own for some: see each test's table)."""

LONG_TEXT = "a" * 100_000
BAD_TEXTS = {
    "lone-surrogate": ("\ud800", "invalid Unicode"),
    "nul": ("red\x00apple", "control character"),
    "escape": ("red \x1b[31mapple", "control character"),
    "rtl-override": ("red \u202eelppa", "bidirectional text control"),
    "100k-chars": (LONG_TEXT, ("at most", "limit")),
}
"""Text that no text field takes -> what its refusal says: a word, or a tuple of words one of which."""

STYLE_FACE_MODEL, DCGAN_FACE_MODEL = "mobilestylegan-ffhq-1024", "dcgan-digiface-64"
BAD_FACE_INPUTS = {  # parameter -> {label: value}; each must be refused naming the parameter
    "size": {"100": 100, "2048": 2048, "text": "1000", "true": True},
    "mix_layers": {"beyond": "40-70", "backwards": "3-1", "word": "x", "three": [1, 2, 3]},
    "mix_seed": {"negative": -5, "2**40": 2**40},
    "fps": {"0": 0, "61": 61, "nan": float("nan")},
    "space": {"pixel": "pixel"},
    "loop": {"yes": "yes"},
}
"""The faces tab's own inputs (issue 13), shared by the core and the live-app tests. mix_layers and
mix_seed go to /generate_faces with the style model (the DCGAN has no styles to mix); fps, space and
loop to /interpolate_faces; size to both."""
FACE_ENDPOINTS = {"size": ("generate_faces", "interpolate_faces"), "mix_layers": ("generate_faces",),
                  "mix_seed": ("generate_faces",), "fps": ("interpolate_faces",), "space": ("interpolate_faces",),
                  "loop": ("interpolate_faces",)}
MORE_SEEDS_TEXTS = {"letters": "9, ten", "17-seeds": " ".join(str(seed) for seed in range(17)),
                    "17-in-all": ", ".join(str(seed) for seed in range(3, 18))}
"""/interpolate_faces' "More seeds" text that is refused: not whole numbers, or more than 16 seeds (in
the text alone, or with seed A and seed B)."""


def says(message: str, *words: str | tuple[str, ...]) -> None:
    """Assert that `message` holds each of `words`, in any case; a tuple of words is met by any one of them."""
    for word in words:
        options = word if isinstance(word, tuple) else (word,)
        assert any(option.lower() in message.lower() for option in options), f"none of {options} in {message[:300]!r}"


# --- model files ---------------------------------------------------------------------------------

class Payload:
    """Pickles as `open(marker, "w")`: unpickling it creates the marker file, which the tests look for."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


PICKLE_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
PICKLE_ROLES = {"model": "Stable-diffusion", "lora": "Lora", "upscaler": "ESRGAN", "face_restoration": "GFPGAN"}
"""The role a pickle is named as -> the sub-folder (A1111's names) it is put in."""


def pickle_name(role: str, extension: str, torch_zip: bool = False) -> str:
    """The models-folder path of the pickle for `role` under `extension`."""
    return f"{PICKLE_ROLES[role]}/evil-{'zip-' if torch_zip else ''}{role}{extension}"


def _safetensors(header: dict, data: bytes = b"", *, length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


ROLE_KEYS = {  # tensor names that make each kind of file look like what it is named as
    "model": ("model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.weight"),
    "lora": ("lora_unet_down_blocks_0_attentions_0.lora_down.weight", "lora_unet_down_blocks_0_attentions_0.lora_up.weight"),
    "upscaler": ("body.0.weight", "body.0.bias"),
    "face_restoration": ("toRGB.0.weight", "stylegan_decoder.style_mlp.1.weight"),
}


def lying_safetensors(role: str) -> dict[str, bytes]:
    """Stem -> bytes of a .safetensors file whose header lies about the file, with tensor names of `role`."""
    a, b = ROLE_KEYS[role]
    return {
        "lie-header-beyond-file": _safetensors({a: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                               b"\x00" * 8, length=10_000),
        "lie-huge-header": _safetensors({}, length=2**63),
        "lie-overlapping": _safetensors({a: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                         b: {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, b"\x00" * 24),
        "lie-dtype-size": _safetensors({a: {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 8]}}, b"\x00" * 8),
        "lie-data-beyond-file": _safetensors({a: {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}},
                                             b"\x00" * 16),
        "lie-not-json": struct.pack("<Q", 12) + b"{not json!!}",
    }


LIES = ("lie-header-beyond-file", "lie-huge-header", "lie-overlapping", "lie-dtype-size", "lie-data-beyond-file",
        "lie-not-json")
PARTIAL_ROLES = {"partial-sd-unet-only": "model", "partial-sd-half-unet": "model", "partial-sd-no-text-encoder": "model",
                 "partial-lora": "lora", "partial-upscaler": "upscaler", "partial-face-restorer": "face_restoration"}
MODEL_FILE_CASES = [
    *[(f"pickle-{zipped}{role}{ext}", role) for role in PICKLE_ROLES for ext in PICKLE_EXTENSIONS
      for zipped in ("", "zip-") if not (zipped and ext in (".bin", ".safetensors"))],
    *[(f"{lie}-{role}", role) for role in PICKLE_ROLES for lie in LIES],
    *PARTIAL_ROLES.items(),
]
"""(case id, the role its file is named as) of every hostile model file."""


def write_model_files(models: Path, markers: Path) -> dict[str, str]:
    """Write every hostile model file into the models folder `models`; pickles aim their payload at
    `markers` (one marker file per pickle). Returns {case id: the name a request gives}."""
    import torch

    names = {}
    for role, folder in PICKLE_ROLES.items():
        (models / folder).mkdir(parents=True, exist_ok=True)
        for extension in PICKLE_EXTENSIONS:
            name = pickle_name(role, extension)
            with open(models / name, "wb") as out:
                pickle.dump({"state_dict": Payload(markers / name.replace("/", "-"))}, out, protocol=2)
            names[f"pickle-{role}{extension}"] = name
            if extension in (".pt", ".pth", ".ckpt"):  # torch's own zip format, the payload in data.pkl
                zipped = pickle_name(role, extension, torch_zip=True)
                torch.save({"state_dict": Payload(markers / zipped.replace("/", "-"))}, models / zipped)
                names[f"pickle-zip-{role}{extension}"] = zipped
    for role, folder in PICKLE_ROLES.items():
        for stem, data in lying_safetensors(role).items():
            name = f"{folder}/{stem}.safetensors"
            (models / name).write_bytes(data)
            names[f"{stem}-{role}"] = name
    return names


# --- a tiny Stable Diffusion model, and partial checkpoints --------------------------------------

TINY_SD = "Stable-diffusion/tiny-sd1.safetensors"
"""The models-folder name of the tiny SD 1.x checkpoint write_sd_files writes (LoRAs need an SD model)."""
FAST_SD = {"model": TINY_SD, "steps": 1, "width": 64, "height": 64, "seed": 1}


def _kohya_lora(unet, *, up: bool = True) -> dict:
    """A LoRA for `unet`'s attention projections in kohya names; without its `lora_up` halves if not `up`."""
    import torch

    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("to_q", "to_k", "to_v"):
            key = "lora_unet_" + name.replace(".", "_")
            state[f"{key}.lora_down.weight"] = torch.randn(4, module.in_features, generator=generator)
            if up:
                state[f"{key}.lora_up.weight"] = torch.randn(module.out_features, 4, generator=generator)
            state[f"{key}.alpha"] = torch.tensor(4.0)
    return state


def write_sd_files(models: Path, configs: Path, weights: Path) -> dict[str, str]:
    """Write the tiny SD 1.x checkpoint (TINY_SD) and its config folder `configs`/sd1 (what
    core.build.sd_configs.CONFIGS_DIR must point at), a LoRA for it, and partial checkpoints: an SD
    checkpoint with only its UNet, one with half its UNet, one without its text encoder, a LoRA without
    its up-projections, an upscaler without its last layers (from `weights`/upscalers) and a
    face restorer holding only the tensors its architecture is detected by.
    Returns {case id: the name a request gives}."""
    import shutil

    import sd_fixtures
    import torch
    from safetensors.torch import load_file, save_file

    pipe = sd_fixtures.tiny_sd1(0)
    sd_fixtures.save_single_file(pipe, models / TINY_SD)
    folder = sd_fixtures.save_config_folder(pipe, configs / "sd1")
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(sd_fixtures.clip_tokenizer_dir() / name, folder / "tokenizer" / name)
    (folder / "tokenizer" / "special_tokens_map.json").write_text(json.dumps({"pad_token": pipe.tokenizer.pad_token}))
    state = {key: t.contiguous().clone() for key, t in sd_fixtures.single_file_state(pipe).items()}
    unet = [key for key in state if key.startswith("model.diffusion_model.")]
    partial = {
        "partial-sd-unet-only": {key: state[key] for key in unet},
        "partial-sd-half-unet": {key: t for key, t in state.items() if key not in unet[::2]},
        "partial-sd-no-text-encoder": {key: t for key, t in state.items() if not key.startswith("cond_stage_model.")},
    }
    names = {}
    for case, tensors in partial.items():
        names[case] = f"Stable-diffusion/{case}.safetensors"
        save_file(tensors, models / names[case])
    (models / "Lora").mkdir(exist_ok=True)
    save_file(_kohya_lora(pipe.unet), models / "Lora" / "style.safetensors")
    names["partial-lora"] = "Lora/partial-lora.safetensors"
    save_file(_kohya_lora(pipe.unet, up=False), models / names["partial-lora"])
    compact = load_file(weights / "upscalers" / "realesr-animevideov3-x4.safetensors")
    last = max(int(key.split(".")[1]) for key in compact if key.startswith("body."))
    names["partial-upscaler"] = "ESRGAN/partial-upscaler.safetensors"
    save_file({k: t for k, t in compact.items() if not k.startswith((f"body.{last}.", f"body.{last - 1}."))},
              models / names["partial-upscaler"])
    names["partial-face-restorer"] = "GFPGAN/partial-face-restorer.safetensors"
    save_file({"toRGB.0.weight": torch.zeros(3, 512, 1, 1), "stylegan_decoder.style_mlp.1.weight": torch.zeros(512, 512)},
              models / names["partial-face-restorer"])
    return names
