"""Parameters inside pictures: AUTOMATIC1111's text and our JSON written into every PNG, and
core.read_parameters reading ours, A1111's (tEXt/zTXt/iTXt, JPEG EXIF) and ComfyUI's back."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

import core
from core import catalog
from core.imaging.io import png_bytes, save_png
from core.imaging.parameters import (
    NEGATIVE,
    PROMPT,
    a1111_fields,
    format_infotext,
    parse_infotext,
    png_text_chunks,
    to_settings,
)

NONE = {"a1111": None, "imagegen": None, "comfyui": None, "text": None, "settings": {}}
OURS = {"prompt": "red apple", "negative_prompt": "blurry, dark", "steps": 25, "scheduler": "DPM++ 2M Karras",
        "guidance_scale": 7.0, "seed": 1, "width": 512, "height": 512, "model": "sd-turbo", "strength": 0.6,
        "loras": [{"file": "detail.safetensors", "weight": 0.8, "sha256": "7c6bad76eb54" + "0" * 52}],
        "model_sha256": "6ce0161689" + "f" * 54, "warnings": [], "upscale": False}
CLASSIC = ('masterpiece, best quality, 1girl, (blue eyes:1.2), <lora:add_detail:0.8>\n'
           'Negative prompt: (worst quality, low quality:1.4), EasyNegative\n'
           'Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3350465633, Size: 512x768, '
           'Model hash: 7f96a1a9ca, Model: anything-v5, Denoising strength: 0.5, Clip skip: 2, Hires upscale: 2, '
           'Hires upscaler: Latent, Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "EasyNegative: c74b4e810b03", '
           'Version: v1.6.0')
RECENT = ('a photo of a cat\nsitting on a mat\n'
          'Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1, Size: 512x512, '
          'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, ADetailer prompt: "a face,\\nsmiling", '
          'Version: v1.10.1')

# 1. hand-written A1111 strings and the field mapping ---------------------------------------------------


def test_real_a1111_texts_parse_as_a1111_reads_them():
    classic = parse_infotext(CLASSIC)
    assert classic[PROMPT] == "masterpiece, best quality, 1girl, (blue eyes:1.2), <lora:add_detail:0.8>"
    assert classic[NEGATIVE] == "(worst quality, low quality:1.4), EasyNegative"
    assert classic["Lora hashes"] == "add_detail: 7c6bad76eb54" and classic["Clip skip"] == "2"
    assert classic["TI hashes"] == "EasyNegative: c74b4e810b03" and classic["Version"] == "v1.6.0"
    assert to_settings(classic) == {
        "prompt": classic[PROMPT], "negative_prompt": classic[NEGATIVE], "steps": 20, "guidance_scale": 7.0,
        "seed": 3350465633, "hires_scale": 2.0, "hires_upscaler": "Latent", "hires_strength": 0.5, "hires_steps": 0,
        "model": "anything-v5", "scheduler": "DPM++ 2M Karras",
        "width": 512, "height": 768}
    recent = parse_infotext(RECENT)
    assert recent[PROMPT] == "a photo of a cat\nsitting on a mat" and recent[NEGATIVE] == ""
    assert recent["ADetailer prompt"] == "a face,\nsmiling" and recent["Model hash"] == "6ce0161689"
    assert to_settings(recent)["scheduler"] == "DPM++ 2M Karras" and to_settings(recent)["guidance_scale"] == 6.5


def test_a_text_without_a_fields_line_is_all_prompt():
    assert parse_infotext("just a prompt\nNegative prompt: ugly") == {PROMPT: "just a prompt", NEGATIVE: "ugly"}


def test_our_parameters_map_to_a1111_fields_and_keep_the_rest_in_json():
    fields = a1111_fields(OURS, (2048, 2048))
    assert list(fields) == [PROMPT, NEGATIVE, "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size",
                            "Model hash", "Model", "Denoising strength", "Lora hashes", "Version"]
    text = format_infotext(fields)
    assert text.splitlines()[:2] == ["red apple", "Negative prompt: blurry, dark"]
    assert text.splitlines()[2].startswith(
        "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.0, Seed: 1, Size: 512x512, "
        "Model hash: 6ce0161689, Model: sd-turbo, Denoising strength: 0.6, Lora hashes: \"detail: 7c6bad76eb54\", "
        "Version: ")
    found = core.read_parameters(png_bytes(Image.new("RGB", (8, 8)), OURS))
    assert found["imagegen"] == OURS == found["settings"] and found["text"] == text
    back = to_settings(found["a1111"])
    assert back == {key: OURS[key] for key in back} and set(back) == {
        "prompt", "negative_prompt", "steps", "scheduler", "guidance_scale", "seed", "width", "height", "model",
        "strength"}


def test_upscaler_and_face_parameters_get_their_a1111_fields():
    upscaled = a1111_fields({"model": "RealESRGAN_x4plus", "scale": 4, "model_scale": 4, "tile": 256}, (64, 48))
    assert upscaled["Postprocess upscaler"] == "RealESRGAN_x4plus" and upscaled["Postprocess upscale by"] == "4"
    assert "Model" not in upscaled and upscaled["Size"] == "64x48"
    face = a1111_fields({"model": "mobilestylegan", "seed": 9, "size": [1024, 1024]}, (1024, 1024))
    assert (face["Seed"], face["Size"], face["Model"]) == ("9", "1024x1024", "mobilestylegan")


def test_a_generation_upscaled_x4_is_written_as_a1111_extras_and_read_back_as_upscale():
    made = {"prompt": "rocket", "model": "emoji-diffusion-32", "steps": 20, "seed": 4, "width": 32, "height": 32}
    fields = a1111_fields({**made, "upscale": True}, (128, 128))
    assert (fields["Postprocess upscale by"], fields["Postprocess upscaler"]) == ("4", catalog.DEFAULT_UPSCALER)
    assert fields["Size"] == "32x32" and fields["Model"] == "emoji-diffusion-32"  # the generation's own size
    assert "Postprocess upscale by" not in a1111_fields({**made, "upscale": False}, (32, 32))
    assert to_settings(parse_infotext(format_infotext(fields)))["upscale"] is True
    assert "upscale" not in to_settings(parse_infotext(format_infotext({**fields, "Postprocess upscale by": "2"})))


# 2. parse(write(x)) == x --------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_TRICKY = st.sampled_from(["Steps: 20", "Negative prompt:", "Negative prompt: x", ",", ":", '"', '\\"', "\n", " ",
                           "\r\n", "Seed: 1, Size: 8x8, Model: m", "é", "猫", "🍎", "\t", '"quoted"', "\\"])
_PROMPTS = st.lists(st.one_of(_TEXT, _TRICKY), max_size=8).map("".join)
_KEYS = st.from_regex(r"[A-Za-z][A-Za-z0-9 _/-]{0,10}[A-Za-z0-9]", fullmatch=True).filter(
    lambda key: key not in (PROMPT, NEGATIVE))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=_PROMPTS, negative=_PROMPTS, rest=st.dictionaries(_KEYS, _PROMPTS, min_size=3, max_size=6))
def test_any_fields_come_back_from_the_text_and_from_the_png(prompt, negative, rest):
    fields = {PROMPT: prompt, NEGATIVE: negative, **rest}
    text = format_infotext(fields)
    assert parse_infotext(text) == fields
    found = core.read_parameters(png_bytes(Image.new("RGB", (8, 8)), {"prompt": prompt, "negative_prompt": negative}))
    assert (found["a1111"][PROMPT], found["a1111"][NEGATIVE]) == (prompt, negative)


@settings(max_examples=150, deadline=None)
@given(prompt=_PROMPTS, negative=_PROMPTS, steps=st.integers(1, 150), scheduler=st.sampled_from(catalog.SAMPLERS),
       guidance=st.floats(0, 30, allow_nan=False), seed=st.integers(0, 2**64 - 1), width=st.integers(8, 4096),
       height=st.integers(8, 4096), model=_PROMPTS, strength=st.floats(0.01, 1))
def test_our_settings_come_back_from_a1111_text_alone(prompt, negative, steps, scheduler, guidance, seed, width,
                                                      height, model, strength):
    ours = {"prompt": prompt, "negative_prompt": negative, "steps": steps, "scheduler": scheduler,
            "guidance_scale": guidance, "seed": seed, "width": width, "height": height, "model": model,
            "strength": strength}
    found = core.read_parameters(png_bytes(Image.new("RGB", (8, 8)), ours))
    assert to_settings(found["a1111"]) == ours and found["imagegen"] == ours


# 3. chunk types, other writers, files ------------------------------------------------------------------


def _png(*chunks: tuple[bytes, bytes]) -> bytes:
    """A 1x1 PNG with raw `(type, body)` chunks before IDAT (CRCs computed)."""
    plain = io.BytesIO()
    Image.new("L", (1, 1)).save(plain, format="PNG")
    data = plain.getvalue()
    idat = data.index(b"IDAT") - 4
    raw = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                   for kind, body in chunks)
    return data[:idat] + raw + data[idat:]


def _with_info(info: PngImagePlugin.PngInfo) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize("chunk", ["tEXt", "zTXt", "iTXt", "iTXt zipped", "iTXt with language"])
def test_a1111_text_reads_from_every_chunk_type(chunk, tmp_path):
    info = PngImagePlugin.PngInfo()
    text = RECENT if chunk in ("tEXt", "zTXt") else RECENT.replace("a cat", "a 猫 🐈")
    if chunk == "tEXt":
        info.add_text("parameters", text)
    elif chunk == "zTXt":
        info.add_text("parameters", text, zip=True)
    else:
        info.add_itxt("parameters", text, lang="de-DE" if "language" in chunk else "",
                      tkey="Parameter" if "language" in chunk else "", zip="zipped" in chunk or "language" in chunk)
    data = _with_info(info)
    assert chunk.split()[0].encode() in data
    path = tmp_path / "a1111.png"
    path.write_bytes(data)
    for source in (data, path, str(path), Image.open(path)):
        found = core.read_parameters(source)
        assert found["text"] == text and found["a1111"] == parse_infotext(text) and found["imagegen"] is None
        assert found["settings"]["steps"] == 25 and found["settings"]["scheduler"] == "DPM++ 2M Karras"


def test_non_latin1_text_is_written_as_itxt_and_latin1_as_text(tmp_path):
    latin = png_bytes(Image.new("RGB", (8, 8)), {"prompt": "café crème"})
    assert b"tEXtparameters\0" in latin and b"iTXtparameters" not in latin and b"tEXtimagegen\0" in latin
    other = save_png(Image.new("RGB", (8, 8)), tmp_path / "u.png", {"prompt": "猫 on a mat 🍎"}).read_bytes()
    assert b"iTXtparameters\0" in other and b"tEXtimagegen\0" in other
    assert core.read_parameters(tmp_path / "u.png")["a1111"][PROMPT] == "猫 on a mat 🍎"
    assert png_bytes(Image.new("RGB", (8, 8))) and b"parameters" not in png_bytes(Image.new("RGB", (8, 8)))


def test_comfyui_chunks_come_back_raw():
    prompt = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}}})
    workflow = '{"nodes": [{"id": 3, "type": "KSampler"}], "version": 0.4}'
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", prompt)
    info.add_text("workflow", workflow, zip=True)
    found = core.read_parameters(_with_info(info))
    assert found["comfyui"] == {"prompt": prompt, "workflow": workflow}
    assert found["a1111"] is None and found["imagegen"] is None and found["text"] is None


def test_jpeg_and_webp_with_a1111_user_comment():
    for fmt, comment in (("JPEG", b"UNICODE\0" + RECENT.encode("utf-16-be")),
                         ("WEBP", b"UNICODE\0" + RECENT.encode("utf-16-le")),
                         ("JPEG", b"ASCII\0\0\0" + RECENT.encode())):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9286] = comment
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16)).save(buffer, format=fmt, exif=exif)
        found = core.read_parameters(buffer.getvalue())
        assert found["text"] == RECENT and found["a1111"]["Seed"] == "1", fmt


def test_our_older_pngs_with_json_under_parameters_read_as_ours():
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", json.dumps({"scale": 4, "model": "x"}))
    found = core.read_parameters(_with_info(info))
    assert found["imagegen"] == {"scale": 4, "model": "x"} and found["a1111"] is None


# 4. malformed: no parameters, no exception --------------------------------------------------------------

_GOOD = (b"tEXt", b"parameters\0" + RECENT.encode())


def _bad_crc(kind: bytes, body: bytes) -> bytes:
    data = _png((kind, body))
    at = data.index(kind) + 4 + len(body)
    return data[:at] + bytes(4) + data[at + 4:]


@pytest.mark.parametrize("data", [
    pytest.param(_png(_GOOD)[:_png(_GOOD).index(b"Steps")], id="truncated inside the chunk"),
    pytest.param(_png(_GOOD)[:_png(_GOOD).index(b"tEXt") + 2], id="truncated in the chunk type"),
    pytest.param(_bad_crc(*_GOOD), id="bad CRC"),
    pytest.param(_png((b"tEXt", b"Parameters\0" + RECENT.encode())), id="wrong keyword"),
    pytest.param(_png((b"tEXt", b"parameters" + RECENT.encode())), id="no keyword separator"),
    pytest.param(_png((b"tEXt", b"imagegen\0{\"steps\": 3,")), id="bad JSON"),
    pytest.param(_png((b"tEXt", b"imagegen\0[1, 2]")), id="JSON not an object"),
    pytest.param(_png((b"iTXt", b"parameters\0\0\0en\0\0" + b"caf\xe9 \xff\xfe")), id="iTXt not UTF-8"),
    pytest.param(_png((b"iTXt", b"parameters\0\1\0\0\0" + b"not zlib")), id="iTXt bad zlib"),
    pytest.param(_png((b"iTXt", b"parameters\0\1\7\0\0" + zlib.compress(b"x"))), id="iTXt unknown method"),
    pytest.param(_png((b"zTXt", b"parameters\0\0" + zlib.compress(RECENT.encode())[:-6])), id="zTXt truncated zlib"),
    pytest.param(_png((b"zTXt", b"parameters\0\0" + zlib.compress(b"a" * (9 * 2**20)))), id="zTXt beyond MAX_TEXT"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\x89PNG\r\n\x1a\n", id="signature only"),
    pytest.param(b"not a picture at all", id="text"),
    pytest.param(b"\xff\xd8\xff\xe1\x00\x10Exif\0\0MM\0*\0\0\0\x08", id="truncated JPEG EXIF"),
])
def test_malformed_chunks_give_no_parameters(data):
    assert core.read_parameters(data) == NONE


def test_bad_json_keeps_the_a1111_text_and_odd_inputs_give_nothing(tmp_path):
    found = core.read_parameters(_png(_GOOD, (b"tEXt", b"imagegen\0{oops")))
    assert found["imagegen"] is None and found["a1111"]["Steps"] == "25"
    for odd in (None, 42, tmp_path / "missing.png", tmp_path, Image.new("RGB", (4, 4))):
        assert core.read_parameters(odd) == NONE
    assert png_text_chunks(_png(_GOOD, _GOOD)) == {"parameters": RECENT}


# 5. end to end: generate, read, regenerate --------------------------------------------------------------


@pytest.mark.slow  # loads the emoji model
def test_a_generated_png_carries_both_chunks_and_regenerates_the_same_pixels(tmp_path):
    result = core.text_to_image("red apple", steps=3, seed=1234, guidance_scale=4.5, negative_prompt="rocket, blue")
    path = save_png(result.images[0], tmp_path / "apple.png", result.parameters)
    saved = Image.open(path)
    assert set(saved.text) == {"parameters", "imagegen", "XML:com.adobe.xmp"}  # + provenance (test_provenance)
    found = core.read_parameters(path)
    assert found["imagegen"] == json.loads(json.dumps(result.parameters))
    settings = to_settings(found["a1111"])
    assert {key: settings[key] for key in ("prompt", "negative_prompt", "seed", "steps", "scheduler",
                                           "guidance_scale", "width", "height", "model")} == {
        "prompt": "red apple", "negative_prompt": "rocket, blue", "seed": 1234, "steps": 3,
        "scheduler": result.parameters["scheduler"], "guidance_scale": 4.5, "width": 32, "height": 32,
        "model": catalog.DEFAULT_DIFFUSION_MODEL}
    again = core.text_to_image(settings.pop("prompt"), **settings)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(saved.convert("RGB")))


@pytest.mark.slow  # starts a Gradio server
def test_the_png_info_endpoint_returns_all_three_and_the_provenance(tmp_path):
    from gradio_client import Client, handle_file
    from servers import free_port

    from core.imaging.io import save_png
    from demos import png_info

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", CLASSIC)
    info.add_text("imagegen", json.dumps({"seed": 5}))
    info.add_text("workflow", '{"nodes": []}')
    path = tmp_path / "all.png"
    path.write_bytes(_with_info(info))
    noise = np.random.default_rng(3).integers(0, 256, (320, 320, 3), dtype=np.uint8)  # seeded, not C's rand()
    generated = save_png(Image.fromarray(noise, "RGB"), tmp_path / "made.png",
                         {"prompt": "a cat", "model": "m", "seed": 3})
    tab = png_info.build()
    tab.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(tab.local_url, verbose=False)
        text, ours, comfyui, marks = client.predict(handle_file(str(path)), api_name="/read_parameters")
        assert text == CLASSIC and ours == {"seed": 5} and comfyui == {"workflow": '{"nodes": []}'}
        assert marks is None  # A1111's picture: no XMP, no watermark, no manifest
        plain = tmp_path / "plain.png"
        Image.new("RGB", (8, 8)).save(plain)
        assert client.predict(handle_file(str(plain)), api_name="/read_parameters") == ("", None, None, None)
        *_, marks = client.predict(handle_file(str(generated)), api_name="/read_parameters")
        assert marks["xmp"]["source_type"].endswith("trainedAlgorithmicMedia")
        assert marks["watermark"]["found"] is True
        assert marks["content_credentials"]["state"] == "Valid" and marks["content_credentials"]["problems"] == []
    finally:
        tab.close()


def test_png_info_says_when_a_picture_carries_nothing_or_only_comfyui(monkeypatch):
    import base64

    import gradio as gr

    from demos import png_info

    told = []
    monkeypatch.setattr(gr, "Info", told.append)

    def upload(data: bytes) -> dict:
        return {"path": None, "url": "data:image/png;base64," + base64.b64encode(data).decode()}

    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "PNG")
    assert png_info.read_parameters(upload(plain.getvalue())) == ("", None, None, None)
    assert png_info.read_parameters(upload(b"not a picture")) == ("", None, None, None)
    assert len(told) == 2 and all(t.startswith("This picture carries no generation parameters") for t in told)
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", '{"nodes": []}')
    assert png_info.read_parameters(upload(_with_info(info)))[2] == {"workflow": '{"nodes": []}'}
    assert told[-1].startswith("A ComfyUI picture")
    told.clear()
    png_info.read_parameters(upload(png_bytes(Image.new("RGB", (8, 8)), {"prompt": "x", "seed": 1})))
    assert told == []


# 6. faces: their own settings as extra A1111 fields ------------------------------------------------------

FACE = {"model": "mobilestylegan-ffhq-1024", "count": 2, "seed": 21, "truncation_psi": 0.5, "size": [256, 256],
        "mix_seed": 7, "mix_layers": [0, 3], "layers": 23, "upscale": False, "face_restoration": None,
        "face_weight": None, "source": "MobileStyleGAN", "warnings": []}
"""What generate_faces reports (seed: this face's own, as the faces tab writes it)."""
MORPH = {"model": catalog.DCGAN_FACE_MODEL, "seeds": [1, 5], "frames": 24, "fps": 12.0, "loop": False,
         "space": "latent", "truncation_psi": 0.8, "size": [64, 64], "layers": None, "upscale": False,
         "face_restoration": None, "face_weight": None, "source": "DCGAN", "frame_ms": 80, "warnings": [],
         "frame": 3}
"""What interpolate_faces reports, with the frame's place that the faces tab adds (server paths left out)."""


def test_face_settings_are_written_after_a1111s_fields_and_come_back_as_generate_faces_arguments():
    fields = a1111_fields(FACE, (256, 256))
    assert list(fields)[-5:] == ["Model", "Truncation psi", "Style mix seed", "Style mix layers", "Version"]
    assert (fields["Truncation psi"], fields["Style mix seed"], fields["Style mix layers"]) == ("0.5", "7", "0-3")
    text = format_infotext(fields)
    assert "Seed: 21, Size: 256x256, Model: mobilestylegan-ffhq-1024, Truncation psi: 0.5, Style mix seed: 7, " \
           "Style mix layers: 0-3, Version: " in text
    assert parse_infotext(text) == fields
    assert to_settings(parse_infotext(text)) == {
        "prompt": "", "negative_prompt": "", "seed": 21, "model": "mobilestylegan-ffhq-1024", "truncation_psi": 0.5,
        "mix_seed": 7, "mix_layers": "0-3", "width": 256, "height": 256}
    plain = a1111_fields({**FACE, "mix_seed": None, "mix_layers": None}, (256, 256))
    assert "Style mix seed" not in plain and "Style mix layers" not in plain and plain["Truncation psi"] == "0.5"
    assert a1111_fields({**FACE, "mix_layers": [23, 22]}, (256, 256))["Style mix layers"] == "none"  # "none" chosen
    assert not {"Truncation psi", "Interpolation seeds"} & set(a1111_fields(OURS, (512, 512)))  # diffusion: none


def test_an_interpolation_frame_names_its_morph_and_its_place_quoted_where_a1111_needs_it():
    fields = a1111_fields(MORPH, (64, 64))
    assert {key: fields[key] for key in fields if key.startswith("Interpolation")} == {
        "Interpolation seeds": "1, 5", "Interpolation frames": "24", "Interpolation space": "latent",
        "Interpolation loop": "False", "Interpolation frame": "3/24"}
    assert "Seed" not in fields  # frames have no seed of their own
    text = format_infotext(fields)
    assert 'Interpolation seeds: "1, 5", Interpolation frames: 24, Interpolation space: latent, ' \
           'Interpolation loop: False, Interpolation frame: 3/24' in text
    assert parse_infotext(text) == fields
    assert to_settings(parse_infotext(text))["truncation_psi"] == 0.8
    assert "Interpolation frame" not in a1111_fields({k: v for k, v in MORPH.items() if k != "frame"}, (64, 64))


@pytest.mark.slow  # MobileStyleGAN draws 1024 px on the CPU (about 5 s)
def test_a_mixed_face_regenerates_from_its_a1111_text_alone():
    made = core.generate_faces(count=1, seed=20, truncation_psi=0.5, mix_seed=3, mix_layers="4-9", size=64)
    found = core.read_parameters(png_bytes(made.images[0], made.parameters))
    settings = to_settings(found["a1111"])
    assert {key: settings[key] for key in ("seed", "truncation_psi", "mix_seed", "mix_layers")} == {
        "seed": 20, "truncation_psi": 0.5, "mix_seed": 3, "mix_layers": "4-9"}
    again = core.generate_faces(count=1, seed=settings["seed"], model=settings["model"], size=settings["width"],
                                truncation_psi=settings["truncation_psi"], mix_seed=settings["mix_seed"],
                                mix_layers=settings["mix_layers"])
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(made.images[0])), "seed 20: not the same face"
