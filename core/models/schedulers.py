"""Sampler names users know (AUTOMATIC1111 / ComfyUI spelling) -> diffusers scheduler classes.

Every scheduler is built `from_config` of the model's own, so it inherits the model's noise
schedule and prediction type (epsilon or v); only the sampler's own options change.
"""

from __future__ import annotations

from typing import Any

from core.catalog import SAMPLERS
from core.checks import check_name, shown
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


def check(name: object) -> str:
    """Return `name` if it is one of SCHEDULERS, else raise InvalidInput naming `scheduler` (a name that
    is no name, e.g. with control characters or 100,000 characters long, is refused as such first)."""
    if not isinstance(name, str) or check_name("scheduler", name) not in SCHEDULERS:
        raise InvalidInput(f"scheduler must be one of {', '.join(SCHEDULERS)}; got {shown(name)}")
    return name


def max_steps(name: str, base_config: dict[str, Any]) -> int:
    """The most steps sampler `name` can run on the noise schedule of `base_config`: its training
    timesteps, and for LCM the `original_inference_steps` (50) of the distillation schedule its steps
    are picked from (Luo et al. 2023, arXiv:2310.04378).

    Raises:
        InvalidInput: `name` is not one of SCHEDULERS.
    """
    config = make_scheduler(name, base_config).config
    limit = config.num_train_timesteps
    return min(limit, config.get("original_inference_steps") or limit)


def make_scheduler(name: str, base_config: dict[str, Any], steps: int | None = None):
    """A new scheduler of the named kind on the noise schedule of `base_config` (a scheduler's `.config`).

    With `steps`, the sampler's timesteps for that many steps are checked first: Karras sigmas
    (Karras et al. 2022, arXiv:2206.00364) on a cosine noise schedule, like our emoji model's,
    bunch up at the noisy end and repeat timesteps, which diffusers' multistep solvers cannot run.

    Raises:
        InvalidInput: `name` is not one of SCHEDULERS (see `check`), or it cannot take `steps` steps on this
            schedule.
    """
    import diffusers

    check(name)
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
