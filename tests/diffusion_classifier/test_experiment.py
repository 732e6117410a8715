"""End to end on the tiny preset: Fashion-MNIST zero-shot table, pruning, Li schedule, binding claim."""

import json

import pytest

from discern.cli import main
from discern.diffusion_classifier.binding import binomial_p


@pytest.fixture(scope="module")
def tiny_run(tiny_reproduction):
    return tiny_reproduction("diffusion_classifier")


def test_tiny_reproduction_reports_every_method_and_claim(tiny_run):
    res = json.loads((tiny_run / "results.json").read_text())
    cfg = res["preset_config"]
    rows = {r["method"]: r for r in res["table"]}
    full = 10 * cfg["samples"]
    for kind in ("uniform", "ELBO", "fitted"):
        assert rows[f"full matrix, {kind} w(t)"]["evaluations_per_image"] == full
    assert 0 < rows["paired-test pruning (Clark & Jaini)"]["evaluations_per_image"] <= full
    # Li [2, 8] keep [2, 1]: 10 classes x 2 + 2 classes x (8 - 2) more = 32 evaluations per image
    assert rows["Li et al. schedule [2, 8]/[2, 1]"]["evaluations_per_image"] == 32
    assert rows["chance"]["accuracy"] == 10.0
    assert [c["claim"] for c in res["claims"]] == [
        "zero-shot accuracy far above chance", "pruning cuts evaluations >= 5x at <= 1 point of accuracy",
        "the diffusion model binds attributes where the contrastive model does not"]
    assert all(isinstance(c["held"], bool) for c in res["claims"])
    b = res["binding"]
    assert b["diffusion"]["scenes"] == b["contrastive"]["scenes"] == 6
    for side in ("diffusion", "contrastive"):
        k = b[side]["preferred_true"]
        assert b[side]["accuracy"] == pytest.approx(100 * k / 6)
        assert b[side]["p_value"] == pytest.approx(binomial_p(k, 6))
    assert b["diffusion_evaluations_per_scene"] == 8
    for name in ("accuracy_vs_evaluations.png", "binding.png"):
        assert (tiny_run / "plots" / name).stat().st_size > 0
    assert (tiny_run / "binding_t2i" / "pipeline" / "model_index.json").is_file()


def test_binomial_p_values():
    assert binomial_p(0, 6) == pytest.approx(1.0)
    assert binomial_p(6, 6) == pytest.approx(1 / 64)
    assert binomial_p(5, 6) == pytest.approx(7 / 64)  # P(5) + P(6) = (6 + 1) / 2^6
