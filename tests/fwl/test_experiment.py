import json
import math

import numpy as np
import pytest

from discern.core import Run, derive_seed
from discern.core.results import VERDICTS, Result
from discern.data.corpora import wikitext2_valid
from discern.fwl.config import PRESETS, tiny
from discern.fwl.data import wikitext_articles
from discern.fwl.experiment import beyond_block_verdict, compute_rule, run, segment_losses
from discern.metrics.stats import paired_bootstrap


def test_wikitext2_valid_has_60_articles():
    arts = wikitext_articles(wikitext2_valid())
    assert len(arts) == 60
    assert arts[0].startswith("= Homarus gammarus =")
    assert sum(a.count("\n") for a in arts) <= wikitext2_valid().count("\n") + 60


def test_presets_live_in_config_and_the_descriptor_finds_them():
    from discern.fwl import PAPER

    assert PAPER.presets == "config:PRESETS"
    assert PAPER.presets_dict() is PRESETS
    assert set(PRESETS) == {"tiny", "quick", "scratch", "paper"}


@pytest.mark.parametrize("intervals, verdict", [
    ({"wikitext": [0.01, 0.03], "moby_dick": [0.002, 0.05]}, "held"),
    ({"wikitext": [0.01, 0.03], "moby_dick": [-0.01, 0.02]}, "inconclusive"),  # one overlaps 0
    ({"wikitext": [0.0, 0.03], "moby_dick": [0.01, 0.02]}, "inconclusive"),  # touching 0 is not above it
    ({"wikitext": [0.01, 0.03], "moby_dick": [-0.04, -0.01]}, "not held"),  # either below 0 decides
    ({"wikitext": [-0.03, -0.01], "moby_dick": [-0.02, 0.02]}, "not held"),
])
def test_the_control_claim_needs_both_corpora(intervals, verdict):
    assert beyond_block_verdict(intervals) == verdict


def test_the_compute_rule_is_a_third_of_dynamic_evaluations_extra_flops():
    r = compute_rule({"base": 2.0, "fwl": 3.0, "dynamic": 8.0})  # extra +50% vs +300%
    assert r["extra_fwl"] == 0.5 and r["extra_dynamic"] == 3.0 and r["ratio"] == 0.5 / 3.0
    assert r["verdict"] == "held"
    assert compute_rule({"base": 1.0, "fwl": 2.0, "dynamic": 4.0})["verdict"] == "not held"  # exactly 1/3


def test_segment_losses_are_per_token_means():
    assert segment_losses({"segment_nll": [6.0, 3.0], "segment_tokens": [3, 2]}).tolist() == [2.0, 1.5]


def test_tiny_reproduction_end_to_end_and_resume(tmp_path):
    cfg = tiny()
    r = Run.create("fwl", "tiny", cfg, root=tmp_path)
    res = run(cfg, r)
    assert isinstance(res, Result)
    saved = Result.from_dict(json.loads((r.path / "results.json").read_text()))
    assert saved.to_dict() == json.loads(json.dumps(res.to_dict()))
    rows = {(t["corpus"], t["method"]): t for t in saved.table}
    methods = ("base", "+FWL", "control (block, steps 0)", "dynamic eval")
    assert set(rows) == {(c, m) for c in ("wikitext", "moby_dick") for m in methods}
    for t in rows.values():
        assert t["tokens"] == cfg.eval_tokens and math.isfinite(t["perplexity"])
    # dynamic evaluation = a scoring forward pass + the adaptation's forward and backward (2x): 4x the FLOPs
    assert abs(rows["wikitext", "dynamic eval"]["compute_vs_base"] - 4.0) < 1e-9
    assert rows["wikitext", "+FWL"]["compute_vs_base"] > 1.0
    # the control runs the FWL's computation with the update multiplied by 0: the same FLOPs
    control_row = rows["wikitext", "control (block, steps 0)"]
    assert control_row["compute_vs_base"] == rows["wikitext", "+FWL"]["compute_vs_base"]

    d = saved.details
    assert d["control_step_sizes"] == {k: 0.0 for k in ("w1", "b1", "w2", "b2", "alpha", "beta")}
    assert all(v != float(np.float32(0.01)) for v in d["learned_step_sizes"].values())  # the FWL's step sizes trained
    assert d["train"]["control"]["steps"] == d["train"]["fwl"]["steps"] == d["train"]["base"]["steps"] == cfg.steps
    for corpus in ("wikitext", "moby_dick"):
        for m in ("base", "fwl", "control", "dynamic"):
            e = d["results"][corpus][m]
            assert e["segment_tokens"] == [cfg.seq_len] * (cfg.eval_tokens // cfg.seq_len)
            assert math.isclose(sum(e["segment_nll"]), e["nll"], rel_tol=1e-12)

    claims = {c.statement.split(" (")[0]: c for c in saved.claims}
    assert list(claims) == ["FWL lowers perplexity beyond the added block", "FWL lowers perplexity over the base model",
                            "at far less extra compute than dynamic evaluation",
                            "FWL gets most of dynamic evaluation's gain"]
    assert all(c.verdict in VERDICTS for c in saved.claims)
    # the control claim: recompute each corpus's bootstrap from the saved segments with the run's seed
    ivs, ps = {}, []
    for corpus in ("wikitext", "moby_dick"):
        res_c = d["results"][corpus]
        b = paired_bootstrap(segment_losses(res_c["control"]), segment_losses(res_c["fwl"]), n_resamples=cfg.bootstrap,
                             seed=derive_seed(cfg.seed, "fwl-bootstrap", corpus, "control-fwl"))
        assert b == d["statistics"][corpus]["control_minus_fwl"]
        ivs[corpus] = b["ci"]
        ps.append(b["p_value"])
    beyond = claims["FWL lowers perplexity beyond the added block"]
    assert beyond.verdict == beyond_block_verdict(ivs)
    assert beyond.p_value == max(ps) and list(beyond.ci) in ivs.values()
    assert "paired bootstrap over scored segments (4 WikiText-2, 4 Moby Dick" in beyond.test
    vs_base = claims["FWL lowers perplexity over the base model"]
    assert list(vs_base.ci) == d["statistics"]["wikitext"]["base_minus_fwl"]["ci"]
    compute = claims["at far less extra compute than dynamic evaluation"]
    ratio = d["compute_rule"]["ratio"]
    assert compute.test.startswith("rule: ") and compute.ci == (ratio, ratio) and compute.p_value is None
    assert compute.verdict == ("held" if ratio < 1 / 3 else "not held")
    assert "paired bootstrap" in claims["FWL gets most of dynamic evaluation's gain"].test
    assert saved.plots == ["plots/fwl.png"] and (r.path / "plots" / "fwl.png").is_file()

    assert res["dynamic_lr"]["lr"] in cfg.dynamic_lrs
    for name in ("fwl", "control"):
        saved_config = json.loads((r.path / name / "model" / "config.json").read_text())
        assert saved_config["model_type"] == "discern_fwl" and saved_config["fast_weights"] is (name == "fwl")
        assert not (r.path / name / "checkpoints" / "last.pt").exists()  # the optimiser state is not kept
    assert (r.path / "base" / "model").is_dir()
    # a rerun on the same folder loads the trained models instead of training again; with the WikiText
    # scores deleted, the reloaded models must give the same perplexities
    (r.path / "eval_wikitext.json").unlink()
    again = run(cfg, Run.open(r.path))
    assert len(again.table) == len(saved.table) == 8
    for a, b in zip(again.table, saved.table):
        assert math.isclose(a["perplexity"], b["perplexity"], rel_tol=1e-6), (a, b)
    assert json.loads((r.path / "control" / "train.json").read_text())["steps"] == cfg.steps
    assert np.isfinite([c.ci[0] for c in again.claims if c.ci]).all()
