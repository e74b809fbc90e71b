"""The UNet of our emoji model, built from diffusers parts, and its training noise schedule."""

from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel

TEXT_DIM = 384  # all-MiniLM-L6-v2 hidden size


def build_unet(resolution: int = 32, channels: tuple[int, ...] = (32, 64, 128), layers_per_block: int = 1,
               ) -> UNet2DConditionModel:
    """A small pixel-space UNet: 3 resolutions (R, R/2, R/4), cross-attention only at R/4 and in the middle.

    Attention at full resolution made a training step several times slower on CPU for no visible
    gain at 32 px (FINDINGS.md); the pooled sentence vector enters through the time embedding.
    """
    return UNet2DConditionModel(
        sample_size=resolution,
        in_channels=3,
        out_channels=3,
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=32,
        class_embed_type="projection",  # adds Linear(pooled text) to the time embedding
        projection_class_embeddings_input_dim=TEXT_DIM,
        norm_num_groups=32,
    )


def training_scheduler() -> DDPMScheduler:
    """1000-step cosine schedule (Nichol & Dhariwal 2021, arXiv:2102.09672) with v-prediction."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                         prediction_type="v_prediction", clip_sample=False)


def sampling_scheduler(train: DDPMScheduler) -> DDIMScheduler:
    """DDIM (Song et al. 2020, arXiv:2010.02502) on the training schedule: the shipped default."""
    return DDIMScheduler.from_config(train.config, timestep_spacing="trailing", set_alpha_to_one=False)
