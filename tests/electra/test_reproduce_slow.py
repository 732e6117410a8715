"""The quick reproduction itself (minutes): run with `make test-slow`."""

import json

import pytest

from discern.cli import main


@pytest.mark.slow
def test_quick_reproduction(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    assert main(["reproduce", "--only", "electra", "--preset", "quick", "--report", str(tmp_path / "r")]) == 0
    (res,) = json.loads((tmp_path / "r" / "results.json").read_text())
    assert len(res["table"]) == 5 and all(len(r["electra_seeds"]) == 3 for r in res["table"])
    pe, pm = res["pretraining"]["electra"], res["pretraining"]["mlm"]
    assert abs(pe["train_flops"] - pm["train_flops"]) <= pm["train_flops"] / pm["steps"]
