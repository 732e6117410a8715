"""``discern reproduce``: registry, progress, a report after every experiment, failures isolated."""

import json

import pytest

from discern.core import DiscernError
from discern.reproduce import registry, reproduce


def test_a_failure_is_recorded_and_the_others_still_run(fake_papers):
    out = fake_papers / "report"
    lines = []
    with pytest.raises(DiscernError, match=r"1 of 3 experiments failed: pb \(RuntimeError: boom <b>&\)"):
        reproduce(preset="tiny", report_dir=str(out), echo=lines.append)
    rows = json.loads((out / "results.json").read_text())
    assert [r["paper"] for r in rows] == ["pa", "pb", "pc"]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "RuntimeError: boom <b>&" and "Traceback" in rows[1]["traceback"]
    for r in rows:
        m = r["meta"]
        assert m["preset"] == "tiny" and m["duration_s"] >= 0 and "numpy" in m["versions"]
        assert m["hardware"]["cores"] >= 1 and m["started"].endswith("UTC")
    page = (out / "index.html").read_text()
    assert "held: 2" in page and "inconclusive: 0" in page and "1 experiment(s) failed" in page
    assert "boom &lt;b&gt;&amp;" in page and "<b>&" not in page and "A &lt;beats&gt; B" in page
    assert page.index('id="pa"') < page.index('id="pb"') < page.index('id="pc"')
    # progress with [i/n] and an ETA from the experiments so far
    progress = [x for x in lines if x.startswith("[")]
    assert progress[0].startswith("[1/3] pa (tiny): elapsed 0m00s, ETA unknown")
    assert progress[1].startswith("[2/3] pb") and "from the experiments so far" in progress[1]
    assert any(x.startswith("[2/3] pb failed: RuntimeError") for x in lines)
    # a second run knows each experiment's duration from the report
    reproduce(only=["pa", "pc"], preset="tiny", report_dir=str(out), echo=lines.append)
    assert lines[-2].startswith("[1/2] pa (tiny): elapsed") and "ETA 0m00s" in lines[-2]


def test_the_report_exists_after_each_experiment(fake_papers, monkeypatch):
    out = fake_papers / "report"
    from discern.reproduce import run as run_mod

    seen = []
    real = run_mod.write_report

    def spy(results, out_dir):
        path = real(results, out_dir)
        seen.append([r["paper"] for r in json.loads((out_dir / "results.json").read_text())])
        return path

    monkeypatch.setattr(run_mod, "write_report", spy)
    assert reproduce(only=["pa", "pc"], preset="tiny", report_dir=str(out), echo=lambda m: None).is_file()
    assert seen == [["pa"], ["pa", "pc"]]


def test_bad_preset_or_key_fails_before_any_work(fake_papers):
    out = fake_papers / "report"
    with pytest.raises(DiscernError, match="unknown config key 'nme'"):
        reproduce(only=["pa"], preset="tiny", sets=["nme=1"], report_dir=str(out), echo=lambda m: None)
    with pytest.raises(DiscernError, match="unknown preset 'huge'"):
        reproduce(preset="huge", report_dir=str(out), echo=lambda m: None)
    assert not out.exists() and not (fake_papers / "runs").exists()


def test_unknown_paper_names_the_choices(fake_papers):
    with pytest.raises(DiscernError, match="unknown paper 'nope' \\(choose from: pa, pb, pc\\)"):
        registry.get("nope")
    assert registry.get("pa").name == "pa"


def test_the_real_registry_has_the_ten_papers_in_order():
    registry._registry.cache_clear()
    names = registry.names()
    assert names == ["electra", "electric", "bam", "attention", "fwl", "diffusion_classifier", "psychophysics",
                     "draft", "medqa", "nureality"]
    assert registry.get("diffusion-classifier").name == "diffusion_classifier"
    assert [p.number for p in registry.papers()] == list(range(1, 11))


@pytest.mark.parametrize("out, message", [
    ({"bench": "x", "ratios": {"a": 2.0}}, "expected the keys"),
    ({"bench": "x", "ratios": {}, "goals": {}, "details": {}}, "non-empty"),
    ({"bench": "x", "ratios": {"a": float("nan")}, "goals": {}, "details": {}}, "not a finite number"),
    ({"bench": "x", "ratios": {"a": "2"}, "goals": {}, "details": {}}, "not a finite number"),
    ({"bench": "x", "ratios": {"a": 2.0}, "goals": {"b": ">= 1"}, "details": {}}, "must name a ratio"),
])
def test_bench_convention_is_checked(out, message):
    with pytest.raises(DiscernError, match=message):
        registry.check_bench(out, "x")
    registry.check_bench({"bench": "x", "ratios": {"a": 2.0}, "goals": {"a": ">= 1.5"}, "details": {}}, "x")


@pytest.mark.parametrize("paper", ["electra", "electric"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_pretrain_seeds_below_one_is_a_one_line_error_before_any_work(paper, value, tmp_path, monkeypatch, capsys):
    from discern.cli import main

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main(["reproduce", "--only", paper, "--preset", "tiny", "--set", f"pretrain_seeds={value}"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 1 experiments failed") and f"ConfigError: pretrain_seeds={value}:" in last
    assert not (tmp_path / "runs" / paper).is_dir() or not any((tmp_path / "runs" / paper).iterdir())


HOSTILE_VALUES = [
    ("electra", "train.steps=-5", "config key 'train.steps' must be in [1, inf), got -5"),
    ("electra", "model.hidden=0", "config key 'model.hidden' must be in [1, inf), got 0"),
    ("electra", "model.heads=3", "config key 'model.heads' must divide model.hidden=32, got 3"),
    ("electra", "train.batch_size=0", "config key 'train.batch_size' must be in [1, inf), got 0"),
    ("electra", "data.seq_len=100000", "config key 'data.seq_len' must be in [3, 64], got 100000"),
    ("electra", "train.lr=nan", "config key 'train.lr' must be in [0, inf), got nan"),
    ("electra", "model.temperature=inf", "config key 'model.temperature' must be in (0, inf), got inf"),
    ("electra", "model.random_frac=0.5", "config keys 'model.mask_frac' + 'model.random_frac' must be at most 1, "
                                         "got 0.85 + 0.5"),
    ("electra", "model.objective=<b>gan</b>", "config key 'model.objective' must be one of electra, mlm, "
                                              "got '<b>gan</b>'"),
    ("electra", "finetune.max_length=512", "config key 'finetune.max_length' must be in [8, 64], got 512"),
    ("electra", "train.schedule=cosine", "config key 'train.schedule' must be one of electra, sequential, "
                                         "constant, got 'cosine'"),
    ("electric", "model.mask_prob=1.5", "config key 'model.mask_prob' must be in (0, 1), got 1.5"),
    ("electric", "model.mask_prob=1", "config key 'model.mask_prob' must be in (0, 1), got 1.0"),
    ("electric", "model.heads=3", "config key 'model.heads' must divide model.hidden=32, got 3"),
    ("electric", "model.noise==1+1", "config key 'model.noise' must be one of two-tower, unigram, got '=1+1'"),
    ("electric", "train.adam_b2=1", "config key 'train.adam_b2' must be in [0, 1), got 1.0"),
    ("electric", "nbest.rates=[10]", "config key 'nbest.rates' must be in [80, 450], got 10"),
    ("electric", "rerank.lambdas=[]", "config key 'rerank.lambdas' must name at least one weight"),
    ("electric", "train.warmup_fraction=-0.1", "config key 'train.warmup_fraction' must be in [0, 1], got -0.1"),
]


@pytest.mark.parametrize("paper, item, message", HOSTILE_VALUES)
def test_an_out_of_range_value_is_a_one_line_error_before_any_work(paper, item, message, tmp_path, monkeypatch,
                                                                    capsys):
    from discern.cli import main

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main([paper, "pretrain", "--preset", "tiny", "--set", item]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("paper", ["electra", "electric"])
def test_every_preset_is_valid_and_a_resumed_config_is_checked_too(paper, tmp_path, monkeypatch, capsys):
    import importlib
    import json

    from discern.cli import main
    from discern.core import build_config

    presets = importlib.import_module(f"discern.{paper}").PRESETS
    for name in presets:
        build_config(presets, name)
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main([paper, "pretrain", "--preset", "tiny", "--set", "train.steps=2"]) == 0
    capsys.readouterr()
    run = next((tmp_path / "runs" / paper).iterdir())
    saved = json.loads((run / "config.json").read_text())
    saved["model"]["dropout"] = 1.0
    (run / "config.json").write_text(json.dumps(saved))
    assert main([paper, "pretrain", "--resume", str(run)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: config key 'model.dropout' must be in [0, 1), got 1.0"]


@pytest.mark.parametrize("tasks, message", [
    ("bogus,spam", "DiscernError: unknown task 'bogus' (choose from: "),
    ("[]", "ConfigError: finetune.tasks is empty: the claim needs at least one fine-tuning task"),
])
def test_electra_checks_its_fine_tuning_tasks_before_any_pre_training(tasks, message, tmp_path, monkeypatch, capsys):
    from discern.cli import main

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main(["reproduce", "--only", "electra", "--preset", "tiny", "--set", f"finetune.tasks={tasks}"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 1 experiments failed") and message in last
    assert not [p.name for p in (tmp_path / "runs").glob("electra/*/*") if p.name.startswith(("pretrain-", "tokenizer"))]


@pytest.mark.parametrize("item, message", [
    ("rerank.causal_lm=/nonexistent/lm", "DiscernError: cannot load causal LM /nonexistent/lm: "),
    ("rerank.causal_lm=/nonexistent/lm.gguf", "DiscernError: GGUF file /nonexistent/lm.gguf does not exist"),
    ("rerank.mlm=/nonexistent/mlm", "DiscernError: rerank.mlm=/nonexistent/mlm: no masked LM there: "),
])
def test_electric_finds_its_rerankers_models_before_any_pre_training(item, message, tmp_path, monkeypatch, capsys):
    from discern.cli import main

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main(["reproduce", "--only", "electric", "--preset", "tiny", "--set", item]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 1 experiments failed") and message in last
    assert not [p.name for p in (tmp_path / "runs").glob("electric/*/*") if p.name.startswith(("pretrain-", "nbest"))]
