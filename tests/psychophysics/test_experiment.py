"""End to end on the tiny preset, and the two CLI commands."""

import json

import numpy as np
import pytest

from discern.cli import main
from discern.psychophysics import metrics as M
from discern.psychophysics.decisions import Classifier, decide
from discern.psychophysics.stimuli import SHAPES


@pytest.fixture(scope="module")
def tiny_run(tiny_reproduction):
    return tiny_reproduction("psychophysics")


def test_tiny_reproduction_writes_toolbox_csvs_and_every_metric(tiny_run):
    res = json.loads((tiny_run / "results.json").read_text())
    names = ["diffusion", "cnn", "cnn_noise"]
    cue = M.load_dataset(tiny_run / "raw-data", "cue-conflict")
    assert sorted(cue.subj.unique()) == sorted(names)
    for n in names:  # the reported shape bias is the one the CSV gives
        sb = M.shape_bias(cue[cue.subj == n])
        assert res["shape_bias"][n]["shape"] == sb["shape"] and res["shape_bias"][n]["texture"] == sb["texture"]
        assert sb["conflict_trials"] == len(SHAPES) * (len(SHAPES) - 1)
    contrast = M.load_dataset(tiny_run / "raw-data", "contrast")
    assert set(contrast.condition) == set(M.included_conditions("contrast"))
    assert set(res["error_consistency"]) == {"diffusion vs cnn", "diffusion vs cnn_noise", "cnn vs cnn_noise"}
    for v in res["error_consistency"].values():
        assert -1.0 <= v["error consistency"] <= 1.0
    assert [c["claim"] for c in res["claims"]] == [
        "the generative classifier is more shape-biased than the discriminative one",
        "noise augmentation raises the CNN's shape bias"]
    for p in res["plots"]:
        assert (tiny_run / p).stat().st_size > 0
    assert (tiny_run / "t2i" / "pipeline" / "model_index.json").is_file()
    assert (tiny_run / "stimuli" / "manifest.csv").is_file()


def test_evaluate_command_reads_decisions_and_compares_with_humans(tiny_run, tmp_path, capsys):
    assert main(["psychophysics", "evaluate", "--decisions", str(tiny_run / "raw-data" / "cue-conflict"),
                 "--out", str(tmp_path / "m.json")]) == 0
    out = json.loads((tmp_path / "m.json").read_text())
    assert set(out) == {"cue-conflict"} and set(out["cue-conflict"]) == {"cnn", "cnn_noise", "diffusion"}
    # our stimuli are not the human experiment's images: the human comparison says so
    assert out["cue-conflict"]["cnn"]["vs_humans"].startswith("skipped")
    capsys.readouterr()
    assert main(["psychophysics", "evaluate", "--decisions", str(tmp_path / "missing.csv")]) == 2
    assert "no decision CSV" in capsys.readouterr().err


def test_stimuli_command(tmp_path, capsys):
    assert main(["psychophysics", "stimuli", "--out", str(tmp_path / "s"), "--per-pair", "1", "--per-class", "1",
                 "--parametric-per-class", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_dataset"]["cue-conflict"] == 36 and out["per_dataset"]["rotation"] == 4 * 6
    assert (tmp_path / "s" / "silhouette" / "circle" / "circle1.png").is_file()


class _Constant:
    classes = ["a", "b", "c"]

    def predict_proba(self, images):
        return np.tile([0.1, 0.7, 0.2], (len(images), 1))


def test_classifier_protocol_and_decide():
    clf = _Constant()
    assert isinstance(clf, Classifier)
    assert decide(clf, np.zeros((5, 1, 4, 4)), batch_size=2) == ["b"] * 5
