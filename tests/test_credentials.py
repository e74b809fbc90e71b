"""Content Credentials (C2PA) in generated PNGs, and what core.read_provenance reports of a picture."""

from __future__ import annotations

import io
import json
import logging
import struct
import zlib

import c2pa
import numpy as np
import pytest
from cryptography import x509
from PIL import Image

import core
from core.imaging import credentials, watermark
from core.imaging.io import png_bytes, save_png
from core.imaging.parameters import VERSION

MADE = {"prompt": "a lighthouse at dusk", "negative_prompt": "", "model": "emoji-diffusion-32", "steps": 20,
        "scheduler": "DDIM", "guidance_scale": 5.0, "seed": 11, "width": 32, "height": 32}
UPSCALED = {"model": "realesr-animevideov3-x4", "model_scale": 4, "scale": 4.0}


@pytest.fixture
def key_folder(tmp_path, monkeypatch):
    """A signing key of the test's own, made on first use (as when setup did not make one)."""
    folder = tmp_path / "c2pa"
    monkeypatch.setattr(credentials, "FOLDER", folder)
    monkeypatch.delenv(credentials.ENV, raising=False)
    return folder


def picture(side: int = 320, seed: int = 0) -> Image.Image:
    """A noise picture from a seeded generator (Pillow's effect_noise draws from C's rand(), whose state
    depends on which tests ran before in the process)."""
    pixels = np.random.default_rng(seed).normal(128, 50, (side, side, 3)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def test_a_generated_png_carries_a_valid_manifest_that_says_what_made_it(key_folder):
    data = png_bytes(picture(), MADE)
    report = credentials.read_manifest(data)
    assert report["state"] == "Valid" and report["trusted"] is False and report["problems"] == []
    assert report["signer"].startswith("imagegen-hub signer") and report["generator"] == VERSION
    (action,) = report["actions"]
    assert action["action"] == "c2pa.created" and action["digitalSourceType"] == credentials.SOURCE_TYPE
    assert action["parameters"]["model"] == "emoji-diffusion-32" and "seed 11" in action["parameters"]["settings"]
    assert core.read_parameters(data)["settings"] == MADE  # our chunks are inside the signed file, unchanged


def test_the_key_is_made_once_owner_only_with_a_two_certificate_chain(key_folder):
    png_bytes(picture(), MADE)
    key, chain = key_folder / credentials.KEY_FILE, key_folder / credentials.CHAIN_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    leaf, root = x509.load_pem_x509_certificates(chain.read_bytes())
    assert leaf.issuer == root.subject and root.issuer == root.subject  # the root is self-signed, the leaf not
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    before = key.read_bytes()
    credentials.prepare_key()
    png_bytes(picture(), MADE)
    assert key.read_bytes() == before  # made once, then reused


def _flip_pixel_byte(data: bytes) -> bytes:
    """`data` with one byte of the first IDAT chunk's compressed pixels changed, its CRC made right again
    (so only the C2PA hash can tell)."""
    at = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[at:at + 4])
    body = bytearray(data[at + 8:at + 8 + length])
    body[length // 2] ^= 0x01
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    return data[:at + 8] + bytes(body) + crc + data[at + 12 + length:]


def test_a_changed_picture_reads_invalid(key_folder):
    report = credentials.read_manifest(_flip_pixel_byte(png_bytes(picture(), MADE)))
    assert report["state"] == "Invalid" and "assertion.dataHash.mismatch" in report["problems"]


def test_upscales_pictures_without_parameters_and_a_host_that_turns_it_off_get_no_manifest(key_folder, monkeypatch):
    assert credentials.read_manifest(png_bytes(picture(), UPSCALED)) is None  # the user's own picture
    assert credentials.read_manifest(png_bytes(picture(), None)) is None
    monkeypatch.setenv(credentials.ENV, "0")
    assert credentials.read_manifest(png_bytes(picture(), MADE)) is None
    assert not key_folder.exists()  # nothing was signed, so no key was made


def test_save_png_signs_the_file_it_writes_with_its_name(key_folder, tmp_path):
    path = save_png(picture(), tmp_path / "face-7.png", MADE)
    report = credentials.read_manifest(path.read_bytes())
    assert report["state"] == "Valid"

    with c2pa.Reader(str(path)) as reader:
        manifests = json.loads(reader.json())["manifests"]
    assert [m["title"] for m in manifests.values()] == ["face-7.png"]


def test_a_key_that_cannot_sign_leaves_the_picture_written_unsigned_and_logged(key_folder, caplog):
    credentials.prepare_key()
    (key_folder / credentials.KEY_FILE).write_text("not a key")
    with caplog.at_level(logging.WARNING, logger="imagegen-hub"):
        data = png_bytes(picture(), MADE)
    assert Image.open(io.BytesIO(data)).size == (320, 320) and core.read_parameters(data)["settings"] == MADE
    assert credentials.read_manifest(data) is None
    assert "without Content Credentials" in caplog.text


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_reading_a_truncated_or_foreign_file_never_raises(key_folder, cut):
    data = png_bytes(picture(), MADE)
    report = credentials.read_manifest(data[:int(len(data) * cut)])
    assert report is None or report["state"] in ("Invalid", "Unreadable")
    assert credentials.read_manifest(b"not a picture") is None
    assert credentials.read_manifest(b"") is None


def test_read_provenance_reports_all_three_marks_and_what_survives_a_jpeg(key_folder):
    data = png_bytes(picture(512), MADE)
    marks = core.read_provenance(data)
    assert marks["xmp"]["source_type"].endswith("trainedAlgorithmicMedia") and marks["xmp"]["model"] == MADE["model"]
    assert marks["watermark"] == {"found": True, "bit_accuracy": 1.0}
    assert marks["content_credentials"]["state"] == "Valid"
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(jpeg, "JPEG", quality=90)
    after = core.read_provenance(jpeg.getvalue())
    assert after["xmp"] is None and after["content_credentials"] is None  # metadata is gone with a re-encode
    assert after["watermark"]["found"] is True  # the pixels still carry it
    plain = io.BytesIO()
    picture(512).save(plain, "PNG")
    unmarked = core.read_provenance(plain.getvalue())
    assert unmarked["xmp"] is None and unmarked["content_credentials"] is None
    assert unmarked["watermark"]["found"] is False and unmarked["watermark"]["bit_accuracy"] < watermark.THRESHOLD


def test_read_provenance_of_what_is_not_a_picture_is_empty():
    empty = {"xmp": None, "watermark": None, "content_credentials": None}
    assert core.read_provenance(b"junk") == empty
    assert core.read_provenance("/nonexistent/picture.png") == empty
    assert core.read_provenance(None) == empty
