"""The training command: a few steps on a tiny folder write a loadable, reproducible model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from core.errors import InvalidInput
from core.models.emoji_pipeline import EmojiPipeline
from core.training import data, train

TINY = ["--resolution", "16", "--channels", "32", "32", "32", "--batch-size", "4", "--eval-every", "1",
        "--val-fraction", "0.2", "--warmup", "2", "--seed", "3"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Ten 24-px pictures of coloured shapes on transparency, with captions."""
    root = tmp_path_factory.mktemp("shapes")
    lines = []
    for i, (colour, shape) in enumerate([(c, s) for c in ("red", "green", "blue", "gold", "black")
                                         for s in ("circle", "square")]):
        img = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        (draw.ellipse if shape == "circle" else draw.rectangle)((4, 4, 19, 19), fill=colour)
        img.save(root / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "text": f"{colour} {shape}"}))
    (root / "metadata.jsonl").write_text("\n".join(lines))
    return root


def test_load_folder_and_split(folder):
    loaded = data.load_folder(folder, 16)
    assert loaded.images.shape == (10, 3, 16, 16)
    assert loaded.images.min() >= -1 and loaded.images.max() <= 1
    assert loaded.images[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]  # transparency became white
    train_set, val_set = data.split(loaded, 0.2, seed=0)
    assert len(train_set.captions) == 8 and len(val_set.captions) == 2
    assert not set(train_set.captions) & set(val_set.captions)
    assert data.split(loaded, 0.2, seed=0)[1].captions == val_set.captions


def test_bad_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInput, match="metadata.jsonl"):
        data.load_folder(tmp_path, 16)


def test_train_writes_a_loadable_pipeline_and_resumes(folder, tmp_path):
    out = tmp_path / "run"
    train.main([str(folder), str(out), "--steps", "4", "--checkpoint-every", "2", *TINY])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [2, 4] and all(entry["val_loss"] > 0 for entry in log)
    assert (out / "samples" / "step_000004.png").is_file()
    pipe = EmojiPipeline.from_pretrained(out / "pipeline")
    gens = [torch.Generator().manual_seed(0)]
    image = pipe(["red circle"], generator=gens, num_inference_steps=2, height=16, width=16).images
    assert image.shape == (1, 3, 16, 16) and 0 <= image.min() and image.max() <= 1

    train.main([str(folder), str(out), "--steps", "6", "--resume", *TINY])
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 6

    # a new run can start from the written pipeline's weights
    again = tmp_path / "again"
    train.main([str(folder), str(again), "--steps", "1", "--init-from", str(out / "pipeline"), *TINY])
    first = torch.load(again / "checkpoints" / "last.pt", weights_only=True)["unet"]
    start = pipe.unet.state_dict()
    assert first.keys() == start.keys()
    assert max((first[k] - start[k].float()).abs().max().item() for k in first) < 0.01  # one small step away


def test_same_seed_same_weights(folder, tmp_path):
    runs = []
    for name in ("a", "b"):
        train.main([str(folder), str(tmp_path / name), "--steps", "3", *TINY])
        runs.append(train.unet_from_checkpoint(tmp_path / name / "checkpoints" / "last.pt").state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
