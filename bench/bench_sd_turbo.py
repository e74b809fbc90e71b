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

    python bench/bench_sd_turbo.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
VARIANTS = ("plain", "plain, CFG off", "ours")


def build_pipeline():
    """StableDiffusionPipeline with SD-Turbo's architecture and random weights (seed 0), fp32, CPU."""
    import torch
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from core import sd_configs

    folder = sd_configs.config_folder("sd2", sd_configs.CONFIGS_DIR)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"), sample_size=64)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    scheduler = EulerAncestralDiscreteScheduler.from_pretrained(folder, subfolder="scheduler",
                                                                prediction_type="epsilon",
                                                                timestep_spacing="trailing")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet.eval(),
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, repeat: int) -> dict:
    """Time one variant in this process; returns seconds, peak RSS and (ours) the from_pipe time."""
    import torch

    pipe = build_pipeline()
    out: dict = {"variant": variant}
    if variant == "ours":
        from core import diffusion, models, sd_models

        name = "sd-turbo-architecture"
        models.register(models.ModelSpec("text_to_image", name, lambda: sd_models.wrap(name, pipe)))
        from diffusers import AutoPipelineForImage2Image

        for key in ("from_pipe_first_s", "from_pipe_s"):  # the first call also imports the img2img modules
            started = time.perf_counter()
            AutoPipelineForImage2Image.from_pipe(pipe)
            out[key] = time.perf_counter() - started

        def once():
            return diffusion.text_to_image(PROMPT, model=name, seed=0).images[0]
    else:
        guidance = {} if variant == "plain" else {"guidance_scale": 0.0}

        def once():
            with torch.no_grad():
                return pipe(PROMPT, num_inference_steps=1, height=512, width=512,
                            generator=torch.Generator().manual_seed(0), **guidance).images[0]
    image = once()  # warm-up (and for ours: load, place)
    baseline = peak_rss_mb()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        image = once()
        times.append(time.perf_counter() - started)
    out.update(seconds=min(times), peak_rss_mb=peak_rss_mb(), baseline_rss_mb=baseline, size=list(image.size),
               threads=torch.get_num_threads())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # child process
    args = p.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.repeat)))
        return
    rows = {}
    for variant in VARIANTS:
        done = subprocess.run([sys.executable, __file__, "--variant", variant, "--repeat", str(args.repeat)],
                              capture_output=True, text=True, check=True)
        rows[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{variant:>15}: {rows[variant]['seconds']:.2f} s per 512x512 image, peak RSS "
              f"{rows[variant]['peak_rss_mb']:.0f} MB", flush=True)
    ours = rows["ours"]
    for base in ("plain", "plain, CFG off"):
        print(f"ours / {base}: time {ours['seconds'] / rows[base]['seconds']:.2f}x, "
              f"peak RSS {ours['peak_rss_mb'] / rows[base]['peak_rss_mb']:.2f}x")
    print(f"image-to-image switch (from_pipe): {ours['from_pipe_s'] * 1000:.1f} ms (goal <= 100 ms; the "
          f"process's first call, which also imports the pipeline modules: {ours['from_pipe_first_s'] * 1000:.0f} ms); "
          f"{ours['threads']} torch threads")


if __name__ == "__main__":
    main()
