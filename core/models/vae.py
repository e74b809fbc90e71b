"""Turning a latent-space model's output into pixels: VAE decode (with the fp16 NaN fallback and tiling
for large images) and the model's own safety checker, when it ships one.

Source: diffusers' StableDiffusionPipeline / StableDiffusionXLPipeline decode step (scaling factor,
shift factor, latents mean and std, fp16 upcast), Apache-2.0; done here so a NaN is retried in fp32 and
reported, not shown black (the fallback every generator shares: core.models.output_checks).
"""

from __future__ import annotations

import torch

from core.models.diffusion import DiffusionModel
from core.models.output_checks import bad_values, redo_in_float32, to_float32

TILE_VAE_ABOVE = 1024 * 1024
"""Images with more pixels than this are decoded with VAE tiling."""


def set_vae_tiling(model: DiffusionModel, width: int, height: int) -> bool:
    """Switch VAE tiling on for images over TILE_VAE_ABOVE px, off otherwise; returns whether it is on."""
    if not model.has_vae:
        return False
    vae = model.text_to_image.vae
    tiled = width * height > TILE_VAE_ABOVE
    vae.enable_tiling() if tiled else vae.disable_tiling()
    return tiled


def decode(model: DiffusionModel, latents: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Decode latents `(N, C, h, w)` to pixels `(N, 3, 8h, 8w)` in [0, 1]; returns (pixels, upcast).

    The latents are unscaled as diffusers' pipelines do (`unscale`): with the VAE's own
    `latents_mean`/`latents_std` when its config has them (SDXL-architecture VAEs such as Playground's),
    else by its scaling and shift factors.

    A half-precision VAE can overflow to NaN (SDXL's VAE in fp16 famously does); then this decode is
    redone in float32 (upcast = True), never a black image (core.models.output_checks.redo_in_float32).
    The float32 copy lasts for this decode only: the VAE goes back to its own precision afterwards, as
    diffusers does after its `force_upcast` decode, so one bad request does not slow every later one.

    Raises:
        ModelError: the decode gives NaN/inf even in float32.
    """
    vae = model.text_to_image.vae
    own = vae.dtype
    if model.family == "sdxl" and own == torch.float16 and getattr(vae.config, "force_upcast", False):
        vae.to(torch.float32)  # SDXL's own VAE overflows in fp16 (diffusers upcasts it too); SD 1.x/2.x's do not
    # The latents stay where the pipeline made them: under model CPU offload the VAE rests on
    # the CPU and its hook moves it to the latents' device for the decode.
    scaled = unscale(vae.config, latents)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return vae.decode(scaled.to(dtype=vae.dtype), return_dict=False)[0]

    try:
        pixels, warning = redo_in_float32(run, bad_values, lambda: to_float32([vae]),
                                          what=f"the VAE of {model.label}",
                                          advice="try more steps, another sampler or a lower guidance scale")
    finally:
        if vae.dtype != own:
            vae.to(own)  # back to its own precision: the float32 copy was for this decode only
    return (pixels.float() / 2 + 0.5).clamp(0, 1), warning is not None


def unscale(config, latents: torch.Tensor) -> torch.Tensor:
    """The denoiser's latents `(N, C, h, w)` -> what the VAE decoder takes, as diffusers' pipelines do.

    With `latents_mean` and `latents_std` (C values each) in the VAE config: latents * std / scaling_factor
    + mean (StableDiffusionXLPipeline's decode step); else latents / scaling_factor + shift_factor (0 when
    unset).
    """
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        shape = (1, -1, 1, 1)
        mean = torch.tensor(mean).view(shape).to(latents.device, latents.dtype)
        std = torch.tensor(std).view(shape).to(latents.device, latents.dtype)
        return latents * std / config.scaling_factor + mean
    return latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)


def safety_check(model: DiffusionModel, pixels: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Run the model's own safety checker if it ships one (SD 1.x repos do); returns (pixels, flagged).

    Flagged images come back black, as diffusers makes them; their indices are returned so the UI
    can say so instead of showing an unexplained black square.
    """
    pipe = model.text_to_image
    if getattr(pipe, "safety_checker", None) is None:
        return pixels, []
    checked, flags = pipe.run_safety_checker(pixels.permute(0, 2, 3, 1).cpu().numpy(), pipe.device, pixels.dtype)
    flagged = [i for i, flag in enumerate(flags or []) if flag]
    return torch.from_numpy(checked).permute(0, 3, 1, 2), flagged


