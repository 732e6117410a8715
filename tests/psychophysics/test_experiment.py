"""End to end on the tiny preset, and the two CLI commands."""

import json

import numpy as np
import pytest

from discern.cli import main
from discern.core import derive_seed
from discern.core.results import Result
from discern.psychophysics import metrics as M
from discern.psychophysics.analysis import shape_bias_difference
from discern.psychophysics.decisions import Classifier, decide
from discern.psychophysics.stimuli import SHAPES


@pytest.fixture(scope="module")
def tiny_run(tiny_result):
    return tiny_result


def test_tiny_reproduction_writes_toolbox_csvs_and_every_metric(tiny_run):
    res = json.loads((tiny_run / "results.json").read_text())
    result = Result.from_dict(res)  # the results file follows the contract
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
    # each claim: the paired bootstrap over cue-conflict stimuli, recomputed with the run's own seed
    cfg = res["preset_config"]
    assert [c.statement.split(":")[0] for c in result.claims] == [
        "generative classifiers show a record-breaking human-like shape bias",
        "noise augmentation raises the CNN's shape bias"]
    for claim, (a, b) in zip(result.claims, [("diffusion", "cnn"), ("cnn_noise", "cnn")]):
        t = shape_bias_difference(cue[cue.subj == a], cue[cue.subj == b], cfg["n_boot"], cfg["level"],
                                  derive_seed(cfg["seed"], "shape-bias", a, b))
        assert res["shape_bias_tests"][f"{a} - {b}"]["n"] == t["n"] == len(SHAPES) * (len(SHAPES) - 1)
        if t["ci"] is None:
            assert claim.ci is None and claim.verdict == "inconclusive"
        else:
            assert claim.ci == pytest.approx(tuple(t["ci"])) and claim.p_value == pytest.approx(t["p_value"])
            sa, sb = res["shape_bias"][a]["shape-bias"], res["shape_bias"][b]["shape-bias"]
            assert t["difference"] == pytest.approx(sa - sb)
            assert claim.verdict == ("held" if t["ci"][0] > 0 else "not held" if t["ci"][1] < 0 else "inconclusive")
        assert "bootstrap" in claim.test and "cue-conflict stimuli" in claim.test
    assert [r["classifier"] for r in res["table"]] == names
    assert cfg["template"] == "A bad photo of a {}"
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


def test_the_generative_classifier_is_prompted_with_the_papers_template():
    """Jaini et al.'s prompt "A bad photo of a <class>" is the default, and the classifier encodes it."""
    import torch

    from discern.diffusion import Denoiser, ModelConfig, build_pipeline
    from discern.psychophysics.config import PAPER_PROMPT, Config, tiny
    from discern.reproduce.psychophysics import DiffusionClassifier, make_generative

    assert PAPER_PROMPT == "A bad photo of a {}" and Config().template == PAPER_PROMPT
    cfg = tiny()
    pipe = build_pipeline(ModelConfig(image_size=16, block_out_channels=(8, 16), cross_attention_dim=16,
                                      text_intermediate=32, attention_head_dim=4, max_length=16, text_layers=1))
    clf = make_generative(pipe, ["circle", "star"], cfg)
    with torch.no_grad():
        want = Denoiser(pipe).encode_prompts(["A bad photo of a circle", "A bad photo of a star"])
        other = Denoiser(pipe).encode_prompts(["a photo of a circle", "a photo of a star"])
    assert torch.equal(clf.conds, want) and not torch.equal(clf.conds, other)
    assert torch.equal(DiffusionClassifier(pipe, ["circle", "star"]).conds, want)


def test_bench_agrees_with_the_pair_at_a_time_and_per_trial_computations():
    from discern.psychophysics.bench import bench
    from discern.reproduce.registry import check_bench

    out = bench(quick=True)
    check_bench(out, "psychophysics")
    d = out["details"]
    assert d["datasets"] == ["cue-conflict", "edge", "silhouette", "contrast"]
    assert d["human_pairs"] == 45 + 45 + 45 + 6
    assert d["max_abs_difference_vs_pair_at_a_time"] == 0.0
    assert d["max_abs_difference_vs_per_trial_loops"] < 1e-12
