"""Sampler names users know (AUTOMATIC1111 / ComfyUI spelling) -> diffusers scheduler classes.

Every scheduler is built `from_config` of the model's own, so it inherits the model's noise
schedule and prediction type (epsilon or v); only the sampler's own options change.
"""

from __future__ import annotations

from typing import Any

from core.catalog import SAMPLERS
from core.errors import InvalidInput

# name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "DDIM": ("DDIMScheduler", {"timestep_spacing": "trailing", "set_alpha_to_one": False}),
    "Euler": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"timestep_spacing": "trailing"}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "UniPC": ("UniPCMultistepScheduler", {"timestep_spacing": "trailing"}),
    "LCM": ("LCMScheduler", {"timestep_spacing": "trailing"}),
}
if tuple(SCHEDULERS) != SAMPLERS:  # the catalogue lists exactly what this table maps
    raise ImportError("core.catalog.SAMPLERS and core.models.schedulers.SCHEDULERS differ")


def make_scheduler(name: str, base_config: dict[str, Any], steps: int | None = None):
    """A new scheduler of the named kind on the noise schedule of `base_config` (a scheduler's `.config`).

    With `steps`, the sampler's timesteps for that many steps are checked first: Karras sigmas
    (Karras et al. 2022, arXiv:2206.00364) on a cosine noise schedule, like our emoji model's,
    bunch up at the noisy end and repeat timesteps, which diffusers' multistep solvers cannot run.

    Raises:
        InvalidInput: `name` is not one of SCHEDULERS, or it cannot take `steps` steps on this schedule.
    """
    import diffusers

    if name not in SCHEDULERS:
        raise InvalidInput(f"scheduler must be one of {', '.join(SCHEDULERS)}; got {name!r}")
    class_name, overrides = SCHEDULERS[name]
    scheduler = getattr(diffusers, class_name).from_config(base_config, **overrides)
    if steps is not None and overrides.get("use_karras_sigmas"):
        scheduler.set_timesteps(steps)
        timesteps = scheduler.timesteps.tolist()
        if len(set(timesteps)) < len(timesteps):
            raise InvalidInput(f"{name} does not suit this model's noise schedule "
                               f"({base_config.get('beta_schedule', 'unknown')}): its steps repeat; "
                               f"choose {name.replace(' Karras', '')} or another sampler")
    return scheduler
