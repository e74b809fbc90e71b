"""Content Credentials: a C2PA manifest, signed, in every PNG the hub generates (PyPI `c2pa-python`,
the Content Authenticity Initiative's binding of the Rust SDK c2pa-rs; MIT / Apache-2.0).

What a manifest says (C2PA 2.x, https://c2pa.org/specifications/): one `c2pa.actions` assertion with
the action `c2pa.created`, the IPTC digital source type `trainedAlgorithmicMedia`, the software agent
("imagegen-hub" and its version) and the model and settings; a hard binding (the SHA-256 of the file's
bytes outside the manifest), so a changed pixel or chunk makes the manifest read "Invalid"; no
thumbnail. It rides in the PNG's `caBX` chunk, after our text chunks (written first: they are inside
the hash).

Who signs it: a key made on this machine at setup (`prepare_key`, called by scripts/setup.sh through
core.build.prepare and at app start): an ECDSA P-256 key, a certificate for it ("imagegen-hub signer")
and the local root that issued it ("imagegen-hub local root"), both self-signed here and trusted by
nobody else, so readers report the signature as valid and its signer as untrusted
(`signingCredential.untrusted`). The manifest binds the picture to what made it; it does not prove who
ran the hub. A host who has a certificate from a C2PA trust list can put its key and chain in place of
ours (KEY_FILE, CHAIN_FILE in WEIGHTS_DIR/c2pa).

What is signed: the pictures our generators make (text to image, image to image, faces), the same set
the invisible watermark marks, whatever their size. Not signed: super-resolution of a user's picture
(their picture, not a generated one: its XMP says `algorithmicallyEnhanced`), PNGs without parameters,
and nothing when the host sets IMAGEGEN_C2PA=0 or c2pa-python cannot be imported (then the PNG is
written unsigned and the log says why, once).
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from core.paths import WEIGHTS_DIR

FOLDER = WEIGHTS_DIR / "c2pa"
KEY_FILE, CHAIN_FILE = "signer-key.pem", "signer-chain.pem"
ENV = "IMAGEGEN_C2PA"
ORGANIZATION = "imagegen-hub (self-signed on this machine)"
CREATED = "c2pa.created"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
UNTRUSTED = "signingCredential.untrusted"
"""The status every manifest of ours gets from a reader without our root: expected, not a failure."""
VALID_DAYS = 3650
MAX_MANIFEST_READ = 256 * 2**20
"""Files beyond this many bytes are not given to the C2PA reader."""

log = logging.getLogger("imagegen-hub")
_lock = threading.Lock()
_said: set[str] = set()


def enabled() -> bool:
    """Whether the host leaves Content Credentials on (IMAGEGEN_C2PA unset or anything but 0/false/off/no)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def prepare_key(folder: Path | None = None) -> Path:
    """Make the signing key and its certificate chain in `folder` unless both exist; returns `folder`.

    Writes KEY_FILE (ECDSA P-256, PKCS#8 PEM, readable by the owner only) and CHAIN_FILE (PEM: the
    signer's certificate, then the local root that issued it). The signer's certificate has the key
    usage digitalSignature and the extended key usage emailProtection, as C2PA asks of signers
    (c2pa-rs refuses a self-issued leaf, hence the two certificates); both are valid for VALID_DAYS days.

    Raises:
        OSError: `folder` (default FOLDER) cannot be written.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = folder or FOLDER
    key_path, chain_path = folder / KEY_FILE, folder / CHAIN_FILE
    if key_path.is_file() and chain_path.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)])

    def certificate(subject: str, key, issuer: x509.Name, issuer_key, *, ca: bool) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        usage = dict(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                     encipher_only=False, decipher_only=False)
        built = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer)
                 .public_key(key.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - datetime.timedelta(days=1))
                 .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                 .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                 .add_extension(x509.KeyUsage(**usage), critical=True)
                 .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not ca:
            built = (built.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                     .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                    critical=False))
        return built.sign(issuer_key, hashes.SHA256())

    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = certificate("imagegen-hub local root", root_key, name("imagegen-hub local root"), root_key, ca=True)
    leaf = certificate("imagegen-hub signer", key, root.subject, root_key, ca=False)
    pem = serialization.Encoding.PEM
    chain_path.write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    secret = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret)
    return folder


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.warning(message)


def _c2pa():
    """The c2pa module, or None (said once in the log) when it cannot be imported."""
    try:
        import c2pa
    except (ImportError, OSError) as error:  # OSError: its native library does not load on this platform
        _say_once(f"Content Credentials are off: c2pa-python cannot be imported ({error}).")
        return None
    return c2pa


def manifest(parameters: dict[str, Any], version: str, title: str) -> dict[str, Any]:
    """The manifest definition (c2pa-rs's ManifestDefinition JSON) for a picture made with `parameters`
    by `version` ("imagegen-hub 0.1.0"), named `title` (its file name)."""
    from core.imaging.provenance import summary

    name, _, number = version.partition(" ")
    agent = {"name": name, "version": number or "unknown"}
    described = {"model": str(parameters.get("model") or ""), "settings": summary(parameters)}
    action = {"action": CREATED, "digitalSourceType": SOURCE_TYPE, "softwareAgent": agent,
              "parameters": {key: value for key, value in described.items() if value}}
    return {"claim_generator_info": [agent], "title": title, "format": "image/png",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}]}


def signs(parameters: dict[str, Any] | None) -> bool:
    """Whether a picture with `parameters` gets a manifest: a generated one (not an upscale of a given
    picture), with Content Credentials on."""
    from core.imaging.provenance import is_upscale

    return bool(parameters) and not is_upscale(parameters) and enabled()


def sign_png(data: bytes, parameters: dict[str, Any] | None, version: str, title: str = "image.png",
             folder: Path | None = None) -> tuple[bytes, str | None]:
    """`data` (a PNG's bytes) with a signed C2PA manifest, and a word for the log or None.

    Returns (data, None) unchanged when the picture is not one we sign (see the module), and
    (data, why) unchanged when signing is off or fails (the user's picture is never lost for it).
    The key is read from `folder` (default FOLDER) and made there on first use when setup did not
    make it (prepare_key).
    """
    folder = folder or FOLDER
    if not signs(parameters):
        return data, None if enabled() else f"off ({ENV}=0)"
    c2pa = _c2pa()
    if c2pa is None:
        return data, "c2pa-python is not installed"
    try:
        with _lock:
            prepare_key(folder)
        chain, key = (folder / CHAIN_FILE).read_bytes(), (folder / KEY_FILE).read_bytes()
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
        settings = c2pa.Settings.from_json(json.dumps({"builder": {"thumbnail": {"enabled": False}}}))
        signed = io.BytesIO()
        with c2pa.Context(settings) as context, c2pa.Builder(manifest(parameters, version, title), context) as builder:
            builder.sign(signer, "image/png", io.BytesIO(data), signed)
        signer.close()
    except Exception as error:  # noqa: BLE001 - c2pa's and the file system's errors alike: keep the picture
        _say_once(f"A picture was written without Content Credentials: {type(error).__name__}: {error}")
        return data, f"signing failed: {error}"
    return signed.getvalue(), None


def read_manifest(data: bytes) -> dict[str, Any] | None:
    """What a picture's C2PA manifest says, or None when it has none (or c2pa-python is absent).

    Args:
        data: the file's bytes (PNG, JPEG, WebP, ...: any format c2pa-rs reads; it is detected).

    Returns:
        {"state": "Valid" | "Trusted" | "Invalid" (c2pa-rs's validation state; ours read "Valid": the
         signature and hashes check, the signer is not on a trust list), "trusted": bool,
         "problems": the validation codes other than UNTRUSTED (e.g. "assertion.dataHash.mismatch"
         when the picture changed after signing), "signer": the certificate's common name and issuer,
         "generator": the claim generator, "actions": [{"action", "digitalSourceType",
         "softwareAgent", "parameters"} as present]}, or {"state": "Unreadable", "error": text} for a
        manifest c2pa-rs cannot parse. Never raises.
    """
    c2pa = _c2pa()
    if c2pa is None or not data or len(data) > MAX_MANIFEST_READ:
        return None
    try:
        with c2pa.Reader(None, io.BytesIO(data)) as reader:
            report, state = json.loads(reader.json()), reader.get_validation_state()
    except Exception as error:  # noqa: BLE001 - c2pa's typed errors; "no JUMBF data" is the common one
        text = str(error)
        if "ManifestNotFound" in type(error).__name__ or "ManifestNotFound" in text or "NotSupported" in text:
            return None
        return {"state": "Unreadable", "error": text[:300]}
    active = report.get("manifests", {}).get(report.get("active_manifest") or "", {})
    codes = [item.get("code", "") for item in report.get("validation_status") or []]
    signature = active.get("signature_info") or {}
    generator = ", ".join(" ".join(str(info.get(k, "")) for k in ("name", "version")).strip()
                          for info in active.get("claim_generator_info") or []) or active.get("claim_generator")
    actions = []
    for assertion in active.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                actions.append({key: action[key] for key in ("action", "digitalSourceType", "softwareAgent",
                                                            "parameters") if key in action})
    return {"state": state or "Unknown", "trusted": state == "Trusted",
            "problems": [code for code in codes if code != UNTRUSTED],
            "signer": " / ".join(part for part in (signature.get("common_name"), signature.get("issuer")) if part),
            "generator": generator, "actions": actions}
