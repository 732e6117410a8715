"""End to end on the tiny preset: Fashion-MNIST zero-shot table, pruning, Li schedule, binding, and
every claim decided by its named test."""

import json

import numpy as np
import pytest

from discern.core.results import Result
from discern.diffusion_classifier.binding import binomial_p
from discern.diffusion_classifier.paired import paired_accuracy_difference
from discern.metrics.stats import binomial_test, mcnemar


def test_tiny_reproduction_reports_every_method_and_claim(tiny_result):
    res = json.loads((tiny_result / "results.json").read_text())
    result = Result.from_dict(res)  # the results file follows the contract
    cfg = res["preset_config"]
    rows = {r["method"]: r for r in res["table"]}
    full = 10 * cfg["samples"]
    for kind in ("uniform", "ELBO", "fitted"):
        assert rows[f"full matrix, {kind} w(t)"]["evaluations_per_image"] == full
    assert 0 < rows["paired-test pruning (Clark & Jaini)"]["evaluations_per_image"] <= full
    # Li [2, 8] keep [2, 1]: 10 classes x 2 + 2 classes x (8 - 2) more = 32 evaluations per image
    assert rows["Li et al. schedule [2, 8]/[2, 1]"]["evaluations_per_image"] == 32
    assert rows["chance"]["accuracy"] == 10.0
    zero_shot, pruning, binding = result.claims
    per = res["per_image"]
    full_ok, pruned_ok = np.array(per["full_uniform_correct"]), np.array(per["pruned_correct"])
    assert len(full_ok) == len(pruned_ok) == 6
    assert rows["full matrix, uniform w(t)"]["accuracy"] == pytest.approx(100 * full_ok.mean())
    assert rows["paired-test pruning (Clark & Jaini)"]["accuracy"] == pytest.approx(100 * pruned_ok.mean())
    # zero-shot: the exact binomial test of the per-image outcomes against chance 1/10
    assert zero_shot.p_value == pytest.approx(binomial_test(int(full_ok.sum()), 6, 0.1)["p_value"])
    assert "binomial" in zero_shot.test
    assert zero_shot.verdict == ("held" if zero_shot.p_value < 0.05 else
                                 "not held" if binomial_test(int(full_ok.sum()), 6, 0.1, "less")["p_value"] < 0.05
                                 else "inconclusive")
    # pruning: Newcombe's paired interval of the drop, in points, and the stated rule
    drop = paired_accuracy_difference(full_ok, pruned_ok)
    lo, hi = pruning.ci
    assert (lo, hi) == pytest.approx((100 * drop["ci"][0], 100 * drop["ci"][1]))
    assert hi - lo > 2 * cfg["max_drop"]  # 6 images cannot pin the drop to within a point
    cut = full / rows["paired-test pruning (Clark & Jaini)"]["evaluations_per_image"]
    assert pruning.verdict == ("held" if cut >= 5 and hi <= 1 else
                               "not held" if cut < 5 or lo > 1 else "inconclusive")
    assert "Newcombe" in pruning.test
    # binding: counts, p-values and the intersection-union verdict from the per-scene preferences
    b = res["binding"]
    assert b["diffusion"]["scenes"] == b["contrastive"]["scenes"] == 6
    for side in ("diffusion", "contrastive"):
        k = b[side]["preferred_true"]
        assert sum(b["preferences"][side]) == k
        assert b[side]["accuracy"] == pytest.approx(100 * k / 6)
        assert b[side]["p_value"] == pytest.approx(binomial_p(k, 6))
    beats = mcnemar(b["preferences"]["diffusion"], b["preferences"]["contrastive"])
    assert binding.p_value == pytest.approx(max(binomial_p(b["diffusion"]["preferred_true"], 6), beats["p_value"]))
    assert "McNemar" in binding.test and "binomial" in binding.test
    assert b["diffusion_evaluations_per_scene"] == 8
    for name in ("accuracy_vs_evaluations.png", "binding.png"):
        assert (tiny_result / "plots" / name).stat().st_size > 0
    assert (tiny_result / "binding_t2i" / "pipeline" / "model_index.json").is_file()


def test_binomial_p_values():
    assert binomial_p(0, 6) == pytest.approx(1.0)
    assert binomial_p(6, 6) == pytest.approx(1 / 64)
    assert binomial_p(5, 6) == pytest.approx(7 / 64)  # P(5) + P(6) = (6 + 1) / 2^6
