"""Face generation tab: photoreal faces from a style-based GAN, style mixing, and interpolation videos.

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
from core.imaging.grid import image_grid
from demos import host, inputs, limits, serving, ui

EXAMPLES = [[4, 42, 0.7], [8, 2024, 0.5], [4, 7, 1.0]]
"""Rows (count, seed, psi); the host's seeds ([faces] examples, $IMAGEGEN_EXAMPLES_FACES) replace them,
each as (4, seed, 0.7)."""
"""(number of faces, seed, truncation psi) rows to try."""
SIZES = [("the model's own", 0), ("1024 px", 1024), ("512 px", 512), ("256 px", 256)]
MIX_LAYERS = ["none", "coarse", "middle", "fine", "all"]

LICENCE_NOTE = (
    "<small>**Default model**: MobileStyleGAN (Belousov 2021), distilled from NVIDIA's StyleGAN2 trained on "
    "FFHQ, whose model and data terms allow **non-commercial** use only; IR files from PyPI `random-face` "
    "2021.7.21.1 (code Apache-2.0). **dcgan-digiface-64**: weights MIT (PyPI `gan-face-generate` 1.1.1), "
    "trained on DigiFace-1M, synthetic faces for **non-commercial research** use. The faces shown are made "
    "up by the model, not photographs of real people; do not present them as real. Sources: "
    "weights/README.md.</small>"
)


def generate(count: int, seed: int, truncation_psi: float, upscale: bool, face_restoration: str = "",
             face_weight: float = 1.0, model: str = catalog.DEFAULT_FACE_MODEL, size: int = 0,
             mix_seed: int = -1, mix_layers: str = "none", grid: bool = False, request: gr.Request = None,
             progress=gr.Progress()):
    """Make random faces with a GAN, each reproducible from its own seed.

    Args:
        count: number of faces, 1..64.
        seed: -1 for random, else 0..4294967295; face i uses seed + i.
        truncation_psi: 0..1; lower gives more typical, less varied faces (0: the mean face).
        upscale: enlarge each face x4 with the default upscaler.
        face_restoration: a face-restoration file in the models folder (GFPGAN, RestoreFormer, ...)
            to redraw each face at 512 px; "" for none.
        face_weight: 0..1, how much of the restored face to keep.
        model: a face model of the list (the default: MobileStyleGAN, 1024 px) or a StyleGAN2/3 file
            in the models folder.
        size: output side in px (1024, 512 or 256, Lanczos), or 0 for the model's own.
        mix_seed: the seed whose styles the chosen layers take (-1 for random).
        mix_layers: "none" (no mixing), "coarse", "middle", "fine", "all", or a layer range "4-7".
        grid: also return the batch as one grid picture.

    Returns:
        The faces (with their seeds as captions), the seeds used, the parameters applied, and the
        grid picture (None unless asked).
    """
    limits.check("count", count, "images")
    mixing = {} if mix_layers in ("", "none", None) else {"mix_seed": mix_seed, "mix_layers": mix_layers}
    result = ui.call(core.generate_faces, count=count, seed=seed, truncation_psi=truncation_psi, upscale=upscale,
                     face_restoration=face_restoration or None, face_weight=face_weight, model=model or None,
                     size=size or None, **mixing, progress=progress, unit="faces")
    shown = ui.show_files(result, "face")
    return *shown, ui.png_file(image_grid(result.images), shown[2], "faces-grid") if grid else None


def interpolate(seed_a: int, seed_b: int, frames: int, truncation_psi: float, upscale: bool,
                face_restoration: str = "", face_weight: float = 1.0, more_seeds: str = "", fps: float = 12,
                loop: bool = False, space: str = "", model: str = catalog.DEFAULT_FACE_MODEL, size: int = 256,
                request: gr.Request = None, progress=gr.Progress()):
    """Morph the face of `seed_a` into that of `seed_b`, and on through `more_seeds`: frames, GIF, MP4.

    Args:
        seed_a: the first face's seed (-1 for random).
        seed_b: the second face's seed (-1 for random).
        frames: total pictures, each seed's face included, 2..120.
        truncation_psi: 0..1, as for generating faces.
        upscale: enlarge each frame x4.
        face_restoration: a face-restoration file in the models folder; "" for none.
        face_weight: 0..1, how much of the restored face to keep.
        more_seeds: further seeds to pass through, e.g. "9, 10" (up to 16 seeds in all).
        fps: frames per second of the GIF and the video, 1..60.
        loop: go back to the first face at the end (a seamless loop; the GIF repeats forever).
        space: "style" (linear in style space), "latent" (spherical in latent space), "" for the
            model's own choice (style for style-based models).
        model: the face model, as for generating faces.
        size: output side in px (1024, 512 or 256), or 0 for the model's own.

    Returns:
        The frames, the animated GIF, the MP4 video, the seeds, and the parameters applied. Each frame's
        PNG carries those parameters and its place, "frame" (1..frames).
    """
    limits.check("frames", frames, "frames")
    more = _seeds(more_seeds)
    result = ui.call(core.interpolate_faces, seed_a, seed_b, *more, frames=frames, fps=fps, loop=loop,
                     space=space or None, model=model or None, truncation_psi=truncation_psi, size=size or None,
                     upscale=upscale, face_restoration=face_restoration or None, face_weight=face_weight,
                     gif_path=ui.new_path(".gif", "faces-morph"), video_path=ui.new_path(".mp4", "faces-morph"),
                     progress=progress, unit="frames")
    items, seeds, parameters = ui.show(result)
    shown = {k: v for k, v in parameters.items() if k not in ("gif_path", "video_path")}  # server paths
    frames_shown = [(ui.png_file(image, {**shown, "frame": i + 1}, "faces-frame"), caption)  # frame 1..frames
                    for i, (image, caption) in enumerate(items)]
    return frames_shown, parameters["gif_path"], parameters["video_path"], seeds, shown


def _seeds(text: str) -> list[int]:
    """Seeds typed as "9, 10 11" -> [9, 10, 11]; gr.Error naming the field otherwise."""
    text = (text or "").replace(",", " ").split()
    if 2 + len(text) > catalog.MAX_KEYFRAMES:
        raise gr.Error(f"More seeds: at most {catalog.MAX_KEYFRAMES} seeds in all, Seed A and Seed B included; "
                       f"got {len(text)} more")
    try:
        return [int(word) for word in text]
    except ValueError:
        raise gr.Error("More seeds: write whole numbers separated by commas or spaces, e.g. 9, 10") from None


def _models(choices: host.TabChoices):
    return gr.Dropdown(choices=host.listed(catalog.face_models(), choices))


def build() -> gr.Blocks:
    """The faces tab; its events are the API endpoints /generate_faces (no input required) and
    /interpolate_faces. `tab.sends` lists its send-to buttons for app.py to wire."""
    choices = host.load()["faces"]
    with gr.Blocks(title="Face generation") as tab:
        with gr.Row():
            with gr.Column():
                with gr.Row():
                    model = gr.Dropdown(host.listed([catalog.DEFAULT_FACE_MODEL, catalog.DCGAN_FACE_MODEL], choices),
                                        value=choices.default_model, label="Face model", scale=4,
                                        allow_custom_value=True,  # API calls may name a file added since launch
                                        info="StyleGAN2/StyleGAN3 files in the models folder are listed too")
                    ui.refresh_button(model, lambda: _models(choices))
                count = inputs.slider(1, min(catalog.MAX_FACES, limits.current().images), value=4, step=1,
                                      label="Number of faces", limit="images")
                seed = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed",
                                     info="-1 = random; face i uses seed + i")
                psi = inputs.slider(0.0, 1.0, value=0.7, step=0.05, label="Truncation psi",
                                    info="lower = more typical faces, 0 = the mean face; 1 = the model untouched")
                size = inputs.radio(SIZES, value=0, label="Output size", info="resized with Lanczos")
                with gr.Accordion("Style mixing", open=False):
                    mix_layers = gr.Dropdown(MIX_LAYERS, value="none", label="Layers taken from the mix seed",
                                             allow_custom_value=True,
                                             info="coarse: pose, face shape, hair; middle: features, expression; "
                                                  "fine: colours, skin; or a range such as 4-7")
                    mix_seed = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED,
                                             label="Mix seed", info="-1 = random")
                grid = gr.Checkbox(value=False, label="Grid of the batch", info="one picture of all the faces")
                upscale = gr.Checkbox(value=False, label="Upscale x4",
                                      info="for the 64-px DCGAN: 256 px (face restoration, below, makes 512 px)")
                restorer, weight = ui.face_restoration_controls("each face is redrawn whole at 512 px")
                go, stop = ui.run_buttons("Generate")
                gr.Examples([[4, seed, 0.7] for seed in choices.examples] if choices.examples else EXAMPLES,
                            [count, seed, psi], label="Seeds to try")
            with gr.Column():
                status = ui.status_line()
                gallery, seeds, parameters = ui.result_panel("Faces")
                sends = ui.send_buttons(gallery, "super_resolution", "image_to_image", "png_info")
                grid_image = gr.Image(label="Grid of the batch", type="filepath", height=320)
        gr.Markdown("### Interpolate\nMorph one face into another and on through more seeds: take seeds from "
                    "*Seeds used* above. The model, truncation and face restoration above apply.")
        with gr.Row():
            with gr.Column():
                seed_a = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed A",
                                       info="-1 = random")
                seed_b = inputs.number(value=-1, precision=0, minimum=-1, maximum=catalog.MAX_SEED, label="Seed B",
                                       info="-1 = random")
                more_seeds = gr.Textbox(value="", label="More seeds", placeholder="e.g. 9, 10", max_length=400,
                                        info=f"passed through in order (up to {catalog.MAX_KEYFRAMES} seeds in all)")
                frames = inputs.slider(2, min(catalog.MAX_FRAMES, limits.current().frames), value=16, step=1,
                                       label="Frames", limit="frames", info="in all, each seed's face included")
                fps = inputs.slider(*catalog.FPS_RANGE, value=12, step=1, label="Frames per second")
                loop = gr.Checkbox(value=False, label="Loop", info="end back on the first face; the GIF repeats")
                space = inputs.radio([("model's own", ""), ("style (linear)", "style"), ("latent (slerp)", "latent")],
                                     value="", label="Path through")
                morph_size = inputs.radio(SIZES, value=256, label="Frame size")
                morph, morph_stop = ui.run_buttons("Interpolate")
            with gr.Column():
                morph_status = ui.status_line()
                video = gr.Video(label="Video (MP4)", height=320, loop=True, autoplay=True)
                gif = gr.Image(label="Animation (GIF)", type="filepath", height=256)
                morph_gallery, morph_seeds, morph_parameters = ui.result_panel("Frames")
        gr.Markdown(LICENCE_NOTE)

        faces = go.click(serving.guarded(generate),
                         [count, seed, psi, upscale, restorer, weight, model, size, mix_seed, mix_layers, grid],
                         [gallery, seeds, parameters, grid_image], api_name="generate_faces",
                         show_progress_on=status, **ui.GENERATOR)
        morphing = morph.click(serving.guarded(interpolate),
                               [seed_a, seed_b, frames, psi, upscale, restorer, weight, more_seeds, fps, loop,
                                space, model, morph_size],
                               [morph_gallery, gif, video, morph_seeds, morph_parameters],
                               api_name="interpolate_faces", show_progress_on=morph_status, **ui.GENERATOR)
        ui.stops(stop, faces)
        ui.stops(morph_stop, morphing)
    tab.sends = sends
    return tab


if __name__ == "__main__":
    build().launch()
