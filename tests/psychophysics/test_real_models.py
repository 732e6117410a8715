"""A real ImageNet CNN (EfficientNet-Lite0) on the real model-vs-human stimuli, and
``discern psychophysics evaluate-model`` with it, with a tiny Hugging Face classifier, and with bad input.

Needs the installed ``efficientnet-lite0`` model, ``texture-vs-shape`` stimuli and ``model-vs-human``
human data (``discern data fetch ...``); a missing one fails with the install command."""

import json

import numpy as np
import pytest
import torch

from discern.cli import main
from discern.data.models import model_path
from discern.data.registry import path
from discern.psychophysics import efficientnet as E
from discern.psychophysics import metrics as M
from discern.psychophysics.imagenet16 import imagenet_to_16
from discern.psychophysics.model_eval import list_stimuli

# (dataset, category, file): one edge or silhouette per category where EfficientNet-Lite0 is right,
# chosen by the margin between its top two 16-class scores (measured once on all 320 stimuli)
KNOWN = [("edge", "clock", "clock2.png"), ("edge", "knife", "knife10.png"),
         ("silhouette", "bicycle", "bicycle5.png"), ("edge", "keyboard", "keyboard5.png"),
         ("silhouette", "airplane", "airplane3.png"), ("edge", "bottle", "bottle10.png"),
         ("silhouette", "chair", "chair6.png"), ("silhouette", "bear", "bear5.png"),
         ("silhouette", "elephant", "elephant4.png"), ("silhouette", "bird", "bird9.png"),
         ("silhouette", "dog", "dog3.png"), ("edge", "oven", "oven1.png"), ("silhouette", "cat", "cat4.png"),
         ("edge", "truck", "truck7.png"), ("edge", "clock", "clock6.png"), ("silhouette", "knife", "knife7.png")]
FOLDERS = {"edge": "edges", "silhouette": "filled-silhouettes"}


@pytest.fixture(scope="module")
def lite0():
    return E.load()  # model_path("efficientnet-lite0"), strict


def _scores(model, images, **kw):
    with torch.no_grad():
        return imagenet_to_16(model(E.preprocess(images, **kw)).softmax(-1).double().numpy())


def test_the_checkpoint_loads_strictly_into_the_table_1_architecture(lite0):
    f = E.checkpoint_file(model_path("efficientnet-lite0"))
    state = torch.load(f, map_location="cpu", weights_only=True)
    assert E.check_config(state) == []  # expansions, kernels and widths of Tan & Le's Table 1
    assert set(lite0.state_dict()) == set(state) and len(state) == 296
    assert sum(p.numel() for p in lite0.parameters()) == 4_652_008
    assert not lite0.training
    assert E.check_config({k: v for k, v in state.items() if not k.startswith("_blocks.15.")}) != []


def test_known_answer_edges_and_silhouettes(lite0):
    from PIL import Image

    root = path("texture-vs-shape") / "stimuli"
    images = [Image.open(root / FOLDERS[ds] / c / f).convert("RGB") for ds, c, f in KNOWN]
    s = _scores(lite0, images)
    pred = [M.CATEGORIES[i] for i in s.argmax(1)]
    correct = sum(p == c for p, (_, c, _) in zip(pred, KNOWN))
    # measured 16 / 16; with ImageNet mean / std instead of (x - 127) / 128, 11-13 / 16; chance is 1 / 16
    assert correct >= 14
    # the mean log 16-class score of the right category pins the conventions (padding, eps, normalisation)
    right = np.log(s[np.arange(16), [M.CATEGORIES.index(c) for _, c, _ in KNOWN]]).mean()
    assert right == pytest.approx(-2.515, abs=0.02)  # eps 1e-3: -2.43; symmetric padding: -3.13; ImageNet norm: -3.99


def test_evaluate_model_writes_toolbox_csvs_that_align_with_the_humans(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["psychophysics", "evaluate-model", "--model", "efficientnet-lite0", "--dataset", "edge,silhouette",
                 "cue-conflict", "--limit", "16", "--out", str(out), "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary) == ["edge", "silhouette", "cue-conflict"]
    humans = path("model-vs-human") / "raw-data"
    for ds, row in summary.items():
        csv = out / "raw-data" / ds / f"{ds}_efficientnet-lite0_session-1.csv"
        df = M.read_trials(csv)  # the package's reader of the toolbox's format
        assert list(df.columns[:8]) == list(M.COLUMNS) and len(df) == 16
        assert set(df.subj) == {"efficientnet-lite0"} and set(df.category) == set(M.CATEGORIES)
        assert set(df.object_response) <= set(M.CATEGORIES)
        hdf = M.load_dataset(humans, ds)
        h1 = hdf[hdf.subj == "subject-01"]
        # each imagename is the file name that ends the human file's imagename, with the same category
        by_id = dict(zip(h1.image_id, zip(h1.imagename, h1.category)))
        for name, cat in zip(df.imagename, df.category):
            assert by_id[name][0].endswith("_" + name) and by_id[name][1] == cat
        assert row["images"] == 16 and row["humans compared"] == 10
        assert row["images compared with humans"] == f"16 of {len(h1)}"
        assert row["accuracy"] == pytest.approx(M.accuracy(df))
        assert -1 <= row["error consistency"] <= 1
    cc = M.read_trials(out / "raw-data" / "cue-conflict" / "cue-conflict_efficientnet-lite0_session-1.csv")
    assert summary["cue-conflict"]["shape bias"] == pytest.approx(M.shape_bias(cc)["shape-bias"], nan_ok=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "efficientnet-lite0" and metrics["limit"] == 16


def test_limit_takes_the_categories_in_turn():
    items = list_stimuli("cue-conflict", limit=20)
    assert [c for _, c in items[:16]] == list(M.CATEGORIES) and len(items) == 20
    assert len(list_stimuli("edge")) == 160 and len(list_stimuli("cue-conflict")) == 1280


def _tiny_vit(folder, num_labels=1000):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    image_size=32, patch_size=16, num_labels=num_labels)
    ViTForImageClassification(cfg).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_a_hugging_face_image_classifier_folder_runs_through_the_same_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = _tiny_vit(tmp_path / "tiny_vit")
    assert main(["psychophysics", "evaluate-model", "--model", str(model), "--dataset", "edge", "--limit", "4",
                 "--out", str(tmp_path / "o"), "--batch-size", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    df = M.read_trials(tmp_path / "o" / "raw-data" / "edge" / "edge_tiny-vit_session-1.csv")
    assert len(df) == 4 and set(df.subj) == {"tiny-vit"} and set(df.object_response) <= set(M.CATEGORIES)
    assert summary["edge"]["humans compared"] == 10


def _error_line(capsys, argv):
    capsys.readouterr()  # only what the command itself prints
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = ["psychophysics", "evaluate-model", "--out", str(tmp_path / "o"), "--limit", "2"]
    assert "no such model folder" in _error_line(capsys, base + ["--model", str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    assert "not a model folder" in _error_line(capsys, base + ["--model", str(tmp_path / "empty")])
    (tmp_path / "file").write_text("x")
    assert "not a folder" in _error_line(capsys, base + ["--model", str(tmp_path / "file")])
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
                                                  "num_attention_heads": 1, "intermediate_size": 8}))
    assert "not an image classifier" in _error_line(capsys, base + ["--model", str(bert)])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{not json")
    assert "not a readable JSON config" in _error_line(capsys, base + ["--model", str(tmp_path / "junk")])
    ten = _tiny_vit(tmp_path / "vit10", num_labels=10)
    assert "10 outputs" in _error_line(capsys, base + ["--model", str(ten)])
    assert "unknown dataset 'imagenet'" in _error_line(
        capsys, base + ["--model", "efficientnet-lite0", "--dataset", "edge,imagenet"])
    assert "--limit" in _error_line(capsys, ["psychophysics", "evaluate-model", "--model", "efficientnet-lite0",
                                             "--out", str(tmp_path / "o"), "--limit", "0"])
    bad = tmp_path / "badckpt"
    bad.mkdir()
    (bad / E.CHECKPOINT).write_bytes(b"not a checkpoint")
    assert "not a readable torch checkpoint" in _error_line(capsys, base + ["--model", str(bad)])
    if not torch.cuda.is_available():
        assert "no CUDA device" in _error_line(capsys, base + ["--model", "efficientnet-lite0", "--device", "cuda"])
