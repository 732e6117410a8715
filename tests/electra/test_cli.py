"""End to end through the command line on the tiny preset, and its one-line errors."""

import json

import pytest
import torch

from discern.cli import main


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    return tmp_path / "runs"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_pretrain_tiny_then_resume_and_truncated_checkpoint(runs, capsys):
    from transformers import AutoModel, AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    assert main(["electra", "pretrain", "--preset", "tiny", "--set", "train.steps=6"]) == 0
    out = json.loads(capsys.readouterr().out)
    run = next((runs / "electra").iterdir())
    assert out["run"] == str(run) and out["steps"] == 6
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["steps"] == 6 and cfg["model"]["disc_weight"] == 50.0
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == [2, 4, 6]
    disc = ElectraForPreTraining.from_pretrained(run / "model" / "discriminator")
    gen = ElectraForMaskedLM.from_pretrained(run / "model" / "generator")
    assert disc.config.hidden_size == 32 and gen.config.hidden_size == 16
    tok = AutoTokenizer.from_pretrained(run / "model" / "discriminator")
    enc = AutoModel.from_pretrained(run / "model" / "discriminator")
    h = enc(**tok("the jury said", return_tensors="pt")).last_hidden_state
    assert h.shape[-1] == 32 and torch.isfinite(h).all()
    results = json.loads((run / "results.json").read_text())
    assert results["train_flops"] == pytest.approx(6 * results["flops_per_step"])

    # a finished run resumes to the same place
    assert main(["electra", "pretrain", "--resume", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 6

    ck = run / "checkpoints" / "last.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    assert main(["electra", "pretrain", "--resume", str(run)]) == 2
    assert "last.pt is truncated or corrupt" in one_line_error(capsys)


def test_mlm_baseline_objective(runs, capsys):
    assert main(["electra", "pretrain", "--preset", "tiny", "--objective", "mlm", "--set", "train.steps=2"]) == 0
    run = next((runs / "electra").iterdir())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["objective"] == "mlm" and (cfg["model"]["mask_frac"], cfg["model"]["random_frac"]) == (0.8, 0.1)
    assert (run / "model" / "mlm" / "model.safetensors").is_file()


def test_eval_examples_sets_the_held_out_set_and_a_too_large_one_is_one_line(runs, capsys):
    assert main(["electra", "pretrain", "--preset", "tiny", "--set", "train.steps=2",
                 "--set", "data.eval_examples=16"]) == 0
    run = next((runs / "electra").iterdir())
    assert json.loads((run / "results.json").read_text())["eval"]["held_out_examples"] == 16
    capsys.readouterr()
    assert main(["electra", "pretrain", "--preset", "tiny", "--set", "data.eval_examples=100000"]) == 2
    err = one_line_error(capsys)
    assert "data.eval_examples=100000" in err and "at most half" in err


def test_unknown_key_is_one_line_and_creates_nothing(runs, capsys):
    assert main(["electra", "pretrain", "--preset", "tiny", "--set", "model.hiden=3"]) == 2
    assert "unknown config key 'model.hiden'" in one_line_error(capsys)
    assert not runs.exists()
    assert main(["electra", "pretrain", "--preset", "huge"]) == 2
    assert "unknown preset 'huge'" in one_line_error(capsys)


def test_a_text_too_small_to_hold_out_and_train_on_is_one_line(runs, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("<script>alert(1)</script>\n=1+1\n\nA second document.\n", encoding="utf-8")
    assert main(["electra", "pretrain", "--preset", "tiny", "--text", str(text)]) == 2
    assert one_line_error(capsys) == ("error: this corpus makes 2 pre-training examples; it needs at least 16 (8 held "
                                      "out for evaluation and as many to train on): give it more text")


def test_missing_dataset_names_the_install_command(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCERN_DATA", str(tmp_path / "empty"))
    assert main(["electra", "pretrain", "--preset", "tiny"]) == 2
    assert one_line_error(capsys) == "error: dataset 'brown' is not installed; run: discern data fetch brown"
    assert not (runs / "electra").exists() or not any((runs / "electra").iterdir())


def test_reproduce_tiny_writes_report(tiny_reproduction):
    from discern.metrics.stats import paired_bootstrap_grid, verdict_from_interval

    report = tiny_reproduction("electra").parents[1] / "report"
    html = (report / "index.html").read_text()
    assert "ELECTRA beats MLM at equal pre-training compute" in html and "electra_vs_mlm.png" in html
    (res,) = json.loads((report / "results.json").read_text())
    claim = res["claims"][0]
    seeds = res["pretraining"]["seeds"]
    assert seeds == [0, 1]
    # the verdict is the paired bootstrap's over tasks x pre-training seeds, recomputed here
    grid = [[r["electra_seeds"][i] - r["mlm_seeds"][i] for i in range(len(seeds))] for r in res["table"]]
    from discern.core import derive_seed

    boot = paired_bootstrap_grid(grid, n_boot=res["preset_config"]["bootstrap"],
                                 seed=derive_seed(res["preset_config"]["seed"], "bootstrap"))
    assert claim["ci"] == pytest.approx(boot["ci"]) and claim["p_value"] == pytest.approx(boot["p_value"])
    expected = verdict_from_interval(*res["electra_minus_mlm"]["ci"])
    if not res["pretraining_beats_random_init"]["electra"]:
        expected = "inconclusive"
        assert "pre-training failed" in claim["ours"]
    assert claim["verdict"] == expected
    from discern.core import Result

    assert Result.from_dict(res).claims[0].verdict == expected
    assert "paired bootstrap" in claim["test"]
    # the random-init control is fine-tuned on every task for every seed
    assert all(len(r["random-init_seeds"]) == len(seeds) for r in res["table"])
    assert set(res["vs_random_init"]) == {"electra", "mlm"}
    # equal compute per seed: MLM steps chosen so its FLOPs match ELECTRA's within one MLM step
    for s in map(str, seeds):
        pe, pm = res["pretraining"]["electra"][s], res["pretraining"]["mlm"][s]
        assert abs(pe["train_flops"] - pm["train_flops"]) <= pm["train_flops"] / pm["steps"]
    plateau = res["pretraining"]["plateau"]["electra-seed0"]
    assert plateau["mlm"]["reference"] > 0 and plateau["discriminator"]["reference"] > 0
    assert plateau["mlm"]["nats_below"] == pytest.approx(plateau["mlm"]["reference"] - plateau["mlm"]["loss"])
    assert [r["task"] for r in res["table"]] == ["spam", "sotu-year"]
    assert (report / "electra" / "electra_vs_mlm.png").is_file()
    assert (report / "electra" / "pretrain_losses_electra.png").is_file()


def test_flops_command_for_the_paper_preset(capsys):
    from discern.electra.flops import Dims, train_flops

    assert main(["electra", "flops", "--preset", "paper"]) == 0
    out = json.loads(capsys.readouterr().out)
    disc = Dims(30522, 128, 256, 12, 4, 1024, 128)
    gen = Dims(30522, 128, 64, 12, 1, 256, 128)  # generator 1/4: hidden, heads and FFN scaled
    assert out["train_flops"] == pytest.approx(train_flops(disc, 128, 1_000_000, 0.155, True, gen), rel=1e-12)
    assert round(out["electra_small_paper"] / 1e17) == 14


def _first_losses(run) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_one_seed_drives_the_whole_run_and_train_seed_is_not_a_second_one(runs, capsys):
    def pretrain(*sets):
        before = set((runs / "electra").iterdir()) if (runs / "electra").exists() else set()
        args = ["electra", "pretrain", "--preset", "tiny", "--set", "train.steps=2", "--set", "train.log_every=1"]
        assert main(args + [x for s in sets for x in ("--set", s)]) == 0
        capsys.readouterr()
        (new,) = set((runs / "electra").iterdir()) - before
        return new

    a, b, c = pretrain("seed=5"), pretrain("seed=5"), pretrain("seed=6")
    assert _first_losses(a) == _first_losses(b)  # same seed: the same masking, sampling and dropout
    assert _first_losses(a) != _first_losses(c)
    assert main(["electra", "pretrain", "--preset", "tiny", "--set", "train.seed=3"]) == 2
    assert "--set seed=3" in one_line_error(capsys)


def test_resume_keeps_the_runs_own_preset(runs, capsys):
    assert main(["electra", "pretrain", "--preset", "tiny", "--set", "train.steps=2"]) == 0
    capsys.readouterr()
    run = next((runs / "electra").iterdir())
    assert (run / "preset.txt").read_text().strip() == "tiny"
    # a key missing from an older config.json comes from the run's preset (tiny), not from paper's
    saved = json.loads((run / "config.json").read_text())
    del saved["finetune"]["max_train"]
    (run / "config.json").write_text(json.dumps(saved))
    from discern.core.runs import run_training_command
    from discern.electra import PRESETS

    class Args:
        resume, preset, config, sets, name = str(run), "quick", None, [], "x"

    _, cfg = run_training_command("electra", PRESETS, Args, lambda cfg, run, resume: cfg)
    assert cfg.finetune.max_train == PRESETS["tiny"]().finetune.max_train != PRESETS["paper"]().finetune.max_train
    assert cfg.train.steps == 2
