"""The default face model, MobileStyleGAN on OpenVINO, through core.generators.faces: seeds, batches,
truncation, style mixing, interpolation paths, GIF and MP4, sizes; and the pieces underneath (the IR
files, the per-layer graph, keyframe paths, video and grid writers), offline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core import InvalidInput, generate_faces, interpolate_faces
from core.build import mobilestylegan as build
from core.catalog import DEFAULT_FACE_MODEL
from core.generators.face_paths import keyframe_positions
from core.imaging import face_detection
from core.imaging.grid import image_grid
from core.imaging.video import save_mp4
from core.models import gans, registry
from core.models.mobilestylegan import MobileStyleGAN
from core.models.style_generator import layer_groups
from core.paths import WEIGHTS_DIR

FOLDER = WEIGHTS_DIR / "faces" / gans.MOBILESTYLEGAN_FOLDER
SMALL = {"size": 256, "truncation_psi": 0.7}
"""Most tests compare faces at 256 px: the net still draws 1024 px, the resize is cheap to compare."""


@pytest.fixture(scope="module", autouse=True)
def ir_files():
    """The IR files must be there: a missing one fails the tests (they are never skipped)."""
    missing = [name for name in build.FILES if not (FOLDER / name).is_file()]
    if missing:
        pytest.fail(f"MobileStyleGAN files {missing} missing; run scripts/setup.sh to copy them from their wheel")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)  # (H, W, 3), 0..255


def face(seed: int, **settings) -> np.ndarray:
    return pixels(generate_faces(count=1, seed=seed, **{**SMALL, **settings}).images[0])


# --- the files and the graph ---------------------------------------------------------------------

def test_ir_files_are_the_wheels_bytes():
    for name, digest in build.FILES.items():
        assert build.sha256(FOLDER / name) == digest, f"{name}: sha256 differs from random-face 2021.7.21.1's"


def test_every_modulation_gets_its_own_style_input():
    net = registry.load(gans.KIND, DEFAULT_FACE_MODEL)
    assert isinstance(net, MobileStyleGAN) and net.resolution == 1024
    assert net.num_layers == 23 and list(net.layer_sides) == sorted(net.layer_sides)
    assert net.layer_sides[0] == 4 and net.layer_sides[-1] == 512  # 4 px up to the 512-px wavelet bands
    assert layer_groups(net.layer_sides) == {"coarse": (0, 3), "middle": (4, 9), "fine": (10, 22)}


def test_mean_style_is_the_same_for_a_fresh_instance():
    first = registry.load(gans.KIND, DEFAULT_FACE_MODEL).mean_style()
    again = MobileStyleGAN(FOLDER).mean_style()
    assert first.shape == (512,) and first.dtype == np.float32
    assert np.array_equal(first, again), "the mean style moved between two loads: it is not seeded"


def test_layer_groups_follow_stylegan2s_split():
    sides = tuple(s for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024) for s in (r, r))  # 1024 px: 18 styles
    assert layer_groups(sides) == {"coarse": (0, 3), "middle": (4, 7), "fine": (8, 17)}
    assert layer_groups((4, 4, 8))["fine"] == (3, 2)  # a group a small net lacks is empty


# --- faces ---------------------------------------------------------------------------------------

def test_default_call_gives_photoreal_1024px_faces(monkeypatch):
    from core import seeds

    monkeypatch.setattr(seeds.secrets, "randbelow", lambda n: 4321)  # the default seed -1, drawn the same each run
    result = generate_faces(count=2)
    assert result.seeds == [4321, 4322] and [im.size for im in result.images] == [(1024, 1024)] * 2
    p = result.parameters
    assert p["model"] == DEFAULT_FACE_MODEL and p["layers"] == 23 and p["size"] == [1024, 1024]
    assert "non-commercial" in p["source"] and p["warnings"] == []
    images = np.stack([pixels(im) for im in result.images]).astype(np.float32) / 255
    assert images.std(axis=(1, 2, 3)).min() > 0.1  # not flat, not noise-free grey
    r, g, b = images[:, 384:640, 384:640].mean(axis=(0, 1, 2))  # the face's centre is skin: R > G > B
    assert r > g > b


def test_a_seed_reproduces_and_face_i_of_a_batch_replays_alone():
    batch = generate_faces(count=3, seed=77, **SMALL)
    assert batch.seeds == [77, 78, 79]
    for i, image in enumerate(batch.images):
        assert np.array_equal(pixels(image), face(77 + i)), f"seed {77 + i}: face {i} of the batch differs alone"
    assert np.abs(pixels(batch.images[0]) - pixels(batch.images[1])).mean() > 10, "seeds 77 and 78 look alike"


def test_psi_zero_gives_the_mean_face_for_any_seed():
    assert np.array_equal(face(1, truncation_psi=0.0), face(99999, truncation_psi=0.0))
    assert not np.array_equal(face(1, truncation_psi=0.5), face(99999, truncation_psi=0.5))


def test_truncation_pulls_faces_together():
    def spread(psi: float) -> float:
        ims = np.stack([pixels(im) for im in generate_faces(count=3, seed=5, size=64, truncation_psi=psi).images])
        return float(ims.std(axis=0).mean())

    assert spread(0.3) < spread(0.7) < spread(1.0)


def test_style_mixing_with_no_layers_is_the_first_face_and_with_all_the_second():
    assert np.array_equal(face(5, mix_seed=9, mix_layers="none"), face(5))
    assert np.array_equal(face(5, mix_seed=9, mix_layers="all"), face(9))
    assert np.array_equal(face(5, mix_seed=9, mix_layers=(0, 22)), face(9))
    coarse = face(5, mix_seed=9, mix_layers="coarse")
    assert not np.array_equal(coarse, face(5)) and not np.array_equal(coarse, face(9))
    # fine layers change colour and texture, not the shape: closer to the first face than coarse mixing is
    fine = face(5, mix_seed=9, mix_layers="fine")
    assert np.abs(fine - face(5)).mean() < np.abs(coarse - face(5)).mean()


def test_style_mixing_reports_the_layers_and_replays_for_each_face_of_a_batch():
    batch = generate_faces(count=2, seed=20, mix_seed=3, mix_layers="4-9", **SMALL)
    assert batch.parameters["mix_seed"] == 3 and batch.parameters["mix_layers"] == [4, 9]
    assert np.array_equal(pixels(batch.images[1]), face(21, mix_seed=3, mix_layers="middle"))


@pytest.mark.parametrize("size", [512, 256])
def test_sizes_are_lanczos_resizes_of_the_1024_face(size):
    full = generate_faces(count=1, seed=8, truncation_psi=0.7).images[0]
    small = generate_faces(count=1, seed=8, truncation_psi=0.7, size=size).images[0]
    assert small.size == (size, size)
    assert np.array_equal(pixels(small), pixels(full.resize((size, size), Image.Resampling.LANCZOS)))


def test_faces_are_found_by_the_face_detector():
    found = [len(face_detection.find_faces(im)) for im in generate_faces(count=4, seed=100, **SMALL).images]
    assert found == [1, 1, 1, 1]


# --- interpolation -------------------------------------------------------------------------------

@pytest.mark.parametrize("space", ["style", "latent"])
def test_interpolation_ends_are_the_two_faces_and_the_video_has_every_frame(tmp_path, space):
    import av

    video = tmp_path / "morph.mp4"
    morph = interpolate_faces(5, 9, frames=5, space=space, video_path=video, fps=10, **SMALL)
    assert morph.parameters["space"] == space and morph.seeds == [5, 9]
    assert np.array_equal(pixels(morph.images[0]), face(5))
    assert np.array_equal(pixels(morph.images[-1]), face(9))
    middle = pixels(morph.images[2])
    assert not np.array_equal(middle, face(5)) and not np.array_equal(middle, face(9))
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(video=0))
        assert stream.average_rate == 10
    assert len(decoded) == 5 and (decoded[0].width, decoded[0].height) == (256, 256)
    # yuv420p is lossy in colour, not in layout: the first frame looks like the first face
    assert np.abs(decoded[0].to_ndarray(format="rgb24").astype(np.int16) - face(5)).mean() < 6


def test_several_seeds_are_each_a_keyframe_and_a_loop_comes_back(tmp_path):
    morph = interpolate_faces(5, 9, 11, frames=7, loop=True, gif_path=tmp_path / "a.gif", **SMALL)
    assert morph.seeds == [5, 9, 11] and len(morph.images) == 7
    keys = [i for i, (a, b, t) in enumerate(keyframe_positions(3, 7, loop=True)) if t == 0.0]
    assert keys == [0, 3, 5]  # 7 frames over 3 segments: 3, 2, 2
    for index, seed in zip(keys, (5, 9, 11)):
        assert np.array_equal(pixels(morph.images[index]), face(seed)), f"seed {seed} is not frame {index}"
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 7 and gif.info.get("loop") == 0  # plays forever
    once = interpolate_faces(5, 9, frames=2, gif_path=tmp_path / "b.gif", **SMALL)
    with Image.open(once.parameters["gif_path"]) as gif:
        assert "loop" not in gif.info  # no NETSCAPE block: plays once


def test_keyframe_positions_share_frames_and_hit_every_key():
    assert keyframe_positions(2, 5, loop=False) == [(0, 1, 0.0), (0, 1, 0.25), (0, 1, 0.5), (0, 1, 0.75), (0, 1, 1.0)]
    looped = keyframe_positions(2, 4, loop=True)
    assert looped == [(0, 1, 0.0), (0, 1, 0.5), (1, 0, 0.0), (1, 0, 0.5)]
    with pytest.raises(InvalidInput, match="at least the number of seeds"):
        keyframe_positions(3, 2, loop=False)


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: generate_faces(count=1, size=2048), "size must be one of"),
    (lambda: generate_faces(count=1, size=True), "size must be one of"),
    (lambda: generate_faces(count=1, truncation_psi=-0.1), "truncation_psi must be 0.0..1.0"),
    (lambda: generate_faces(count=1, mix_seed=1, mix_layers="40-70"), "within 0..22"),
    (lambda: generate_faces(count=1, mix_seed=1, mix_layers="3-1"), "within 0..22"),
    (lambda: generate_faces(count=1, mix_seed=1, mix_layers="eyes"), "mix_layers must be coarse"),
    (lambda: generate_faces(count=1, mix_seed=1, mix_layers=[1, 2, 3]), "mix_layers must be coarse"),
    (lambda: generate_faces(count=1, mix_seed=-7), "mix_seed must be -1"),
    (lambda: interpolate_faces(1, 2, fps=0), "fps must be 1.0..60.0"),
    (lambda: interpolate_faces(1, 2, fps=float("nan")), "fps"),
    (lambda: interpolate_faces(1, 2, space="pixel"), "space must be 'style' or 'latent'"),
    (lambda: interpolate_faces(1, 2, loop="yes"), "loop must be True or False"),
    (lambda: interpolate_faces(1, 2, 3, frames=2), "at least the number of seeds"),
    (lambda: interpolate_faces(*range(17)), "at most 16 seeds"),
    (lambda: interpolate_faces(1, 2, video_path="/no/such/folder/x.mp4"), "video_path"),
])
def test_bad_inputs_raise_invalid_input(call, match):
    with pytest.raises(InvalidInput, match=match):
        call()


# --- writers -------------------------------------------------------------------------------------

def test_mp4_refuses_odd_sides_and_mixed_sizes(tmp_path):
    with pytest.raises(InvalidInput, match="even sides"):
        save_mp4([Image.new("RGB", (33, 32))], tmp_path / "x.mp4", fps=5)
    with pytest.raises(InvalidInput, match="same size"):
        save_mp4([Image.new("RGB", (32, 32)), Image.new("RGB", (64, 64))], tmp_path / "x.mp4", fps=5)


def test_grid_lays_faces_out_row_by_row():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    grid = image_grid([Image.new("RGB", (10, 10), c) for c in colours])
    assert grid.size == (20, 20)  # ceil(sqrt(3)) = 2 columns, 2 rows
    assert [grid.getpixel(xy) for xy in ((5, 5), (15, 5), (5, 15), (15, 15))] == [*colours, (0, 0, 0)]
