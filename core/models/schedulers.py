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

    With `steps`, the sampler's timesteps for that many steps are checked first. Karras sigmas (Karras
    et al. 2022, arXiv:2206.00364) become whole timesteps for the UNet, and neighbouring sigmas can share
    one. At the quiet end of SD's scaled-linear schedule that is diffusers' own schedule (..., 2, 1, 1, 0
    at 50 steps, each step with its own sigma), which its multistep solvers run by counting steps. At the
    noisy end, as on a cosine schedule like our emoji model's, the *first* timestep repeats: diffusers
    finds the first step by its timestep, takes the later one, starts a sigma late and steps past the end
    (diffusers issue 12771), so that is refused.

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
        if timesteps.count(timesteps[0]) > 1:
            raise InvalidInput(f"{name} does not suit this model's noise schedule "
                               f"({base_config.get('beta_schedule', 'unknown')}) at {steps} steps: its first "
                               f"{timesteps.count(timesteps[0])} steps fall on one timestep; "
                               f"choose {name.replace(' Karras', '')} or another sampler")
    return scheduler
