"""Full-size SD-Turbo architecture, 512x512, 1 step: our core call vs the plain diffusers pipeline call.

The pipeline is built from our SD 2.x config folder (weights/sd-configs/sd2: the UNet, VAE and
OpenCLIP-H text encoder that SD-Turbo shares with SD 2.1) at SD-Turbo's 512 px (UNet sample size
64) with random weights from a fixed seed; no real weights are needed to time it. Each variant runs
in its own process, so its peak memory (max RSS) is its own:

  plain            StableDiffusionPipeline(...)(prompt, num_inference_steps=1, height=512, width=512):
                   diffusers' defaults otherwise (guidance 7.5, so classifier-free guidance runs)
  plain, CFG off   the same with guidance_scale=0.0, as SD-Turbo's model card says
  ours             core.text_to_image(prompt, model=...): our defaults for a Turbo model (1 step,
                   guidance 0, Euler a), channels-last UNet and VAE on the CPU, our VAE decode

Reported: seconds per image (min of --repeat warm runs), peak RSS during the runs above the
loaded-model baseline, and ratios ours/plain. Also the image-to-image switch (`from_pipe`) time.

With `--device cuda` every variant runs in float16 on the GPU (as SD-Turbo's model card loads it),
peak memory is the GPU's (torch.cuda.max_memory_allocated), and three more runs of ours check the
GPU-only paths: 1024x1024, 2048x2048 (VAE tiling above 1024x1024) and model CPU offload (forced by
reporting 1 GiB of free GPU memory to core.models.stable_diffusion.place).

    python bench/bench_sd_turbo.py [--repeat 3] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
VARIANTS = ("plain", "plain, CFG off", "ours")
GPU_VARIANTS = ("ours 1024", "ours 2048", "ours, CPU offload")


def build_pipeline(dtype=None):
    """StableDiffusionPipeline with SD-Turbo's architecture and random weights (seed 0), on the CPU in
    `dtype` (default float32)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from core.build import sd_configs

    folder = sd_configs.config_folder("sd2", sd_configs.CONFIGS_DIR)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"), sample_size=64)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    scheduler = EulerAncestralDiscreteScheduler.from_pretrained(folder, subfolder="scheduler",
                                                                prediction_type="epsilon",
                                                                timestep_spacing="trailing")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet.eval(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    return pipe if dtype in (None, torch.float32) else pipe.to(dtype=dtype)


def peak_mb(device: str) -> float:
    """Peak memory so far: the GPU's allocated memory on CUDA, else this process's max RSS."""
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, repeat: int, device: str) -> dict:
    """Time one variant in this process; returns seconds, peak memory and (ours) the from_pipe time."""
    import torch

    pipe = build_pipeline(torch.float16 if device == "cuda" else torch.float32)
    out: dict = {"variant": variant}
    side = int(variant.split()[1]) if variant in ("ours 1024", "ours 2048") else 512
    if variant.startswith("ours"):
        from core.generators import diffusion
        from core.models import registry, stable_diffusion
        from core.models.registry import ModelKind, ModelSpec

        if variant == "ours, CPU offload":
            torch.cuda.mem_get_info = lambda *args: (2**30, torch.cuda.get_device_properties(0).total_memory)
        name = "sd-turbo-architecture"
        registry.register(ModelSpec(ModelKind.DIFFUSION, name, lambda: stable_diffusion.wrap(name, pipe)))
        from diffusers import AutoPipelineForImage2Image

        for key in ("from_pipe_first_s", "from_pipe_s"):  # the first call also imports the img2img modules
            started = time.perf_counter()
            AutoPipelineForImage2Image.from_pipe(pipe)
            out[key] = time.perf_counter() - started

        def once():
            return diffusion.text_to_image(PROMPT, model=name, seed=0, width=side, height=side).images[0]
    else:
        guidance = {} if variant == "plain" else {"guidance_scale": 0.0}
        pipe.to(device)

        def once():
            with torch.no_grad():
                return pipe(PROMPT, num_inference_steps=1, height=512, width=512,
                            generator=torch.Generator().manual_seed(0), **guidance).images[0]
    image = once()  # warm-up (and for ours: load, place)
    baseline = peak_mb(device)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        image = once()
        times.append(time.perf_counter() - started)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32))
    out.update(seconds=min(times), peak_mb=peak_mb(device), baseline_mb=baseline, size=list(image.size),
               threads=torch.get_num_threads(), pixel_std=float(pixels.std()))
    if variant == "ours, CPU offload":
        out["offloaded"] = models_offloaded(pipe)
    return out


def models_offloaded(pipe) -> bool:
    """True when diffusers' model CPU offload hooks are on the pipeline (the UNet rests on the CPU)."""
    return pipe.unet.device.type == "cpu" and getattr(pipe, "_all_hooks", None) not in (None, [])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--variant", choices=VARIANTS + GPU_VARIANTS, help=argparse.SUPPRESS)  # child process
    args = p.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.repeat, args.device)))
        return
    memory = "peak GPU memory" if args.device == "cuda" else "peak RSS"
    rows = {}
    for variant in VARIANTS + (GPU_VARIANTS if args.device == "cuda" else ()):
        done = subprocess.run([sys.executable, __file__, "--variant", variant, "--repeat", str(args.repeat),
                               "--device", args.device], capture_output=True, text=True,
                              env={**os.environ, "IMAGEGEN_DEVICE": args.device})
        if done.returncode:
            print(f"{variant:>17}: FAILED\n{done.stderr[-3000:]}", flush=True)
            continue
        rows[variant] = row = json.loads(done.stdout.strip().splitlines()[-1])
        extra = f", offloaded: {row['offloaded']}" if "offloaded" in row else ""
        print(f"{variant:>17}: {row['seconds']:.3f} s per {row['size'][0]}x{row['size'][1]} image, {memory} "
              f"{row['peak_mb']:.0f} MB, pixel std {row['pixel_std']:.1f}{extra}", flush=True)
    ours = rows["ours"]
    for base in ("plain", "plain, CFG off"):
        print(f"ours / {base}: time {ours['seconds'] / rows[base]['seconds']:.2f}x, "
              f"{memory} {ours['peak_mb'] / rows[base]['peak_mb']:.2f}x")
    print(f"image-to-image switch (from_pipe): {ours['from_pipe_s'] * 1000:.1f} ms (goal <= 100 ms; the "
          f"process's first call, which also imports the pipeline modules: {ours['from_pipe_first_s'] * 1000:.0f} ms); "
          f"{ours['threads']} torch threads")


if __name__ == "__main__":
    main()
