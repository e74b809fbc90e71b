"""Copy MobileStyleGAN's OpenVINO IR files out of the PyPI wheel `random-face` 2021.7.21.1.

MobileStyleGAN (Belousov 2021, arXiv:2104.04767) is a StyleGAN2 distilled into a small wavelet-based
synthesis network; the wheel (code Apache-2.0, (c) 2021 Sergei Belousov) carries the FFHQ-trained
mapping and synthesis networks as OpenVINO IR version 10, fp32. Its own code needs OpenVINO's removed
`inference_engine` API, gdown and jupyter, so the package is never installed or imported: its four data
files are copied unchanged and checked against the sha256 sums below (weights/README.md has the rest).

    python -c "from pathlib import Path; from core.build import mobilestylegan; mobilestylegan.prepare(Path('weights/faces/mobilestylegan'))"
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.build.wheels import extract, fetch_wheel
from core.errors import UnsafeModelFile

WHEEL_NAME, WHEEL_VERSION = "random-face", "2021.7.21.1"
FOLDER = "mobilestylegan"
"""Sub-folder of weights/faces/ that holds the four files."""
FILES = {  # name -> sha256 of the file as it is in the wheel (random_face/data/<name>)
    "MappingNetwork.xml": "73e2096cad6e696e4af47df2477e048ab4c42c0e0dec83c7c66604822689e55b",
    "MappingNetwork.bin": "212dd716bdb556e18db603ea97300d4fa3c872b878c726b2402fea80820e7305",
    "SynthesisNetwork.xml": "7918fce515243954d3e06628cb39a23902d6b1d5d02932cc0c2faee7a2aeeedd",
    "SynthesisNetwork.bin": "c7da15fa22d508c82e1c30dd6b4cdf67fe3ccdddaf85b310ee764dbf0c289645",
}


def prepare(out_dir: Path) -> Path:
    """Make sure `out_dir` holds the four IR files with the expected sha256; returns `out_dir`.

    Idempotent: files already there with the right sum are left alone. Each file appears atomically
    (written beside, checked, then renamed), so an interrupted run leaves no half file.

    Raises:
        RuntimeError: the wheel is neither cached nor downloadable.
        UnsafeModelFile: a file in the wheel does not have the expected sha256.
    """
    out_dir = Path(out_dir)
    missing = [name for name in FILES if not (out_dir / name).is_file()]
    if not missing:
        return out_dir
    wheel = fetch_wheel(WHEEL_NAME, WHEEL_VERSION)
    for name in missing:
        partial = extract(wheel, f"random_face/data/{name}", out_dir / f"{name}.partial")
        if sha256(partial) != FILES[name]:
            partial.unlink()
            raise UnsafeModelFile(f"{name} in {wheel.name} does not have the expected sha256 {FILES[name][:12]}…")
        os.replace(partial, out_dir / name)
    return out_dir


def sha256(path: Path) -> str:
    """Hex sha256 of the file at `path`, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
