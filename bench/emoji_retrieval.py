"""Does the emoji model draw what it is asked? Top-k retrieval of generated images among the training emoji.

For N emoji names drawn with a fixed seed from the training folder, generate one image per name
and rank all training emoji by distance to it; a hit is the prompted emoji among the k nearest.
Feature space: RGB pixels at 32x32 on white, values in [0, 1], Euclidean (L2) distance; the same
space the images were trained in, so a hit means the model drew that emoji rather than a neighbour.
Baseline printed side by side: random guessing (k / number of emoji).

    python bench/emoji_retrieval.py                       # the shipped model
    python bench/emoji_retrieval.py --checkpoint runs/emoji/checkpoints/last.pt   # a training run
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from core.build.emoji_text_encoder import prepare_text_encoder  # noqa: E402
from core.models.emoji_pipeline import EmojiPipeline  # noqa: E402
from core.models.schedulers import make_scheduler  # noqa: E402
from core.paths import REPO_DIR, WEIGHTS_DIR  # noqa: E402
from core.training.data import load_folder  # noqa: E402


def load_pipeline(folder: Path, checkpoint: Path | None) -> EmojiPipeline:
    """The shipped pipeline, optionally with the EMA weights of a training checkpoint swapped in."""
    prepare_text_encoder(folder)
    pipe = EmojiPipeline.from_pretrained(folder)
    if checkpoint is not None:
        from core.training.train import unet_from_checkpoint

        pipe.unet = unet_from_checkpoint(checkpoint)
    return pipe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO_DIR / "data" / "emoji")
    p.add_argument("--model", type=Path, default=WEIGHTS_DIR / "emoji-diffusion")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--prompts", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--guidance", type=float, nargs="+", default=[5.0])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--scheduler", default="DDIM")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args()

    if not (args.data / "metadata.jsonl").exists():
        from core.training.emoji_dataset import build

        build(args.data)
    data = load_folder(args.data, 32)
    bank = ((data.images + 1) / 2).flatten(1)  # (E, 3*32*32) in [0, 1]
    names = data.captions
    chosen = random.Random(args.seed).sample(range(len(names)), args.prompts)
    pipe = load_pipeline(args.model, args.checkpoint)
    pipe.scheduler = make_scheduler(args.scheduler, pipe.scheduler.config)
    print(f"{args.prompts} prompts, {len(names)} emoji, k={args.k}; random baseline "
          f"{100 * args.k / len(names):.1f} %")
    for guidance in args.guidance:
        hits, top1, started = 0, 0, time.time()
        for start in range(0, len(chosen), 25):
            batch = chosen[start:start + 25]
            gens = [torch.Generator().manual_seed(args.seed + i) for i in batch]
            with torch.inference_mode():
                images = pipe([names[i] for i in batch], generator=gens, num_inference_steps=args.steps,
                              guidance_scale=guidance).images
            dist = torch.cdist(images.flatten(1).float(), bank)  # (B, E)
            ranks = dist.argsort(dim=1)
            for row, i in enumerate(batch):
                hits += int(i in ranks[row, :args.k].tolist())
                top1 += int(ranks[row, 0].item() == i)
        seconds = (time.time() - started) / len(chosen)
        print(f"guidance {guidance:g}: top-{args.k} {100 * hits / len(chosen):.0f} %  top-1 "
              f"{100 * top1 / len(chosen):.0f} %  ({seconds:.2f} s per image, {args.steps} {args.scheduler} steps)")


if __name__ == "__main__":
    main()
