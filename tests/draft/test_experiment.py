"""End to end on the tiny preset: base model, reward CNN, five methods, curves, claims, plots."""

import json

import pytest

from discern.draft.experiment import first_reaching


@pytest.fixture(scope="module")
def tiny_run(tiny_reproduction):
    return tiny_reproduction("draft")


def test_tiny_reproduction_reports_every_method(tiny_run):
    res = json.loads((tiny_run / "results.json").read_text())
    assert [r["method"] for r in res["table"]] == ["DRaFT (full)", "DRaFT-1", "DRaFT-LV", "ReFL", "DDPO"]
    for key, hist in res["curves"].items():
        n = 4 if key.startswith("ddpo") else 2  # DDPO gets more updates (preset ddpo_updates)
        assert [h["samples"] for h in hist] == [2 * u for u in range(n + 1)], key  # batch 2, evaluated every update
        assert hist[0]["eval_reward"] == res["curves"]["lv-seed0"][0]["eval_reward"]  # same base, same eval set
    assert [c["claim"] for c in res["claims"]] == [
        "DRaFT-LV / DRaFT-1 reach DDPO's final reward with >= 10x fewer samples",
        "small K is more stable than full back-propagation"]
    assert [a["alpha"] for a in res["alpha_curve"]] == [0.0, 1.0]
    # alpha = 0 is the base model: its reward is the untrained one
    assert res["alpha_curve"][0]["eval_reward"] == pytest.approx(res["curves"]["lv-seed0"][0]["eval_reward"], abs=1e-5)
    for p in res["plots"]:
        assert (tiny_run / p).stat().st_size > 0


def test_first_reaching():
    hist = [{"samples": 0, "eval_reward": -2.0}, {"samples": 8, "eval_reward": -1.0}, {"samples": 16, "eval_reward": -0.5}]
    assert first_reaching(hist, -1.0) == 8
    assert first_reaching(hist, -2.5) == 0
    assert first_reaching(hist, 0.0) is None
