"""BAM end to end through the command line on the tiny preset, with the real MiniLM encoder."""

import json

import pytest

from discern.cli import main


def test_teachers_distill_evaluate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main(["bam", "teachers", "--preset", "tiny"]) == 0
    out = json.loads(capsys.readouterr().out)
    teachers = out["teachers"]
    assert set(out["dev"]) == {"spam", "sotu-year"}
    saved = json.loads((tmp_path / "runs" / "bam" / out["run"].split("/")[-1] / "teachers" / "spam.json").read_text())
    assert saved["kind"] == "classification" and len(saved["outputs"]) == 32
    assert all(len(v) == 2 for v in saved["outputs"].values())

    assert main(["bam", "distill", "--preset", "tiny", "--teachers", teachers]) == 0
    run = json.loads(capsys.readouterr().out)["run"]
    assert main(["bam", "evaluate", "--model", run]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"spam", "sotu-year"} and "spearman" in res["sotu-year"]
    first = json.loads((tmp_path / "runs" / "bam" / run.split("/")[-1] / "results.json").read_text())
    assert first["dev"] == res  # the saved student reproduces its own evaluation


def test_distill_with_teachers_of_another_build_names_task_and_id(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    teach = tmp_path / "t"
    teach.mkdir()
    (teach / "spam.json").write_text(json.dumps({"task": "spam", "kind": "classification", "outputs": {"x": [0, 1]}}))
    (teach / "sotu-year.json").write_text(json.dumps({"task": "sotu-year", "kind": "regression", "outputs": {}}))
    assert main(["bam", "distill", "--preset", "tiny", "--teachers", str(teach)]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "Loading weights" not in line]
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "task 'spam': the teacher has no output for example id" in err[0]
    assert not (tmp_path / "runs" / "bam").exists() or not any((tmp_path / "runs" / "bam").iterdir())


def test_reproduce_tiny_reports_all_variants_and_both_claims(tiny_reproduction):
    from discern.core import Result, derive_seed
    from discern.metrics.stats import paired_bootstrap_grid, verdict_from_interval

    run = tiny_reproduction("bam")
    res = json.loads((run / "results.json").read_text())
    result = Result.from_dict(res)
    assert result.paper == "bam" and result.plots == ["plots/bam.png"]
    assert set(res["average"]) == {"single", "multi-task", "bam-no-anneal", "bam"}
    assert [r["task"] for r in res["table"]] == ["spam", "sotu-year"]
    assert all(len(r["bam_seeds"]) == 1 for r in res["table"])
    assert res["seeds"] == [0]
    first, second = result.claims
    assert first.statement.startswith("The BAM student (distillation with teacher annealing) surpasses")
    assert second.statement.startswith("Teacher annealing improves the student")
    # each claim is the bootstrap of its (tasks, seeds) grid of dev differences, recomputed here
    for claim, other in ((first, "single"), (second, "bam-no-anneal")):
        grid = [[a - b for a, b in zip(r["bam_seeds"], r[f"{other}_seeds"])] for r in res["table"]]
        boot = paired_bootstrap_grid(grid, n_boot=res["preset_config"]["bootstrap"],
                                     seed=derive_seed(0, "bam-bootstrap"))
        assert claim.ci == tuple(boot["ci"]) and claim.p_value == boot["p_value"]
        assert claim.verdict == verdict_from_interval(*boot["ci"])
        assert boot["mean"] == pytest.approx(res["average"]["bam"] - res["average"][other])
        assert "bootstrap over the 2 tasks only (one seed" in claim.ours
    assert (run / "teachers" / "seed0" / "spam.json").is_file() and (run / "plots" / "bam.png").is_file()
