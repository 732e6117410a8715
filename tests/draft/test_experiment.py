"""The reproduction: its verdict rules on constructed curves with known answers, and the tiny preset
end to end (base model, two reward CNNs, five methods, curves at two etas, claims, plots)."""

import json

import numpy as np
import pytest

from discern.core.results import Result
from discern.draft.config import tiny
from discern.draft.experiment import (STATEMENTS, efficiency_claim, gain_stats, samples_to_reach, stability_claim,
                                      summarise)
from discern.draft.train import eval_key, eval_schedule


def _method(eta, samples, curve, seeds=2, images=6, noise=0.0, seed=0):
    """Constructed arrays of one method: every seed and image follows ``curve`` (E,) plus noise."""
    rng = np.random.default_rng(seed)
    curve = np.asarray(curve, dtype=float)
    r = np.broadcast_to(curve[None, :, None], (seeds, len(curve), images)) + noise * rng.standard_normal(
        (seeds, len(curve), images))
    r[:, 0, :] = curve[0]  # the base model: every run starts from the same rewards
    arr = {"samples": np.asarray(samples), "updates": np.asarray(samples) // 4,
           "grad_norm": np.ones((seeds, len(curve))), "eta": eta, "rewards": {}}
    for e in (0.0, 1.0):
        for p in ("train", "heldout"):
            for rw in ("reward", "heldout_reward"):
                arr["rewards"][eval_key(e, p, rw)] = r.copy()
    return arr


def _cfg():
    cfg = tiny()
    cfg.methods = ["full", "k", "lv", "ddpo"]
    cfg.bootstrap = 500
    return cfg


DDPO_SAMPLES = [0, 400, 800, 1200]
DRAFT_SAMPLES = [0, 4, 8, 16, 40]


def test_efficiency_held_when_draft_matches_ddpos_gain_far_sooner():
    arrays = {"ddpo": _method(1.0, DDPO_SAMPLES, [-3, -2.5, -2.2, -2.0], noise=0.02),
              "lv": _method(0.0, DRAFT_SAMPLES, [-3, -2.5, -1.9, -1.5, -1.0]),
              "k": _method(0.0, DRAFT_SAMPLES, [-3, -2.6, -1.8, -1.5, -1.0])}
    c = efficiency_claim(arrays, _cfg())
    assert c.statement == STATEMENTS["efficiency"]
    assert c.verdict == "held"
    assert c.ci == (150.0, 150.0)  # both reach a gain of ~1.0 after 8 samples: 1200 / 8, in every resample
    assert "after 8 samples (150x fewer)" in c.ours and "(met)" in c.test


def test_efficiency_not_held_when_draft_needs_a_third_of_ddpos_samples():
    arrays = {"ddpo": _method(1.0, DDPO_SAMPLES, [-3, -2.5, -2.2, -2.0], noise=0.02),
              "lv": _method(0.0, [0, 100, 200, 400], [-3, -2.8, -2.5, -1.9]),
              "k": _method(0.0, [0, 100, 200, 400], [-3, -2.8, -2.5, -1.9])}
    c = efficiency_claim(arrays, _cfg())
    assert c.verdict == "not held" and c.ci == (3.0, 3.0)


def test_efficiency_inconclusive_when_ddpo_does_not_measurably_improve():
    # DDPO's final gain is noise around zero: no reward level to compare sample counts at
    arrays = {"ddpo": _method(1.0, DDPO_SAMPLES, [-3, -3, -3, -3.0]),
              "lv": _method(0.0, DRAFT_SAMPLES, [-3, -2.5, -1.9, -1.5, -1.0]),
              "k": _method(0.0, DRAFT_SAMPLES, [-3, -2.6, -1.8, -1.5, -1.0])}
    arrays["ddpo"]["rewards"][eval_key(1.0)][:, -1, :] += np.array([0.3, -0.1, 0.2, -0.2, 0.1, 0.0])
    gs = gain_stats(arrays["ddpo"]["rewards"][eval_key(1.0)])
    assert gs["gain"] == pytest.approx(0.05) and gs["se"] == pytest.approx(np.std([3, -1, 2, -2, 1, 0], ddof=1) / 10
                                                                           / np.sqrt(6))
    c = efficiency_claim(arrays, _cfg())
    assert c.verdict == "inconclusive" and "(not met)" in c.test and "did not measurably improve" in c.ours
    assert c.ci == pytest.approx((gs["gain"] - 2 * gs["se"], gs["gain"] + 2 * gs["se"]))


def test_gain_stats_and_samples_to_reach():
    r = np.zeros((2, 3, 4))
    r[:, -1, :] = [[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]]  # per-image gains over seeds: 2, 3, 4, 5
    gs = gain_stats(r)
    assert gs["gain"] == pytest.approx(3.5) and gs["n_images"] == 4
    assert gs["se"] == pytest.approx(np.std([2, 3, 4, 5], ddof=1) / 2)
    s = np.array([0, 8, 16, 24])
    assert samples_to_reach(s, np.array([0.0, 0.5, 1.0, 2.0]), 1.0) == 16
    assert samples_to_reach(s, np.array([0.0, 0.5, 1.0, 2.0]), -1.0) == 8  # the start itself never counts
    assert samples_to_reach(s, np.array([0.0, 0.5, 1.0, 2.0]), 3.0) is None


def test_stability_claim_reads_the_paired_interval():
    up = _method(0.0, DRAFT_SAMPLES, [-3, -2.0, -1.5, -1.2, -1.0], noise=0.05, seed=1)
    down = _method(0.0, DRAFT_SAMPLES, [-3, -2.6, -2.4, -2.2, -2.0], noise=0.05, seed=2)
    held = stability_claim({"k": up, "full": down}, _cfg())
    assert held.verdict == "held" and held.ci[0] > 0 and held.statement == STATEMENTS["stability"]
    assert "two-way paired bootstrap" in held.test
    not_held = stability_claim({"k": down, "full": up}, _cfg())
    assert not_held.verdict == "not held" and not_held.ci[1] < 0
    same = stability_claim({"k": up, "full": up}, _cfg())
    assert same.verdict == "inconclusive"  # a tie is never held


def test_summary_table_reports_both_etas_and_the_held_out_gaps():
    cfg = _cfg()
    cfg.methods = ["lv", "ddpo"]
    arrays = {"ddpo": _method(1.0, DDPO_SAMPLES, [-3, -2.5, -2.2, -2.0]),
              "lv": _method(0.0, DRAFT_SAMPLES, [-3, -2.5, -1.9, -1.5, -1.0])}
    arrays["lv"]["rewards"][eval_key(0.0, "train", "heldout_reward")][:, -1, :] = -2.5  # a gain of 0.5 only
    table, summary = summarise(arrays, cfg)
    assert [r["method"] for r in table] == ["DRaFT-LV", "DDPO"]
    assert summary["lv"]["gain"] == pytest.approx(2.0) and summary["lv"]["reward_gap"] == pytest.approx(1.5)
    assert summary["ddpo"]["trained_eta"] == 1.0 and table[1]["gain at eta 0"] == pytest.approx(1.0)
    assert table[0]["held-out reward gain"] == pytest.approx(0.5)


def test_eval_schedule_is_dense_early():
    assert eval_schedule(60, 10) == [1, 2, 4, 8, 10, 20, 30, 40, 50, 60]
    assert eval_schedule(300, 10)[:6] == [1, 2, 4, 8, 10, 20] and eval_schedule(300, 10)[-1] == 300
    assert eval_schedule(2, 1) == [1, 2]
    assert eval_schedule(25, 10) == [1, 2, 4, 8, 10, 20, 25]


@pytest.fixture(scope="module")
def tiny_run(tiny_reproduction):
    return tiny_reproduction("draft")


def test_tiny_reproduction_end_to_end(tiny_run):
    res = Result.from_dict(json.loads((tiny_run / "results.json").read_text()))
    assert res.paper == "draft"
    assert [c.statement for c in res.claims] == [STATEMENTS["efficiency"], STATEMENTS["stability"]]
    assert all(c.test and c.verdict in ("held", "not held", "inconclusive") for c in res.claims)
    assert [r["method"] for r in res.table] == ["DRaFT (full)", "DRaFT-1", "DRaFT-LV", "ReFL", "DDPO"]
    curves = res.details["curves"]
    base = curves["lv-seed0"][0]["per_image"]
    for key, hist in curves.items():
        n = 4 if key.startswith("ddpo") else 2  # DDPO gets more updates (preset ddpo_updates)
        assert [h["samples"] for h in hist] == [2 * u for u in range(n + 1)], key  # batch 2, evaluated every update
        assert sorted(hist[0]["per_image"]) == sorted(eval_key(e, p, r) for e in (0.0, 1.0) for p in ("train", "heldout")
                                                      for r in ("reward", "heldout_reward"))
        assert hist[0]["per_image"] == base  # same base, same evaluation draws (at eta 1 too)
        eta = 1.0 if key.startswith("ddpo") else 0.0
        assert hist[-1]["eval_reward"] == pytest.approx(np.mean(hist[-1]["per_image"][eval_key(eta)]))
    assert res.details["summary"]["ddpo"]["trained_eta"] == 1.0
    assert [a["alpha"] for a in res.details["alpha_curve"]] == [0.0, 1.0]
    # alpha = 0 is the base model: its reward is the untrained one (eta = 0)
    assert res.details["alpha_curve"][0]["eval_reward"] == pytest.approx(np.mean(base[eval_key(0.0)]), abs=1e-5)
    cnns = res.details["reward_cnns"]  # accuracies in percent
    assert 0.0 <= cnns["reward"] <= 100.0 and 0.0 <= cnns["heldout_reward"] <= 100.0 and cnns["chance"] == 10.0
    for p in res.plots:
        assert (tiny_run / p).stat().st_size > 0
