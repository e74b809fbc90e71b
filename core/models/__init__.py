"""Loading models and keeping them: the registry with its memory-bounded cache, the user's model
files, devices, and one module per model kind (diffusion, GAN, upscalers, face restorers).

Nothing here makes a picture on its own: the generators (core.generators) call these loaders and
run the nets. Importing this package loads no torch; each module imports what it needs.
"""
