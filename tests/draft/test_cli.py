"""End to end on the tiny presets: train a pipeline, fine-tune its LoRA with each method, sample
with the adapter scaled."""

import json

import numpy as np
import pytest
from PIL import Image

from discern.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("DISCERN_RUNS", str(root))
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("bag", "sneaker"):
        (folder / name).mkdir()
        for k in range(3):
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / name / f"{k}.png")
    import io
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["diffusion", "train", "--preset", "tiny", "--images", str(folder)]) == 0
    yield json.loads(buf.getvalue())["pipeline"], root
    mp.undo()


@pytest.mark.parametrize("method", ["lv", "k", "full", "refl", "ddpo"])
def test_draft_train_tiny_every_method(model, method, capsys, monkeypatch):
    pipe, root = model
    monkeypatch.setenv("DISCERN_RUNS", str(root))
    assert main(["draft", "train", "--preset", "tiny", "--model", pipe, "--reward", "contrast",
                 "--method", method]) == 0
    out = json.loads(capsys.readouterr().out)
    hist = json.loads(open(f"{out['run']}/history.json").read())
    assert [h["update"] for h in hist] == [0, 1, 2]
    assert [h["samples"] for h in hist] == [0, 2, 4]  # batch 2 per update
    assert (root / "draft").is_dir() and (pipe and out["lora"].endswith("lora"))
    assert open(f"{out['lora']}/pytorch_lora_weights.safetensors", "rb").read(8)


def test_draft_resume_and_sample_with_scaled_lora(model, tmp_path, capsys, monkeypatch):
    pipe, root = model
    monkeypatch.setenv("DISCERN_RUNS", str(root))
    assert main(["draft", "train", "--preset", "tiny", "--model", pipe, "--method", "k", "--set",
                 "draft.updates=1"]) == 0
    run = json.loads(capsys.readouterr().out)["run"]
    # resume to 2 updates: the history continues from the checkpoint
    cfg = json.loads(open(f"{run}/config.json").read())
    cfg["draft"]["updates"] = 2
    open(f"{run}/config.json", "w").write(json.dumps(cfg))
    assert main(["draft", "train", "--model", pipe, "--resume", run]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["last"]["update"] == 2 and out["last"]["samples"] == 4
    base, zero = tmp_path / "base.png", tmp_path / "zero.png"
    assert main(["draft", "sample", "--model", pipe, "--steps", "3", "--out", str(base)]) == 0
    assert main(["draft", "sample", "--model", pipe, "--lora", out["lora"], "--alpha", "0", "--steps", "3",
                 "--out", str(zero)]) == 0
    assert np.array_equal(np.asarray(Image.open(base)), np.asarray(Image.open(zero)))  # alpha 0 = the base model
    capsys.readouterr()
    assert main(["draft", "train", "--preset", "tiny", "--model", pipe, "--reward", "beauty"]) == 2
    assert "unknown reward" in capsys.readouterr().err
