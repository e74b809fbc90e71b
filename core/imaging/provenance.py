"""Provenance in our PNGs: an XMP packet saying the picture comes from a trained model, which one, how.

The packet goes in the PNG's iTXt chunk "XML:com.adobe.xmp" (where Adobe's XMP spec, exiftool and Pillow's
`Image.getxmp()` look) and holds, as attributes of one rdf:Description:
    Iptc4xmpExt:DigitalSourceType  IPTC's term for how the picture came to exist: SOURCE_TYPE
        ("trainedAlgorithmicMedia", the term IPTC recommends for pictures made by generative AI) for what our
        generators make, ENHANCED_TYPE ("algorithmicallyEnhanced") for a super-resolution of a user's picture;
    xmp:CreatorTool                "imagegen-hub 0.1.0";
    imagegen:Model, imagegen:Settings, imagegen:Watermark
                                   the model, a short settings summary ("25 steps, DPM++ 2M Karras, CFG 7.0,
                                   seed 1, 512x512") and what core.imaging.watermark did ("dwtDct 48 bits" or why not).
XMP is plain metadata: anyone can strip or edit it; the invisible watermark survives more (see watermark.py).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import quoteattr

XMP_KEY = "XML:com.adobe.xmp"
"""The PNG iTXt keyword of an XMP packet (XMP spec part 3, 1.1.5)."""
GENERATOR = "imagegen-hub"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ENHANCED_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicallyEnhanced"
NAMESPACES = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
              "xmp": "http://ns.adobe.com/xap/1.0/", "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
              "imagegen": "https://github.com/imagegen-hub/ns/1.0/"}
_FIELDS = {"source_type": "Iptc4xmpExt:DigitalSourceType", "generator": "xmp:CreatorTool",
           "model": "imagegen:Model", "settings": "imagegen:Settings", "watermark": "imagegen:Watermark"}
MAX_XMP = 2**20
"""An XMP packet longer than this many characters is not parsed (reads as no provenance)."""


def is_upscale(parameters: dict[str, Any]) -> bool:
    """Whether `parameters` are core.upscale's (a super-resolution of a given picture, not a generation)."""
    return "model_scale" in parameters


def summary(parameters: dict[str, Any]) -> str:
    """A short, human summary of the settings: "25 steps, DPM++ 2M Karras, CFG 7.0, seed 1, 512x512"
    (only those present; strength and the upscale factor too)."""
    p = parameters
    parts = [f"{p['steps']} steps" if p.get("steps") is not None else None, p.get("scheduler"),
             f"CFG {p['guidance_scale']}" if p.get("guidance_scale") is not None else None,
             f"seed {p['seed']}" if p.get("seed") is not None else None,
             f"{p['width']}x{p['height']}" if "width" in p and "height" in p else None,
             f"strength {p['strength']}" if p.get("strength") is not None else None,
             f"x{p['scale']:g}" if is_upscale(p) and isinstance(p.get("scale"), (int, float)) else None]
    return ", ".join(str(part) for part in parts if part)


def xmp_packet(parameters: dict[str, Any], version: str, watermark: str | None = None) -> str:
    """The XMP packet (UTF-8 text, with its xpacket wrapper) for a picture made with `parameters` by
    `version` ("imagegen-hub 0.1.0"); `watermark` says what was embedded ("dwtDct 48 bits") or why not."""
    values = {"source_type": ENHANCED_TYPE if is_upscale(parameters) else SOURCE_TYPE, "generator": version,
              "model": str(parameters.get("model") or ""), "settings": summary(parameters),
              "watermark": watermark}
    attributes = "".join(f"\n   {_FIELDS[key]}={quoteattr(value)}" for key, value in values.items() if value)
    declarations = "".join(f' xmlns:{name}="{uri}"' for name, uri in NAMESPACES.items() if name not in ("x", "rdf"))
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            f'<x:xmpmeta xmlns:x="{NAMESPACES["x"]}">\n'
            f' <rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">\n'
            f'  <rdf:Description rdf:about=""{declarations}{attributes}/>\n'
            ' </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="r"?>')


def read_xmp(text: str | None) -> dict[str, str] | None:
    """{"source_type", "generator", and "model", "settings", "watermark" where present} from an XMP packet
    (ours or another tool's, attributes or elements), or None when it has no IPTC digital source type or
    does not parse. Never raises."""
    if not text or len(text) > MAX_XMP or "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None  # no entities: nothing for an XML bomb to expand
    try:
        root = ET.fromstring(re.sub(r"<\?xpacket[^>]*\?>", "", text).strip())
    except ET.ParseError:
        return None
    found: dict[str, str] = {}
    for node in root.iter(f"{{{NAMESPACES['rdf']}}}Description"):
        for key, name in _FIELDS.items():
            prefix, local = name.split(":")
            tag = f"{{{NAMESPACES[prefix]}}}{local}"
            value = node.get(tag)
            child = node.find(tag)
            if value is None and child is not None:
                value = child.get(f"{{{NAMESPACES['rdf']}}}resource") or (child.text or "").strip()
            if value and key not in found:
                found[key] = value
    return found if "source_type" in found else None
