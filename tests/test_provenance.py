"""Provenance in every generated PNG: the XMP packet (IPTC digital source type, generator, model,
settings) written by core.imaging.parameters.png_info and read back by core.read_parameters."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

import core
from core.imaging import provenance, watermark
from core.imaging.io import png_bytes
from core.imaging.parameters import png_text_chunks

SETTINGS = {"prompt": "red apple", "steps": 25, "scheduler": "DPM++ 2M Karras", "guidance_scale": 7.0,
            "seed": 1, "width": 64, "height": 64, "model": "sd-turbo & <friends>"}
UPSCALE = {"model": "RealESRGAN_x4plus", "scale": 2, "model_scale": 4, "tile": 256}


def picture(size: int = 64) -> Image.Image:
    return Image.radial_gradient("L").resize((size, size)).convert("RGB")


def test_png_carries_xmp_with_iptc_source_type_generator_model_and_settings():
    data = png_bytes(picture(), SETTINGS)
    xmp = png_text_chunks(data)[provenance.XMP_KEY]
    assert provenance.SOURCE_TYPE in xmp and "imagegen-hub" in xmp
    with Image.open(io.BytesIO(data)) as img:  # Pillow finds it where exiftool does (getxmp needs defusedxml)
        img.load()
        assert img.info[provenance.XMP_KEY] == xmp
    description = provenance.read_xmp(xmp)
    assert description["source_type"] == provenance.SOURCE_TYPE
    assert description["model"] == "sd-turbo & <friends>"
    assert description["settings"] == "25 steps, DPM++ 2M Karras, CFG 7.0, seed 1, 64x64"


def test_read_parameters_reports_provenance_and_keeps_other_keys():
    found = core.read_parameters(png_bytes(picture(), SETTINGS))
    assert found["provenance"]["source_type"] == provenance.SOURCE_TYPE
    assert found["provenance"]["generator"].startswith("imagegen-hub")
    assert found["provenance"]["model"] == SETTINGS["model"]
    assert found["imagegen"] == SETTINGS and found["settings"] == SETTINGS
    with Image.open(io.BytesIO(png_bytes(picture(), SETTINGS))) as img:  # a PIL image too
        assert core.read_parameters(img)["provenance"]["source_type"] == provenance.SOURCE_TYPE


def test_upscale_of_a_given_picture_is_algorithmically_enhanced_not_generated():
    found = core.read_parameters(png_bytes(picture(), UPSCALE))
    assert found["provenance"]["source_type"] == provenance.ENHANCED_TYPE


def test_no_parameters_no_provenance_and_bad_xmp_is_ignored():
    assert "provenance" not in core.read_parameters(png_bytes(picture()))
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'
    for text in (None, "", "<not xml", bomb, "<x/>"):
        assert provenance.read_xmp(text) is None


# 2. the invisible watermark ---------------------------------------------------------------------------------

def photo(size: int = 256, seed: int = 0) -> Image.Image:
    """A fixed-seed, photo-like picture: smooth colour fields plus grain."""
    rng = np.random.default_rng(seed)
    smooth = Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).resize((size, size),
                                                                                        Image.Resampling.BICUBIC)
    grain = np.asarray(smooth, np.float32) + rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8))


def jpeg_then_half(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    jpeg = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return jpeg.resize((jpeg.width // 2, jpeg.height // 2), Image.Resampling.BICUBIC)


def test_watermark_survives_jpeg_90_and_half_size_and_unmarked_is_not_found():
    marked = watermark.embed(photo())
    found, accuracy = watermark.detect(jpeg_then_half(marked))
    assert found and accuracy >= 0.9  # 1.0 measured (48 bits)
    for seed in range(3):
        assert watermark.detect(jpeg_then_half(photo(seed=seed)))[0] is False
        assert watermark.detect(photo(seed=seed))[0] is False


def test_every_generated_png_is_marked_unless_small_an_upscale_or_turned_off(monkeypatch):
    with Image.open(io.BytesIO(png_bytes(photo(), SETTINGS))) as img:
        assert watermark.detect(img) == (True, watermark.detect(img)[1])
        assert core.read_parameters(img)["provenance"]["watermark"] == "dwtDct 48 bits"
    assert "under 256 px" in core.read_parameters(png_bytes(picture(), SETTINGS))["provenance"]["watermark"]
    upscaled = Image.open(io.BytesIO(png_bytes(photo(), UPSCALE)))
    assert not watermark.detect(upscaled)[0]
    assert np.array_equal(np.asarray(upscaled), np.asarray(photo()))
    monkeypatch.setenv(watermark.ENV, "0")
    off = Image.open(io.BytesIO(png_bytes(photo(), SETTINGS)))
    assert np.array_equal(np.asarray(off), np.asarray(photo()))
    assert core.read_parameters(off)["provenance"]["watermark"].startswith("off")
