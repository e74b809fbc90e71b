"""The CLIP BPE tokenizer files (vocab.json, merges.txt) that Stable Diffusion checkpoints need.

Single-file checkpoints hold the text encoder's weights but not its tokenizer. We build the
tokenizer files from the BPE merge list that ships in the PyPI wheel `open_clip_torch`
(`open_clip/bpe_simple_vocab_16e6.txt.gz`, MIT), following the vocabulary construction of CLIP
(Radford et al. 2021, arXiv:2103.00020): the 256 byte symbols, the same with an end-of-word mark,
one token per merge, then the start and end tokens: 49,408 tokens in all. The files are written in
the layout `transformers.CLIPTokenizer` reads (the GPT-2 byte-to-unicode mapping, Radford et al.
2019, for the byte symbols).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from core.build.wheels import extract, fetch_wheel

OPEN_CLIP = ("open_clip_torch", "3.3.0")
BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
VOCAB_SIZE = 49408
N_MERGES = VOCAB_SIZE - 2 * 256 - 2  # 48,894 merges: the vocabulary minus byte symbols and 2 specials
FILES = ("vocab.json", "merges.txt")


def byte_symbols() -> list[str]:
    """The 256 characters standing for the bytes 0..255 (GPT-2's byte-to-unicode map), in CLIP's order.

    The 188 printable Latin-1 bytes stand for themselves and come first; the other 68 bytes follow,
    in byte order, as U+0100 upwards.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def build_files(bpe_gz: Path, dest: Path) -> Path:
    """Write `dest`/vocab.json and `dest`/merges.txt from CLIP's gzipped BPE merge list.

    Raises:
        ValueError: the merge list is shorter than CLIP's 48,894 merges.
    """
    lines = gzip.decompress(bpe_gz.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:1 + N_MERGES]]
    if len(merges) != N_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{bpe_gz} is not CLIP's BPE merge list ({len(merges)} merges)")
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False),
                                     encoding="utf-8")
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                     encoding="utf-8")
    return dest


def prepare(dest: Path) -> Path:
    """Make sure `dest` holds vocab.json and merges.txt, fetching the open_clip_torch wheel if needed.

    Raises:
        RuntimeError: the wheel is not cached and the package registry cannot be reached.
    """
    if all((dest / name).is_file() for name in FILES):
        return dest
    wheel = fetch_wheel(*OPEN_CLIP)
    bpe = extract(wheel, BPE_MEMBER, dest / "bpe_simple_vocab_16e6.txt.gz")
    build_files(bpe, dest)
    bpe.unlink()
    return dest
