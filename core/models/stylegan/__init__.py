"""StyleGAN2/StyleGAN3 generators in PyTorch for the files people bring (see `load_style_file`)."""
