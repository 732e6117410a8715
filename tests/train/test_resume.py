import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from discern.core import Run
from discern.train import TrainConfig, fit


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 16)
        self.drop = torch.nn.Dropout(0.3)
        self.out = torch.nn.Linear(16, 1)

    def forward(self, x):
        return self.out(self.drop(torch.relu(self.lin(x))))


def batch_fn(step, micro, rank, world):
    g = torch.Generator().manual_seed(1000 * step + micro)
    x = torch.randn(8, 6, generator=g)
    per = 8 // world
    x = x[rank * per:(rank + 1) * per]
    return x, x.sum(1, keepdim=True).sin()


def step_fn(model, b):
    x, y = b
    noise = torch.randn(()) * 0.01  # randomness inside the step comes from the per-step seed
    loss = ((model(x) - y) ** 2).mean() + noise
    return loss, {"noise": noise}


def cfg():
    return TrainConfig(steps=12, batch_size=8, lr=0.05, warmup_steps=3, accumulation=2, log_every=1,
                       checkpoint_every=4)


def train(tmp, stop_after=None, resume=False, run=None):
    torch.manual_seed(0)
    model = Net()
    run = run or Run.create("t", "r", cfg(), root=tmp)
    fit(model, step_fn, batch_fn, cfg(), run, resume=resume, stop_after=stop_after)
    return model, run


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    full, _ = train(tmp_path / "a")
    _, run = train(tmp_path / "b", stop_after=5)  # "killed" after step 5 (checkpoint written)
    resumed, run = train(None, resume=True, run=run)
    for (n, p), (_, q) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(p, q), n
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == list(range(1, 13))  # each step logged exactly once


WORKER = r"""
import sys, torch
sys.path.insert(0, {testdir!r})
from test_resume import Net, batch_fn, step_fn, cfg
from discern.core import dist
from discern.train import fit
dist.init_from_env()
torch.manual_seed(0)
m = Net()
fit(m, step_fn, batch_fn, cfg(), None)
flat = torch.cat([p.detach().flatten() for p in m.parameters()])
torch.save(flat, {out!r} + f"/rank{{dist.rank()}}.pt")
dist.cleanup()
"""


def test_two_process_torchrun_keeps_ranks_identical(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(testdir=str(Path(__file__).parent), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", str(script)], env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0, r1)
    single = Net.__new__(Net)
    torch.manual_seed(0)
    single = Net()
    flat0 = torch.cat([p.detach().flatten() for p in single.parameters()])
    assert not torch.equal(r0, flat0)  # training moved the parameters
