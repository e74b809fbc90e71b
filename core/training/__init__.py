"""Training our own models: the emoji diffusion model (`python -m core.training.train --help`)."""
