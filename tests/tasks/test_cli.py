import argparse
import json
from pathlib import Path

import pytest

from discern.tasks import add_task_commands, run_task_command, write_task_dir


def _run(argv):
    parser = argparse.ArgumentParser(prog="discern")
    sub = parser.add_subparsers(dest="command", required=True)
    add_task_commands(sub)
    return run_task_command(parser.parse_args(argv))


def test_tasks_list(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DISCERN_DATA", str(tmp_path))
    assert _run(["tasks", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = [t["name"] for t in out["tasks"]]
    assert {"brown-genre", "spam", "sotu-party", "same-doc", "sotu-year"} <= set(names)
    assert _run(["tasks", "list"]) == 0
    assert "sotu-year" in capsys.readouterr().out


def test_tasks_finetune_on_a_task_folder(capsys, tmp_path, monkeypatch, make_encoder, tokenizer,
                                         toy_task):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    write_task_dir(toy_task, tmp_path / "toy")
    enc = make_encoder("electra")
    enc.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    argv = ["tasks", "finetune", "--model", str(tmp_path / "model"), "--task", str(tmp_path / "toy"),
            "--seed", "1", "--set", "epochs=8", "--set", "lr=2e-3", "--set", "batch_size=16",
            "--set", "device=cpu"]
    assert _run(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dev"]["accuracy"] == 1.0 and out["steps"] == 48
    results = json.loads((tmp_path / "runs" / "tasks").glob("*/results.json").__next__().read_text())
    assert results["config"]["seed"] == 1 and len(results["predictions"]["dev"]) == 40
    # the fine-tuned model: RUN/model, loaded by transformers alone, predicting what the run predicted
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert out["model"] == results["model"] and out["model"].endswith("/model")
    hf = AutoModelForSequenceClassification.from_pretrained(out["model"]).eval()
    tok = AutoTokenizer.from_pretrained(out["model"])
    assert hf.config.id2label == {0: "neg", 1: "pos"}
    with torch.no_grad():
        logits = hf(**tok([ex.text for ex in toy_task.dev], padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(logits, [results["logits"]["dev"][ex.id] for ex in toy_task.dev], atol=1e-5, rtol=0)

    assert _run(argv[:6] + ["--name", "nosave", "--no-save", "--set", "max_steps=1", "--set", "device=cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "model" not in out and not (Path(out["run"]) / "model").exists()
    assert _run(argv[:-2] + ["--set", "nope=1"]) == 2
    assert "unknown config key 'nope'" in capsys.readouterr().err
    assert _run(["tasks", "finetune", "--model", str(tmp_path / "none"), "--task", "spam"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_tasks_finetune_dtype_is_the_runs_autocast_and_a_resume_keeps_it(capsys, tmp_path, monkeypatch,
                                                                          make_encoder, tokenizer, toy_task):
    import torch

    import discern.tasks.finetune as F

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    write_task_dir(toy_task, tmp_path / "toy")
    make_encoder("bert").save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    seen = []
    original = F.EncoderHead.forward

    def forward(self, *args, **kwargs):
        if self.training:
            seen.append((torch.is_autocast_enabled("cpu"), next(self.parameters()).device.type))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(F.EncoderHead, "forward", forward)
    argv = ["tasks", "finetune", "--model", str(tmp_path / "model"), "--task", str(tmp_path / "toy"),
            "--set", "max_steps=2", "--no-save", "--device", "cpu", "--dtype", "bfloat16"]
    assert _run(argv) == 0
    run = Path(json.loads(capsys.readouterr().out)["run"])
    saved = json.loads((run / "config.json").read_text())["finetune"]
    assert saved["bf16"] is True and saved["device"] == "cpu"
    assert seen == [(True, "cpu"), (True, "cpu")]
    assert _run(["tasks", "finetune", "--resume", str(run), "--dtype", "float32"]) == 2
    assert ("error: --dtype float32: the resumed run was started with bf16=true (bfloat16); drop --dtype or give "
            "--dtype bfloat16") in capsys.readouterr().err
    assert _run(argv[:-1] + ["float16"]) == 2
    assert "--dtype float16 needs a GPU" in capsys.readouterr().err


def test_finetune_model_takes_a_folder_or_a_named_encoder(tmp_path):
    from discern.core.errors import DiscernError
    from discern.data.models import model_path
    from discern.tasks.cli import resolve_model

    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("mpnet-base") == str(model_path("mpnet-base"))
    assert resolve_model("minilm") == str(model_path("minilm"))
    with pytest.raises(DiscernError, match=r"^--model bert-base: no such folder \(or a named encoder: minilm, "
                                           r"mpnet-base\)$"):
        resolve_model("bert-base")
