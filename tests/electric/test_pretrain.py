"""Electric pre-training through the foundation's loop: resume and DDP under torchrun."""

import json
import os
import subprocess
import sys

import torch

from discern.cli import main
from discern.core import Run
from discern.electric.config import tiny
from discern.electric.pretrain import pretrain


def _energy_weights(run_dir):
    from transformers import ElectraForPreTraining

    m = ElectraForPreTraining.from_pretrained(run_dir / "model" / "energy")
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    cfg = tiny()
    cfg.train.steps = 6
    full = Run.create("electric", "full", cfg, root=tmp_path)
    pretrain(cfg, full)
    parts = Run.create("electric", "parts", cfg, root=tmp_path)
    first = pretrain(cfg, parts, stop_after=3)
    assert first["steps"] == 3 and not first["finished"]
    assert not (parts.path / "model").exists()
    second = pretrain(cfg, parts, resume=True)
    assert second["steps"] == 6 and second["finished"]
    assert torch.equal(_energy_weights(full.path), _energy_weights(parts.path))
    assert (full.path / "model" / "noise" / "head.pt").is_file()


def test_cli_pretrain_under_torchrun_two_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISCERN_RUNS": str(tmp_path), "DISCERN_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           "-m", "discern", "electric", "pretrain", "--preset", "tiny", "--set", "train.steps=4"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["steps"] == 4
    run_dir = tmp_path / "electric"
    (run,) = list(run_dir.iterdir())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["disc_weight"] == 50.0 and cfg["model"]["tower_size"] == 0.5
    assert (run / "model" / "energy" / "model.safetensors").is_file()


def test_unknown_config_key_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path))
    assert main(["electric", "pretrain", "--preset", "tiny", "--set", "model.tower_sise=0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.tower_sise" in err[0]
    assert not (tmp_path / "electric").exists()


def test_eval_examples_sets_the_held_out_set_and_a_too_large_one_is_one_line(tmp_path, monkeypatch, capsys):
    cfg = tiny()
    cfg.train.steps, cfg.data.eval_examples = 2, 24
    out = pretrain(cfg, Run.create("electric", "held", cfg, root=tmp_path))
    assert out["eval"]["held_out_examples"] == 24
    capsys.readouterr()  # the run's progress bars
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "cli"))
    assert main(["electric", "pretrain", "--preset", "tiny", "--set", "data.eval_examples=100000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.eval_examples=100000" in err[0] and "at most half" in err[0]
