"""Loss plots draw each panel's plateau: a constant line, or the value at each evaluation."""

import matplotlib.pyplot as plt
import pytest

from discern.train.plots import plot_losses

RECORDS = [
    {"step": 50, "disc_loss": 0.50},
    {"step": 100, "disc_loss": 0.40, "eval/disc_loss": 0.41, "eval/ref_det": 0.300},
    {"step": 150, "disc_loss": 0.35},
    {"step": 200, "disc_loss": 0.30, "eval/disc_loss": 0.31, "eval/ref_det": 0.325},
]


@pytest.fixture
def figures(monkeypatch):
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    return kept


def lines(ax) -> dict:
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def test_a_moving_plateau_is_drawn_at_each_evaluation(tmp_path, figures):
    panels = [{"key": "disc_loss", "reference": 0.9, "reference_key": "ref_det", "reference_label": "detector"},
              {"key": "disc_loss", "reference": 0.9, "reference_label": "detector"},
              {"key": "disc_loss", "reference": 0.9, "reference_key": "ref_absent", "reference_label": "detector"}]
    out = plot_losses(RECORDS, panels, tmp_path / "p" / "losses.png", title="t")
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    moving, constant, fallback = (lines(ax) for ax in figures[0].axes[:3])
    assert moving["train"] == ([50, 100, 150, 200], [0.50, 0.40, 0.35, 0.30])
    assert moving["held-out"] == ([100, 200], [0.41, 0.31])
    assert moving["detector at each evaluation (last 0.325)"] == ([100, 200], [0.300, 0.325])
    assert len(moving) == 3  # no constant line beside the moving one
    assert constant["detector (0.900)"][1] == [0.9, 0.9]
    assert fallback["detector (0.900)"][1] == [0.9, 0.9]  # no evaluation recorded it
