"""The inpainting pipeline of a loaded diffusion model: built once with `from_pipe` from its text-to-image
pipeline (every module shared, so nothing loads again; LoRAs on the model act on it too) and kept for as
long as the model stays loaded.

- Stable Diffusion 1.x/2.x and SDXL: diffusers' StableDiffusionInpaintPipeline and
  StableDiffusionXLInpaintPipeline (AutoPipelineForInpainting's choices for them), with masked_content
  "noise" added (`NoiseFill`). They take both kinds of UNet: a 9-channel inpainting UNet (an SD
  inpainting checkpoint: the noisy latents, the mask and the masked picture's latents go in) and an
  ordinary 4-channel one (after every step the known latents, noised to the next timestep, are blended
  back outside the mask). We never pass `padding_mask_crop`: core.imaging.masks crops "only masked" for
  every model alike.
- The emoji model: core.models.emoji_pipeline.EmojiInpaintPipeline (the same blend in pixel space).
- Other diffusers families: AutoPipelineForInpainting.from_pipe where diffusers has one (no "noise").

Sources: diffusers `pipelines/stable_diffusion/pipeline_stable_diffusion_inpaint.py` and
`pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl_inpaint.py`; RePaint (Lugmayr et al. 2022,
arXiv:2201.09865) for the blend; AUTOMATIC1111's "latent noise" masked content.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import torch
from diffusers import (
    AutoPipelineForInpainting,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.utils.torch_utils import randn_tensor

from core.errors import InvalidInput
from core.models.diffusion import DiffusionModel
from core.models.emoji_pipeline import EmojiInpaintPipeline, EmojiPipeline

_PIPES: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
"""A model's text-to-image pipeline -> its inpainting pipeline (gone when the model leaves the cache)."""
_LOCK = threading.Lock()


class NoiseFill:
    """Adds `masked_content` to diffusers' Stable Diffusion inpainting pipelines (mixed in before them).

    "original": the pipeline as it is (SDEdit from the picture's latents at `strength`). "noise": the
    masked latent pixels start from standard normal noise drawn from each image's own generator (as
    AUTOMATIC1111's "latent noise"), then the pipeline noises that start to `strength` as usual: at
    strength 1 this is the pipeline's own pure-noise start, below it the masked area keeps nothing of the
    picture. The picture and the masked picture (zero under the mask) are encoded here with the
    pipeline's own `_encode_vae_image` and handed over as latents (`image`, `masked_image_latents`),
    which diffusers takes as they are.
    """

    @torch.no_grad()
    def __call__(self, *args: Any, masked_content: str = "original", **kwargs: Any) -> Any:
        if masked_content == "noise":
            kwargs.update(self._noise_start(kwargs["image"], kwargs["mask_image"], kwargs.get("height"),
                                            kwargs.get("width"), kwargs.get("generator")))
        elif masked_content != "original":
            raise ValueError(f"masked_content must be 'original' or 'noise', got {masked_content!r}")
        return super().__call__(*args, **kwargs)

    def _noise_start(self, image, mask_image, height: int | None, width: int | None, generator) -> dict[str, Any]:
        """{"image": start latents `(N, 4, H/f, W/f)` with the masked cells replaced by noise,
        "masked_image_latents": the latents of the picture zeroed under the mask} (f = vae_scale_factor)."""
        device, dtype = self._execution_device, self.vae.dtype
        pixels = self.image_processor.preprocess(image, height=height, width=width).to(device, dtype)  # [-1, 1]
        painted = self.mask_processor.preprocess(mask_image, height=height, width=width).to(device, dtype)  # 0/1
        latents = self._encode_vae_image(pixels, generator=generator)
        kept = self._encode_vae_image(pixels * (painted < 0.5), generator=generator)
        cells = torch.nn.functional.interpolate(painted, size=latents.shape[-2:]).to(latents.dtype)  # as diffusers
        noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=latents.dtype)
        return {"image": torch.lerp(latents, noise, cells), "masked_image_latents": kept}


class Inpaint(NoiseFill, StableDiffusionInpaintPipeline):
    """diffusers' StableDiffusionInpaintPipeline (SD 1.x, 2.x; 4- or 9-channel UNet) with masked_content."""


class InpaintXL(NoiseFill, StableDiffusionXLInpaintPipeline):
    """diffusers' StableDiffusionXLInpaintPipeline (4- or 9-channel UNet) with masked_content."""


def pipeline(m: DiffusionModel) -> Any:
    """The inpainting pipeline of `m`, built on first use (see the module docstring).

    Its call takes prompt, negative_prompt (or embeddings), image (RGB PIL list, width x height),
    mask_image ("L" PIL list, white = redraw), strength, height, width, generator, num_inference_steps,
    guidance_scale, callback_on_step_end, output_type, and masked_content where `takes_noise(pipe)`.

    Raises:
        InvalidInput: a model for which diffusers has no inpainting pipeline (the message names it).
    """
    with _LOCK:
        pipe = _PIPES.get(m.text_to_image)
        if pipe is None:
            pipe = _PIPES[m.text_to_image] = _build(m)
    return pipe


def _build(m: DiffusionModel) -> Any:
    """The pipeline, in the model's own precision: a pipeline class's from_pipe casts every module it shares
    to `dtype` (float32 unless told), which would cast the model's text-to-image pipeline too."""
    t2i = m.text_to_image
    dtype = t2i.unet.dtype
    if isinstance(t2i, EmojiPipeline):
        return EmojiInpaintPipeline.from_pipe(t2i, dtype=dtype)
    if isinstance(t2i, StableDiffusionXLPipeline):
        return InpaintXL.from_pipe(t2i, dtype=dtype)
    if isinstance(t2i, StableDiffusionPipeline):
        return Inpaint.from_pipe(t2i, dtype=dtype)
    try:
        return AutoPipelineForInpainting.from_pipe(t2i)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{m.label} ({type(t2i).__name__}) has no inpainting pipeline in diffusers; choose a "
                           "Stable Diffusion model or the emoji model") from None


def takes_noise(pipe: Any) -> bool:
    """Whether `pipe` takes masked_content="noise" (ours and the emoji model's, not other families')."""
    return isinstance(pipe, (NoiseFill, EmojiInpaintPipeline))


def needs_mask(m: DiffusionModel) -> bool:
    """Whether `m` is an SD inpainting checkpoint: a UNet that takes the mask and the masked picture's
    latents besides the noisy latents (9 input channels), so it runs only in an inpainting pipeline."""
    unet = getattr(m.text_to_image, "unet", None)
    return m.has_vae and unet is not None and unet.config.in_channels == 9


def cell(m: DiffusionModel) -> int:
    """The side in px of one latent pixel (the VAE's downsampling, 8 for SD; 4 for the tiny test models),
    1 for a pixel-space model: the mask the model gets is grown to whole cells."""
    return int(getattr(m.text_to_image, "vae_scale_factor", 1)) if m.has_vae else 1
