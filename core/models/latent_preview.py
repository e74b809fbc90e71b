"""Cheap previews while a diffusion model works: a picture from what the sampler holds, without the VAE.

- Latent models (Stable Diffusion 1.x, 2.x, SDXL): a linear map from the 4 latent channels to RGB,
  one 4x3 matrix applied per latent pixel (8x8 image pixels). The factors are Keturn's, fitted on
  SD 1.x latents and published in "Decoding latents to RGB without upscaling" (Hugging Face forum,
  2022, discuss.huggingface.co/t/decoding-latents-to-rgb-without-upscaling/23204); SD 2.x uses the
  same VAE, and SDXL's VAE has the same layout, so the colours are close there too (not exact).
- The pixel-space emoji model: its own prediction of the clean picture (the sampler's
  `pred_original_sample`, core.models.emoji_pipeline), already in [-1, 1].

Each preview is the size of the latent (1/8 of the picture's side for Stable Diffusion), made on the
device and moved to the CPU once. Importing this module loads no torch.
"""

from __future__ import annotations

from PIL import Image

LATENT_RGB = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
"""Rows: latent channels 0..3; columns: R, G, B contributions, giving RGB in about [-1, 1] from the
latents as the UNet sees them (scaled by the VAE's scaling factor). Source: see the module docstring."""


def latents_to_rgb(latents) -> list[Image.Image]:
    """Preview pictures of Stable Diffusion latents.

    Args:
        latents: torch float `(N, 4, h, w)`, the UNet's latent space (x_t during sampling).

    Returns:
        N RGB PIL images of w x h px.

    Raises:
        ValueError: `latents` does not have 4 channels.
    """
    import torch

    if latents.ndim != 4 or latents.shape[1] != len(LATENT_RGB):
        raise ValueError(f"latents must be (N, 4, h, w), got {tuple(latents.shape)}")
    factors = torch.tensor(LATENT_RGB, dtype=torch.float32, device=latents.device)  # (4, 3)
    rgb = torch.einsum("nchw,cr->nrhw", latents.float(), factors)  # (N, 3, h, w) in about [-1, 1]
    return pixels_to_rgb(rgb)


def pixels_to_rgb(pixels) -> list[Image.Image]:
    """Pictures from float `(N, 3, h, w)` in [-1, 1] (clipped): N RGB PIL images."""
    from core.imaging.io import to_pil

    return to_pil(((pixels.float() + 1.0) / 2.0).clamp(0, 1).cpu())
