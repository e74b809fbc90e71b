"""Generation parameters inside pictures: written into our PNGs, read back from ours and other tools'.

A PNG from this hub carries two text chunks:
    "parameters": AUTOMATIC1111's infotext, so A1111, Forge, Civitai and PNG-info readers show it:
        red apple
        Negative prompt: blurry
        Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.0, Seed: 1, Size: 512x512, ...
    "imagegen": our JSON, every applied parameter (`Result.parameters`) as it is.

The infotext's last line is `Key: value` pairs joined by ", "; a value holding a comma, colon, quote,
line break or outer space (or an empty one) is written as a JSON string, which A1111's reader unquotes.
A1111's reader strips each prompt line and ends the prompt at a line starting with "Negative prompt:";
a prompt that would not come back exactly that way is also written, quoted, as the fields "Prompt" and
"Negative prompt" of the last line (A1111 then shows them as extra fields; `parse_infotext` uses them).
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from core import catalog
from core.imaging import provenance

A1111_KEY, IMAGEGEN_KEY, COMFYUI_KEYS = "parameters", "imagegen", ("prompt", "workflow")
PROMPT, NEGATIVE = "Prompt", "Negative prompt"
VERSION = "imagegen-hub 0.1.0"
MAX_TEXT = 8 * 2**20
"""A text chunk inflating beyond this many bytes is skipped (Pillow's own cap is 1 MB, MAX_TEXT_CHUNK)."""
MAX_FILE = 256 * 2**20
"""A file or bytes beyond this size gives no parameters rather than being read into memory."""
SCHEDULE_TYPES = {"DPM++ 2M Karras": ("DPM++ 2M", "Karras")}
"""Our sampler names that A1111 (1.9+) writes as Sampler + Schedule type; the others are the Sampler alone."""
_FIELD = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
"""One `Key: value` of the last line, as A1111's reader matches it (a quoted value is a JSON string)."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286


# 1. writing ----------------------------------------------------------------------------------------------

def png_info(parameters: dict[str, Any] | None, size: tuple[int, int], *,
             watermark: str | None = None) -> PngImagePlugin.PngInfo:
    """The PNG text chunks for a picture of `size` (width, height) px made with `parameters`:
    A1111's infotext under "parameters" (tEXt when Latin-1, else UTF-8 iTXt), our JSON under
    "imagegen" (ASCII tEXt) and the provenance XMP packet under "XML:com.adobe.xmp" (iTXt; the IPTC
    digital source type, generator, model, settings and `watermark`, see core.imaging.provenance).
    No parameters, no chunks."""
    info = PngImagePlugin.PngInfo()
    if parameters:
        text = infotext(parameters, size)
        if _latin1(text):
            info.add_text(A1111_KEY, text)
        else:
            info.add_itxt(A1111_KEY, text)
        info.add_text(IMAGEGEN_KEY, json.dumps(parameters, sort_keys=True))
        info.add_itxt(provenance.XMP_KEY, provenance.xmp_packet(parameters, VERSION, watermark))
    return info


def infotext(parameters: dict[str, Any], size: tuple[int, int]) -> str:
    """AUTOMATIC1111's text for our `parameters` (see a1111_fields)."""
    return format_infotext(a1111_fields(parameters, size))


def a1111_fields(parameters: dict[str, Any], size: tuple[int, int]) -> dict[str, str]:
    """Our parameters under A1111's names, in A1111's order, as text; what has no A1111 name stays in
    our JSON only. "Size" is the generation's width x height, else the picture's `size`; "Model hash"
    (sha256[:10]) and "Lora hashes" (name: sha256[:12]) only where a sha256 was recorded; an upscale
    (core.upscale's, or a generation's `upscale=True`) as A1111's Extras writes it, "Postprocess upscale
    by" and "Postprocess upscaler"; the Hires. fix, inpainting, outpainting and ControlNet settings after
    "Denoising strength" (see `_conditioning_fields`); the faces' own settings as extra fields before
    "Version" (see `_face_fields`)."""
    p = parameters
    fields: dict[str, Any] = {PROMPT: p.get("prompt", ""), NEGATIVE: p.get("negative_prompt", "")}
    fields["Steps"] = p.get("steps")
    if p.get("scheduler"):
        fields["Sampler"], fields["Schedule type"] = SCHEDULE_TYPES.get(p["scheduler"], (p["scheduler"], None))
    fields["CFG scale"] = p.get("guidance_scale")
    fields["Seed"] = p.get("seed")
    width, height = (p["width"], p["height"]) if "width" in p and "height" in p else size
    fields["Size"] = f"{width}x{height}"
    upscaler = provenance.is_upscale(p)  # core.upscale's parameters: the model is an upscaler, not a checkpoint
    sha = p.get("model_sha256")
    fields["Model hash"] = sha[:10] if isinstance(sha, str) and not upscaler else None
    fields["Model"] = None if upscaler else p.get("model")
    fields["Denoising strength"] = p.get("strength", p.get("hires_strength") if _hires(p) else None)
    fields.update(_conditioning_fields(p))
    hashes = [f"{Path(str(lo.get('file', ''))).stem}: {lo['sha256'][:12]}" for lo in p.get("loras") or []
              if isinstance(lo, dict) and isinstance(lo.get("sha256"), str)]
    fields["Lora hashes"] = ", ".join(hashes) or None
    if upscaler:
        fields["Postprocess upscale by"], fields["Postprocess upscaler"] = p.get("scale"), p.get("model")
    elif p.get("upscale") is True:  # the tabs' "Upscale x4": the default upscaler after generating, as A1111's Extras
        fields["Postprocess upscale by"], fields["Postprocess upscaler"] = 4, catalog.DEFAULT_UPSCALER
    fields.update(_face_fields(p))
    fields["Version"] = VERSION
    return {key: str(value) for key, value in fields.items() if value is not None}


INPAINT_AREAS = {"whole": "Whole picture", "masked": "Only masked"}
"""Our inpaint_area values and A1111's "Inpaint area" ones."""
MASKED_CONTENT = {"original": "original", "noise": "latent noise", "fill": "fill"}
"""Our masked_content values and A1111's "Masked content" ones (A1111's "latent nothing" has none of ours)."""


def _hires(p: dict[str, Any]) -> bool:
    """Whether `p` is a text-to-image run with the Hires. fix on (hires_scale recorded, not None or 1)."""
    return p.get("hires_scale") not in (None, 1)


def _conditioning_fields(p: dict[str, Any]) -> dict[str, Any]:
    """Issue 15's settings as A1111 and its extensions write them, only what `p` holds:
    the Hires. fix as txt2img writes it ("Hires upscale", "Hires steps" when not 0, "Hires upscaler";
    the strength is "Denoising strength"); inpainting as img2img writes it ("Mask blur", "Inpaint area"
    "Whole picture"/"Only masked", "Masked area padding" with "Only masked", "Masked content"
    "original"/"latent noise"/"fill"); an outpainting as "Outpaint" ("left 16, right 0, top 0,
    bottom 0") and "Outpaint fill" (fields of ours: A1111's outpainting scripts write none); and each
    ControlNet unit as sd-webui-controlnet writes it, "ControlNet 0" holding "Module: canny, Model: name,
    Weight: 1.0, Threshold A: 100, Threshold B: 200, Guidance Start: 0.0, Guidance End: 1.0" (the
    thresholds for Canny only; the units are not read back: they need their pictures)."""
    fields: dict[str, Any] = {}
    if _hires(p):
        scale = p["hires_scale"]
        fields["Hires upscale"] = f"{scale:g}" if isinstance(scale, (int, float)) else scale  # 2, not 2.0
        fields["Hires steps"] = p.get("hires_steps") or None
        fields["Hires upscaler"] = p.get("hires_upscaler")
    fields["Mask blur"] = p.get("mask_blur")
    fields["Inpaint area"] = INPAINT_AREAS.get(p.get("inpaint_area"))
    if p.get("inpaint_area") == "masked":
        fields["Masked area padding"] = p.get("inpaint_padding")
    fields["Masked content"] = MASKED_CONTENT.get(p.get("masked_content"))
    sides = p.get("outpaint")
    if isinstance(sides, dict) and all(side in sides for side in catalog.OUTPAINT_SIDES):
        fields["Outpaint"] = ", ".join(f"{side} {sides[side]}" for side in catalog.OUTPAINT_SIDES)
        fields["Outpaint fill"] = p.get("fill")
    for i, unit in enumerate(p.get("controlnets") or []):
        if isinstance(unit, dict):
            fields[f"ControlNet {i}"] = ", ".join(f"{key}: {value}" for key, value in _unit_fields(unit).items()
                                                  if value is not None)
    return fields


def _unit_fields(unit: dict[str, Any]) -> dict[str, Any]:
    """One ControlNet unit's fields, in sd-webui-controlnet's order and names."""
    canny = unit.get("preprocessor") == "canny"
    return {"Module": unit.get("preprocessor"), "Model": unit.get("model"), "Weight": unit.get("weight"),
            "Threshold A": unit.get("low_threshold") if canny else None,
            "Threshold B": unit.get("high_threshold") if canny else None,
            "Guidance Start": unit.get("start"), "Guidance End": unit.get("end")}


def _face_fields(p: dict[str, Any]) -> dict[str, Any]:
    """The faces' settings that A1111 has no name for, as extra fields (A1111 keeps and shows unknown
    `Key: value` fields): "Truncation psi", "Style mix seed", "Style mix layers" ("first-last", or
    "none" for an empty range) from core.generators.faces.generate_faces; "Interpolation seeds"
    ("1, 5"), "Interpolation frames", "Interpolation space" and "Interpolation loop" from
    interpolate_faces, which tell one morph from another, and "Interpolation frame" ("3/24") where `p`
    holds the picture's place, "frame" (1..frames; the faces tab adds it). Only what `p` holds."""
    fields: dict[str, Any] = {"Truncation psi": p.get("truncation_psi"), "Style mix seed": p.get("mix_seed")}
    layers = p.get("mix_layers")
    if isinstance(layers, (list, tuple)) and len(layers) == 2 and all(isinstance(n, int) for n in layers):
        fields["Style mix layers"] = f"{layers[0]}-{layers[1]}" if layers[0] <= layers[1] else "none"
    seeds = p.get("seeds")
    if isinstance(seeds, (list, tuple)) and "frames" in p:  # interpolate_faces' keyframes
        fields["Interpolation seeds"] = ", ".join(str(seed) for seed in seeds)
        fields["Interpolation frames"], fields["Interpolation space"] = p["frames"], p.get("space")
        fields["Interpolation loop"] = p.get("loop")
        if "frame" in p:
            fields["Interpolation frame"] = f"{p['frame']}/{p['frames']}"
    return fields


def format_infotext(fields: dict[str, str]) -> str:
    """A1111's text: the "Prompt" line(s), "Negative prompt: ..." when not empty, then the other fields
    as `Key: value` joined by ", " on the last line (at least three of them, or A1111 reads that line
    as prompt). Keys match A1111's `\\w[\\w \\-/]+`; values are quoted where needed (see the module)."""
    prompt, negative = fields.get(PROMPT, ""), fields.get(NEGATIVE, "")
    rest = {key: value for key, value in fields.items() if key not in (PROMPT, NEGATIVE)}
    head = prompt + (f"\nNegative prompt: {negative}" if negative else "")
    text = _join(head, rest).strip()
    back = parse_infotext(text)
    if (back[PROMPT], back[NEGATIVE]) != (prompt, negative):  # A1111 would not get them back from the lines
        text = _join(head, {**rest, PROMPT: prompt, NEGATIVE: negative}).strip()
    return text


def _join(head: str, fields: dict[str, str]) -> str:
    return head + "\n" + ", ".join(f"{key}: {_quote(value)}" for key, value in fields.items())


def _quote(value: str) -> str:
    """`value` as A1111's last line holds it: as it is, or as a JSON string when it is empty or holds
    what would end or hide it there (comma, colon, quote, line break, outer space, control characters)."""
    if value and value == value.strip() and not re.search(r'[,:"\\\x00-\x1f\x7f\u2028\u2029\x85]', value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


# 2. parsing A1111's text ---------------------------------------------------------------------------------

def parse_infotext(text: str) -> dict[str, str]:
    """A1111's text as {"Prompt", "Negative prompt", then each field of the last line} (all text;
    "Size" stays "WxH"). As A1111 reads it: the last line holds the fields when it has three or more,
    else it is prompt too; exact "Prompt"/"Negative prompt" fields there win over the lines above."""
    *lines, last = text.strip().split("\n")
    found = _FIELD.findall(last)
    if len(found) < 3:
        lines, found = [*lines, last], []
    prompt, negative = _split_prompts(lines)
    fields = {PROMPT: prompt, NEGATIVE: negative}
    for key, value in found:
        fields[key] = _unquote(value)
    return fields


def _split_prompts(lines: list[str]) -> tuple[str, str]:
    prompt: list[str] = []
    negative: list[str] | None = None
    for line in lines:
        line = line.strip()
        if negative is None and line.startswith("Negative prompt:"):
            negative, line = [], line[len("Negative prompt:"):].strip()
        (prompt if negative is None else negative).append(line)
    return "\n".join(prompt), "\n".join(negative or [])


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            unquoted = json.loads(value)
        except ValueError:
            return value
        return unquoted if isinstance(unquoted, str) else value
    return value


def to_settings(fields: dict[str, str]) -> dict[str, Any]:
    """A1111's fields (parse_infotext) as our generators' keyword arguments, where they map: prompt,
    negative_prompt, steps, scheduler, guidance_scale, seed, width, height, model, strength, upscale
    (True for "Postprocess upscale by: 4"), and generate_faces' truncation_psi (float), mix_seed (int)
    and mix_layers (text, e.g. "0-3") where the face fields are present; the Hires. fix, inpainting and
    outpainting settings (see `_conditioning_settings`; with the Hires. fix, "Denoising strength" is
    hires_strength, not strength, so the settings are text_to_image's). A field that does not read as
    its type is left out."""
    settings: dict[str, Any] = {"prompt": fields.get(PROMPT, ""), "negative_prompt": fields.get(NEGATIVE, "")}
    for name, key, kind in (("steps", "Steps", int), ("guidance_scale", "CFG scale", float), ("seed", "Seed", int),
                            ("strength", "Denoising strength", float), ("model", "Model", str),
                            ("truncation_psi", "Truncation psi", float), ("mix_seed", "Style mix seed", int),
                            ("mix_layers", "Style mix layers", str)):
        if key in fields:
            try:
                settings[name] = kind(fields[key])
            except ValueError:
                pass
    sampler, schedule = fields.get("Sampler"), fields.get("Schedule type")
    if sampler:
        ours = {pair: name for name, pair in SCHEDULE_TYPES.items()}
        settings["scheduler"] = ours.get((sampler, schedule), sampler)
    if fields.get("Postprocess upscale by") in ("4", "4.0"):
        settings["upscale"] = True  # the tabs' "Upscale x4"; other factors have no such switch
    size = re.fullmatch(r"(\d+)x(\d+)", fields.get("Size", ""))
    if size:
        settings["width"], settings["height"] = int(size.group(1)), int(size.group(2))
    settings.update(_conditioning_settings(fields))
    if "hires_strength" in settings:  # txt2img with the Hires. fix: "Denoising strength" is its second pass's
        del settings["strength"]
    return settings


def _conditioning_settings(fields: dict[str, str]) -> dict[str, Any]:
    """The fields of `_conditioning_fields` as core keyword arguments: hires_scale (float), hires_steps
    (int; 0 when a Hires. fix text has none, as A1111 then ran the first pass's steps), hires_upscaler
    (as written: "Latent" too, which core then refuses by name) and hires_strength (the "Denoising
    strength" of a text with "Hires upscale", as A1111's txt2img pastes it); mask_blur, inpaint_area ("whole"/"masked"),
    inpaint_padding, masked_content ("original"/"noise"/"fill"); left, right, top, bottom and fill of
    an outpainting. ControlNet units are not read: they need their pictures."""
    settings: dict[str, Any] = {}
    for name, key, kind in (("hires_scale", "Hires upscale", float), ("hires_steps", "Hires steps", int),
                            ("hires_upscaler", "Hires upscaler", str), ("mask_blur", "Mask blur", int),
                            ("inpaint_padding", "Masked area padding", int), ("fill", "Outpaint fill", str)):
        if key in fields:
            try:
                settings[name] = kind(fields[key])
            except ValueError:
                pass
    if "hires_scale" in settings:
        settings.setdefault("hires_steps", 0)
        try:
            settings["hires_strength"] = float(fields["Denoising strength"])
        except (KeyError, ValueError):
            pass
    for name, key, ours in (("inpaint_area", "Inpaint area", INPAINT_AREAS),
                            ("masked_content", "Masked content", MASKED_CONTENT)):
        found = [value for value, theirs in ours.items() if theirs == fields.get(key)]
        if found:
            settings[name] = found[0]
    sides = re.fullmatch(r"left (\d+), right (\d+), top (\d+), bottom (\d+)", fields.get("Outpaint", ""))
    if sides:
        settings.update(zip(catalog.OUTPAINT_SIDES, map(int, sides.groups())))
    return settings


# 3. reading pictures -------------------------------------------------------------------------------------

def read_parameters(image: Any) -> dict[str, Any]:
    """The generation parameters a picture carries: ours, AUTOMATIC1111's and ComfyUI's.

    Args:
        image: a PIL image, a path (str or Path) or the file's bytes: PNG (tEXt, zTXt and iTXt chunks,
            compressed or not, any language tag), or JPEG/WebP with A1111's EXIF UserComment.

    Returns:
        {"a1111": A1111's fields (parse_infotext) or None, "imagegen": our JSON (a dict) or None,
         "comfyui": {"prompt": raw text, "workflow": raw text} (those present) or None,
         "text": the raw "parameters" text or None,
         "settings": our keyword arguments (our JSON's, else to_settings of A1111's; {} for none)}.
        and, only when the picture carries an XMP packet with an IPTC digital source type, "provenance":
        {"source_type", "generator", and "model", "settings", "watermark" where stated} (provenance.read_xmp).
        A PNG from before the "imagegen" chunk (our JSON under "parameters") reads as ours.
        Never raises: an unreadable picture or a malformed chunk (truncated, bad CRC or compression,
        iTXt not UTF-8, bad JSON) counts as absent.
    """
    try:
        chunks = _text_chunks(image)
    except Exception:  # noqa: BLE001 - whatever a hostile file makes a decoder raise: no parameters
        chunks = {}
    text = chunks.get(A1111_KEY)
    ours = _json_dict(chunks.get(IMAGEGEN_KEY))
    a1111 = None
    if text is not None and text.lstrip().startswith("{") and _json_dict(text) is not None:
        ours = ours if ours is not None else _json_dict(text)  # our layout before the "imagegen" chunk
    elif text is not None and text.strip():
        a1111 = parse_infotext(text)
    comfyui = {key: chunks[key] for key in COMFYUI_KEYS if key in chunks} or None
    settings = dict(ours) if ours is not None else to_settings(a1111) if a1111 is not None else {}
    found = {"a1111": a1111, "imagegen": ours, "comfyui": comfyui, "text": text, "settings": settings}
    stated = provenance.read_xmp(chunks.get(provenance.XMP_KEY))
    return {**found, "provenance": stated} if stated is not None else found


def _json_dict(text: str | None) -> dict | None:
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text_chunks(image: Any) -> dict[str, str]:
    """{keyword: text} of a picture's PNG text chunks or EXIF UserComment (as "parameters")."""
    if isinstance(image, Image.Image):
        text = getattr(image, "text", None) if image.format == "PNG" else None  # PNG: also chunks after IDAT
        found = {k: str(v) for k, v in {**image.info, **(text or {})}.items()
                 if isinstance(k, str) and isinstance(v, str)}
        return found if A1111_KEY in found else {**_exif_text(image), **found}
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if path.stat().st_size > MAX_FILE:
            return {}
        image = path.read_bytes()
    if not isinstance(image, (bytes, bytearray, memoryview)) or len(image) > MAX_FILE:
        return {}
    data = bytes(image)
    if data.startswith(_PNG_SIGNATURE):
        return png_text_chunks(data, (A1111_KEY, IMAGEGEN_KEY, *COMFYUI_KEYS, provenance.XMP_KEY))
    Image.init()  # Image.open loads only the commonest plugins before trying the formats it is given
    formats = [f for f in ("JPEG", "MPO", "WEBP") if f in Image.OPEN]
    with Image.open(io.BytesIO(data), formats=formats) as img:  # header only, no pixels
        return _exif_text(img)


def png_text_chunks(data: bytes, keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """{keyword: text} of the tEXt, zTXt and iTXt chunks of PNG `data` (the first of each keyword; only
    `keys` when given, so a file of many compressed chunks is not inflated chunk after chunk), read
    chunk by chunk without decoding pixels; a chunk that is truncated, fails its CRC, uses an
    unknown compression or inflates beyond MAX_TEXT, or an iTXt that is not UTF-8, is skipped."""
    found: dict[str, str] = {}
    at = len(_PNG_SIGNATURE)
    while at + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        crc = data[at + 8 + length:at + 12 + length]
        at += 12 + length
        if len(body) != length or len(crc) != 4:
            break  # truncated
        if kind not in (b"tEXt", b"zTXt", b"iTXt") or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            if kind == b"IEND":
                break
            continue
        keyword = body.partition(b"\0")[0].decode("latin-1")
        if keyword in found or (keys is not None and keyword not in keys):
            continue
        parsed = _text_chunk(kind, body)
        if parsed is not None:
            found[parsed[0]] = parsed[1]
    return found


def _text_chunk(kind: bytes, body: bytes) -> tuple[str, str] | None:
    keyword, sep, rest = body.partition(b"\0")
    if not sep or not 1 <= len(keyword) <= 79:
        return None
    try:
        if kind == b"tEXt":
            value = rest.decode("latin-1")
        elif kind == b"zTXt":
            value = _inflate(rest[1:]).decode("latin-1") if rest[:1] == b"\0" else None
        else:  # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
            flag, method, rest = rest[:1], rest[1:2], rest[2:]
            _language, _, rest = rest.partition(b"\0")
            _translated, sep, text = rest.partition(b"\0")
            if not sep or flag not in (b"\0", b"\1") or method != b"\0":
                return None
            value = (_inflate(text) if flag == b"\1" else text).decode("utf-8")
    except (zlib.error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return (keyword.decode("latin-1"), value) if value is not None else None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("text chunk too big or truncated")
    return out


def _exif_text(image: Image.Image) -> dict[str, str]:
    """A1111's text from the EXIF UserComment of a JPEG or WebP ("parameters"), or {}."""
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if isinstance(comment, str):
        return {A1111_KEY: comment} if comment else {}
    if not isinstance(comment, bytes) or len(comment) < 8:
        return {}
    prefix, body = comment[:8], comment[8:]
    if prefix == b"UNICODE\0":  # UTF-16: big-endian as piexif writes it, little-endian from some tools
        text = body.decode("utf-16-be" if body[:1] == b"\0" else "utf-16-le", errors="strict")
    elif prefix in (b"ASCII\0\0\0", b"\0" * 8):
        text = body.decode("utf-8", errors="strict")
    else:
        return {}
    text = text.rstrip("\0")
    return {A1111_KEY: text} if text else {}
