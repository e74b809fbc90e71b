"""Train a small text-to-image diffusion model on a folder of captioned images.

    python -m core.training.train data/emoji runs/emoji --steps 8000

Steps: (1) preprocess the folder (composite on white, resize, encode every caption once with the
frozen text encoder), (2) split train/validation with the seed, (3) train the UNet with
v-prediction and min-SNR weighting, an EMA copy of the weights, and the caption dropped
`--cond-drop` of the time for classifier-free guidance, (4) every `--eval-every` epochs log the
validation loss and save a sample grid, (5) keep checkpoints to `--resume` from, (6) write the EMA
weights as a diffusers pipeline folder (safetensors) to `OUT/pipeline`.

Everything random draws from generators seeded by `--seed`, so a run is reproducible on the same
machine and torch build. Sources: min-SNR weighting (Hang et al. 2023, arXiv:2303.09556), EMA of
weights (Polyak averaging, as in Ho et al. 2020).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from diffusers.training_utils import EMAModel, compute_snr
from PIL import Image

from core.build.emoji_text_encoder import prepare_text_encoder
from core.models.emoji_pipeline import EmojiPipeline, encode_text
from core.paths import WEIGHTS_DIR
from core.training.data import CaptionedImages, load_folder, split
from core.training.unet import build_unet, sampling_scheduler, training_scheduler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="folder with images and metadata.jsonl")
    p.add_argument("out", type=Path, help="run folder: checkpoints/, samples/, log.jsonl, pipeline/")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", type=int, nargs=3, default=(32, 64, 128), help="UNet widths per resolution")
    p.add_argument("--layers-per-block", type=int, default=1)
    p.add_argument("--steps", type=int, default=8000, help="optimizer steps in all")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=4e-4, help="peak AdamW learning rate (cosine decay to 5%%)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the shipped weights")
    p.add_argument("--cond-drop", type=float, default=0.1, help="share of captions replaced by '' (CFG)")
    p.add_argument("--min-snr", type=float, default=5.0, help="min-SNR gamma; 0 turns the weighting off")
    p.add_argument("--val-fraction", type=float, default=0.03)
    p.add_argument("--eval-every", type=int, default=1, help="epochs between validation + sample grid")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    p.add_argument("--text-encoder", type=Path, default=WEIGHTS_DIR / "emoji-diffusion",
                   help="folder holding text_encoder/ and tokenizer/ (MiniLM)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--init-from", type=Path,
                   help="start from the UNet of this pipeline folder (e.g. weights/emoji-diffusion); --channels is then ignored")
    p.add_argument("--export-to", type=Path, help="only write OUT's last checkpoint (EMA) as a pipeline folder here")
    return p.parse_args(argv)


def load_text_encoder(folder: Path):
    """The frozen MiniLM text encoder and its tokenizer from `folder`/{text_encoder,tokenizer}."""
    from transformers import AutoTokenizer, BertModel

    prepare_text_encoder(folder)
    return AutoTokenizer.from_pretrained(folder / "tokenizer"), BertModel.from_pretrained(folder / "text_encoder").eval()


def encode_all(captions: list[str], tokenizer, text_encoder, batch: int = 256) -> dict[str, torch.Tensor]:
    """Encode captions once (plus the empty caption last): states (N+1, T, 384), mask, pooled."""
    parts = [encode_text(captions[i:i + batch], tokenizer, text_encoder) for i in range(0, len(captions), batch)]
    empty = encode_text([""], tokenizer, text_encoder)
    states, mask, pooled = (torch.cat([p[k] for p in parts] + [empty[k]]) for k in range(3))
    return {"states": states, "mask": mask, "pooled": pooled}


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def diffusion_loss(unet, scheduler, images, text, index, gen, min_snr: float, t=None, noise=None):
    """v-prediction MSE on `images` (B, 3, R, R) in [-1, 1] with captions text[index]; min-SNR weighted."""
    b = images.shape[0]
    if noise is None:
        noise = torch.randn(images.shape, generator=gen)
    if t is None:
        t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=gen)
    noisy = scheduler.add_noise(images, noise, t)
    target = scheduler.get_velocity(images, noise, t)
    pred = unet(noisy, t, encoder_hidden_states=text["states"][index], encoder_attention_mask=text["mask"][index],
                class_labels=text["pooled"][index]).sample
    per_image = (pred - target).pow(2).mean(dim=(1, 2, 3))
    if min_snr > 0:
        snr = compute_snr(scheduler, t)
        per_image = per_image * torch.clamp(snr, max=min_snr) / (snr + 1)  # v-prediction form
    return per_image.mean()


@torch.no_grad()
def validation_loss(unet, scheduler, val: CaptionedImages, text, offset: int, min_snr: float, seed: int) -> float:
    """Mean loss over the validation images at 8 fixed timesteps with fixed noise (comparable across epochs)."""
    gen = torch.Generator().manual_seed(seed)
    index = torch.arange(offset, offset + len(val.captions))
    losses = []
    for t_value in torch.linspace(50, 950, 8).long():
        t = t_value.repeat(len(val.captions))
        noise = torch.randn(val.images.shape, generator=gen)
        losses.append(diffusion_loss(unet, scheduler, val.images, text, index, gen, min_snr, t, noise).item())
    return sum(losses) / len(losses)


def sample_grid(pipe: EmojiPipeline, captions: list[str], path: Path, seed: int) -> None:
    """Save one image per caption (guidance 2, 25 DDIM steps) as a grid row, 4x enlarged."""
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(captions))]
    images = pipe(captions, generator=gens, height=pipe.unet.config.sample_size,
                  width=pipe.unet.config.sample_size, output_type="pil").images
    size = images[0].width * 4
    grid = Image.new("RGB", (size * len(images), size), "white")
    for i, img in enumerate(images):
        grid.paste(img.resize((size, size), Image.NEAREST), (i * size, 0))
    grid.save(path)


def make_pipeline(unet, tokenizer, text_encoder) -> EmojiPipeline:
    return EmojiPipeline(unet=unet, scheduler=sampling_scheduler(training_scheduler()),
                         text_encoder=text_encoder, tokenizer=tokenizer)


def train(args: argparse.Namespace) -> Path:
    """Run the training described by `args` (see parse_args); returns the written pipeline folder."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out: Path = args.out
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)

    # 1. preprocess: pixels and caption encodings, once
    data = load_folder(args.data, args.resolution)
    train_set, val_set = split(data, args.val_fraction, args.seed)
    tokenizer, text_encoder = load_text_encoder(args.text_encoder)
    text = encode_all(train_set.captions + val_set.captions, tokenizer, text_encoder)
    empty = len(train_set.captions) + len(val_set.captions)  # index of the empty caption
    print(f"{len(train_set.captions)} train / {len(val_set.captions)} validation images at {args.resolution}px")

    # 2. model, optimizer, EMA (or resume them)
    if args.init_from is not None:
        from diffusers import UNet2DConditionModel

        unet = UNet2DConditionModel.from_pretrained(args.init_from / "unet", dtype=torch.float32).train()
    else:
        unet = build_unet(args.resolution, tuple(args.channels), args.layers_per_block).train()
    scheduler = training_scheduler()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.01)
    ema = EMAModel(unet.parameters(), decay=args.ema)
    gen = torch.Generator().manual_seed(args.seed + 1)
    step, last = 0, out / "checkpoints" / "last.pt"
    if args.resume and last.exists():
        state = torch.load(last, map_location="cpu", weights_only=True)
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        gen.set_state(state["generator"])
        step = state["step"]
        print(f"resumed at step {step}")
    print(f"UNet: {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters")

    # 3. train; 4. evaluate each --eval-every epochs
    n_train = len(train_set.captions)
    steps_per_epoch = max(1, n_train // args.batch_size)
    grid_captions = (val_set.captions[:4] + train_set.captions[:: max(1, n_train // 4)])[:8]
    log = (out / "log.jsonl").open("a", encoding="utf-8")
    started = time.time()
    while step < args.steps:
        index = torch.randint(0, n_train, (args.batch_size,), generator=gen)
        dropped = torch.rand(args.batch_size, generator=gen) < args.cond_drop
        text_index = torch.where(dropped, torch.full_like(index, empty), index)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * lr_factor(step, args.warmup, args.steps)
        loss = diffusion_loss(unet, scheduler, train_set.images[index], text, text_index, gen, args.min_snr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        ema.step(unet.parameters())
        step += 1
        if step % 50 == 0:
            print(f"step {step}/{args.steps} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                  f"{(time.time() - started) / 60:.1f} min", flush=True)
        epoch_end = step % steps_per_epoch == 0 and (step // steps_per_epoch) % args.eval_every == 0
        if epoch_end or step == args.steps:
            evaluate(unet, ema, scheduler, val_set, text, n_train, args, tokenizer, text_encoder,
                     grid_captions, out / "samples" / f"step_{step:06d}.png", step, log)
        if step % args.checkpoint_every == 0 or step == args.steps:
            torch.save({"unet": unet.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema.state_dict(),
                        "generator": gen.get_state(), "step": step, "args": json.dumps(vars(args), default=str)}, last)

    # 5. ship the EMA weights as a diffusers pipeline (safetensors)
    ema.copy_to(unet.parameters())
    return save_pipeline(make_pipeline(unet.eval(), tokenizer, text_encoder), out / "pipeline")


def evaluate(unet, ema, scheduler, val_set, text, offset, args, tokenizer, text_encoder, captions, grid_path, step, log):
    """Log the validation loss of the EMA weights and save a sample grid."""
    ema.store(unet.parameters())
    ema.copy_to(unet.parameters())
    unet.eval()
    val = validation_loss(unet, scheduler, val_set, text, offset, args.min_snr, args.seed)
    sample_grid(make_pipeline(unet, tokenizer, text_encoder), captions, grid_path, args.seed)
    ema.restore(unet.parameters())
    unet.train()
    log.write(json.dumps({"step": step, "val_loss": val, "time": time.time()}) + "\n")
    log.flush()
    print(f"step {step}: validation loss {val:.4f}, samples in {grid_path}", flush=True)


def unet_from_checkpoint(checkpoint: Path):
    """The UNet of a training checkpoint (`OUT/checkpoints/last.pt`) carrying its EMA weights, in eval mode."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    args = json.loads(state["args"])
    unet = build_unet(args["resolution"], tuple(args["channels"]), args.get("layers_per_block", 1))
    ema = EMAModel(unet.parameters())
    ema.load_state_dict(state["ema"])
    ema.copy_to(unet.parameters())
    return unet.eval()


def export(checkpoint: Path, target: Path, text_encoder_dir: Path = WEIGHTS_DIR / "emoji-diffusion") -> Path:
    """Write the EMA weights of `checkpoint` as a diffusers pipeline folder at `target` (safetensors)."""
    tokenizer, text_encoder = load_text_encoder(text_encoder_dir)
    return save_pipeline(make_pipeline(unet_from_checkpoint(checkpoint), tokenizer, text_encoder), target)


def save_pipeline(pipe: EmojiPipeline, target: Path) -> Path:
    """Write `pipe` as a diffusers folder of safetensors, the UNet in fp16 (half the bytes; loading
    with torch_dtype=float32 casts it back, and sampling is unchanged to within 8-bit rounding)."""
    pipe.unet.half()
    pipe.save_pretrained(target, safe_serialization=True)
    pipe.unet.float()
    return target


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export_to is not None:
        print(f"pipeline written to {export(args.out / 'checkpoints' / 'last.pt', args.export_to, args.text_encoder)}")
        return
    print(f"pipeline written to {train(args)}")


if __name__ == "__main__":
    main()
