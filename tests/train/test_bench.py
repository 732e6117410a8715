"""discern.train.bench: the throughput ratios of a benchmark, their intervals, and its child processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from discern.core.errors import DiscernError
from discern.metrics.stats import bootstrap_ratio_of_means
from discern.train import bench


def test_ratio_of_means_is_scipys_independent_bootstrap():
    rng = np.random.default_rng(0)
    before = 0.150 + 0.010 * rng.random(12)
    ours = 0.050 + 0.004 * rng.random(10)
    r = bootstrap_ratio_of_means(before, ours)
    assert r["estimate"] == pytest.approx(before.mean() / ours.mean(), rel=1e-12)
    assert r["n"] == [12, 10]
    ref = stats.bootstrap((before, ours), lambda b, o, axis=-1: b.mean(axis) / o.mean(axis), paired=False,
                          vectorized=True, method="percentile", n_resamples=10_000, rng=np.random.default_rng(0))
    assert r["ci"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], rel=1e-12)
    lo, hi = r["ci"]
    assert lo < r["estimate"] < hi
    # the interval narrows as the samples grow: it describes the run's precision
    wide = bootstrap_ratio_of_means(before[:4], ours[:4])
    assert wide["ci"][1] - wide["ci"][0] > hi - lo


def test_constant_samples_give_a_point_interval():
    r = bootstrap_ratio_of_means([0.3, 0.3, 0.3], [0.1])
    assert r["estimate"] == pytest.approx(3.0)
    assert r["ci"] == pytest.approx([3.0, 3.0])


@pytest.mark.parametrize("num,den", [([], [1.0]), ([1.0], []), ([1.0, float("nan")], [1.0]), ([1.0], [0.0, 0.0]),
                                     ([[1.0]], [1.0])])
def test_ratio_of_means_refuses_bad_samples(num, den):
    with pytest.raises(ValueError, match="bootstrap_ratio_of_means"):
        bootstrap_ratio_of_means(num, den)


def _raw(t, flops=3e9, peak=1e12):
    return {"t": list(t), "flops": flops, "peak": peak, "batch": 32, "config": "shape"}


def test_summarise_compares_ours_under_mimalloc_with_the_previous_path_under_glibc():
    by_side = {"before/system": _raw([0.30, 0.32, 0.31, 0.29], flops=0.0, peak=1.1e12),
               "ours/mimalloc": _raw([0.10, 0.11, 0.09, 0.10]),
               "ours/system": _raw([0.13, 0.12, 0.14, 0.13], peak=0.9e12)}
    s = bench.summarise(by_side)
    assert s["ratio"] == pytest.approx(0.305 / 0.100)
    assert s["ratio_same_allocator"] == pytest.approx(0.305 / 0.130)
    assert s["allocator_gain"] == pytest.approx(0.130 / 0.100)
    assert s["allocator"] == "mimalloc"
    assert s["examples_per_s_ours"] == pytest.approx(320.0)
    assert s["examples_per_s_before"] == pytest.approx(32 / 0.305)
    # MFU: our step's FLOPs over the highest peak of the processes
    assert s["mfu"] == pytest.approx(3e9 / 0.100 / 1.1e12)
    assert s["mfu_before"] == pytest.approx(3e9 / 0.305 / 1.1e12)
    assert s["steps_timed"] == 4
    for key in ("ratio_ci_95", "ratio_same_allocator_ci_95", "allocator_gain_ci_95"):
        lo, hi = s[key]
        assert lo <= s[key.removesuffix("_ci_95")] <= hi


def test_summarise_without_mimalloc_reports_the_code_alone():
    s = bench.summarise({"before/system": _raw([0.3, 0.3]), "ours/system": _raw([0.1, 0.1])})
    assert s["allocator"] == "system"
    assert s["ratio"] == pytest.approx(3.0) and s["ratio_same_allocator"] == pytest.approx(3.0)
    assert s["allocator_gain"] == pytest.approx(1.0)


def test_rounds_time_each_path_alone_in_the_order_a_b_c_c_b_a():
    sides = [("before", "system"), ("ours", "mimalloc"), ("ours", "system")]
    assert bench.allocator_rounds(quick=True) == sides
    assert bench.allocator_rounds(quick=False) == sides + sides[::-1]


def test_a_failing_child_is_a_one_line_error_with_its_last_line():
    with pytest.raises(DiscernError) as e:
        bench.run_child("discern.core.allocator:no_such_function", True, "ours", "system")
    assert str(e.value) == ("bench child (discern.core.allocator:no_such_function, ours path, system malloc) failed "
                            "with exit status 1: AttributeError: module 'discern.core.allocator' has no attribute "
                            "'no_such_function'")


def test_a_child_refuses_to_run_under_another_malloc():
    import subprocess
    import sys

    from discern.core.allocator import child_env

    out = subprocess.run([sys.executable, "-m", "discern.train.bench", "discern.core.allocator:choice", "ours",
                          "mimalloc"], env=child_env("system"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 3
    assert out.stderr.strip() == "expected the mimalloc malloc, running under system"


def test_measure_path_times_one_path_and_puts_the_current_functions_back():
    from discern import nn as dnn
    from discern.core import build_config
    from discern.electra import PRESETS
    from discern.electra import model as model_mod
    from discern.electra.model import ElectraPretrainer

    cfg = build_config(PRESETS, "tiny")
    vocab = cfg.data.vocab_size

    def build(mc):
        return ElectraPretrainer(mc, vocab, 0, [0, 1, 2, 3, 4], 4)

    before = bench.measure_path(build, cfg, 2, "before", model_mod, "tiny")
    assert len(before["t"]) == 2 and before["flops"] == 0.0 and before["batch"] == cfg.train.batch_size
    assert (model_mod.gumbel_sample, model_mod.row_cross_entropy) == (dnn.gumbel_sample, dnn.row_cross_entropy)
    ours = bench.measure_path(build, cfg, 2, "ours", model_mod, "tiny")
    assert len(ours["t"]) == 2 and ours["flops"] > 0 and ours["peak"] > 0 and ours["config"] == "tiny"
    with pytest.raises(ValueError, match="side must be ours or before, not 'both'"):
        bench.measure_path(build, cfg, 2, "both", model_mod, "tiny")


def test_random_batches_are_shaped_as_the_packer_writes_examples():
    """A fraction SHORT_FRAC of rows cut to a random length and padded, each batch trimmed to its
    longest row: [CLS] first, [SEP] last of every row, id 0 and attention 0 past it."""
    import torch

    batches = bench.random_batches(400, 32, 128, 2048, seed=3)
    lengths = torch.cat([b["attention_mask"].sum(-1) for b in batches])
    short = (lengths < 128).float().mean().item()
    # 12,800 rows at SHORT_FRAC = 0.05 (a cut row keeps length 128 with probability 1/124)
    assert abs(short - bench.SHORT_FRAC * 123 / 124) < 4 * (0.05 * 0.95 / 12_800) ** 0.5
    assert int(lengths.min()) >= 5
    padded = sum(bool((b["attention_mask"] == 0).any()) for b in batches) / 400
    assert abs(padded - (1 - (1 - 0.05 * 123 / 124) ** 32)) < 0.08  # 80% of batches carry a mask
    for b in batches[:50]:
        ids, att = b["input_ids"], b["attention_mask"]
        n = att.sum(-1)
        assert ids.shape == att.shape == b["token_type_ids"].shape and ids.size(1) == int(n.max())
        assert torch.equal(att, (torch.arange(ids.size(1)) < n.unsqueeze(1)).long())
        assert (ids[:, 0] == 2).all() and (ids[torch.arange(32), n - 1] == 3).all()
        assert (ids[att == 0] == 0).all() and (ids[att == 1] != 0).all()
    same = bench.random_batches(2, 32, 128, 2048, seed=3)
    assert torch.equal(same[1]["input_ids"], batches[1]["input_ids"])
    assert all((b["attention_mask"] == 1).all() for b in bench.random_batches(5, 8, 16, 50, short=0.0))


def test_timed_steps_warm_up_on_the_batches_it_times(monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "train_step", lambda model, opt, b, foreach_clip=None: seen.append(b) or 0.25)
    assert bench.timed_steps(None, None, ["a", "b", "c", "d"]) == [0.25] * 4
    assert seen == ["a", "b", "c", "d"] * 2  # one untimed pass over the same shapes first
    seen.clear()
    assert bench.timed_steps(None, None, ["a"]) == [0.25]
    assert seen == ["a"] * bench.WARMUP + ["a"]


def test_the_previous_cross_entropy_gives_the_same_stats_as_the_current_one():
    """The before path's stand-in for ``row_cross_entropy(..., stats=True)``: the same loss,
    logsumexp and accuracy (random fp32 logits: no ties, where argmax and the row maximum differ)."""
    import torch

    from discern.nn import row_cross_entropy

    g = torch.Generator().manual_seed(2)
    z = torch.randn(64, 500, generator=g) * 4
    t = torch.randint(0, 500, (64,), generator=g)
    t[:20] = z[:20].argmax(-1)  # some hits
    ce, lse, hit = bench.cross_entropy_before(z, t, stats=True)
    ce2, lse2, hit2 = row_cross_entropy(z, t, stats=True)
    torch.testing.assert_close(ce, ce2, rtol=0, atol=1e-5)
    torch.testing.assert_close(lse, lse2, rtol=0, atol=1e-5)
    assert torch.equal(hit, hit2) and int(hit.sum()) >= 20
    assert torch.equal(bench.cross_entropy_before(z, t), ce)


def test_summarise_bounds_the_mfu_by_the_step_s_matrix_products_alone():
    by_side = {"before/system": _raw([0.30, 0.30]),
               "ours/mimalloc": {**_raw([0.10, 0.10]), "matmul_seconds": 0.02, "matmul_in_step_seconds": 0.04},
               "ours/system": _raw([0.12, 0.12])}
    s = bench.summarise(by_side)
    assert s["mfu_matmuls_alone"] == pytest.approx(3e9 / 0.02 / 1e12)
    assert s["matmuls_alone_share"] == pytest.approx(0.2)
    assert s["mfu_matmuls_in_step"] == pytest.approx(3e9 / 0.04 / 1e12)
    assert s["matmuls_in_step_share"] == pytest.approx(0.4)
    # the previous path's processes carry no replay: the keys are left out, not zero
    assert "mfu_matmuls_alone" not in bench.summarise({"before/system": _raw([0.3]), "ours/system": _raw([0.1])})


def test_matmul_replay_finds_every_product_the_flop_counter_counts():
    from discern.core import build_config
    from discern.electra import PRESETS
    from discern.electra.model import ElectraPretrainer

    cfg = build_config(PRESETS, "tiny")
    torch.manual_seed(0)
    model = ElectraPretrainer(cfg.model, cfg.data.vocab_size, 0, [0, 1, 2, 3, 4], 4)
    batch = bench.random_batches(1, 4, 16, cfg.data.vocab_size)[0]
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        counted = bench.step_flops(model, batch)
    torch.manual_seed(1)  # the same masking, so the same products
    r = bench.matmul_replay(model, batch, repeats=2)
    assert r["flops"] == counted
    assert r["calls"] > 0 and r["seconds"] > 0
    assert all(p.grad is None for p in model.parameters())


def test_matmul_in_step_times_only_the_products_of_real_steps(monkeypatch):
    from discern.core import build_config
    from discern.electra import PRESETS
    from discern.electra.model import ElectraPretrainer
    from discern.train.optim import ElectraAdam

    cfg = build_config(PRESETS, "tiny")
    torch.manual_seed(0)
    model = ElectraPretrainer(cfg.model, cfg.data.vocab_size, 0, [0, 1, 2, 3, 4], 4)
    opt = ElectraAdam(model.parameters(), lr=1e-3)
    batches = bench.random_batches(2, 4, 16, cfg.data.vocab_size)
    calls = bench.matmul_replay(model, batches[0], repeats=1)["calls"]
    before = [p.detach().clone() for p in model.parameters()]
    # a clock that advances 1 s per reading: a timed product reads it just before and just after
    # itself (1 s each); the step's own readings fall outside those intervals
    clock = iter(range(10**6))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: float(next(clock)))
    assert bench.matmul_in_step(model, opt, batches) == float(calls)
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # real optimiser steps


def test_a_replayed_operand_keeps_shape_strides_and_dtype():
    t = torch.zeros(3, 1).to(torch.bfloat16).expand(3, 5).t()  # a broadcast, transposed view
    like = bench._like(t)
    assert (like.shape, like.stride(), like.dtype) == (t.shape, t.stride(), t.dtype)
    aten, z = torch.ops.aten, torch.zeros
    assert bench._gemm_flops(aten.addmm.default, (z(4), z(2, 3), z(3, 4)), {}, z(2, 4)) == 2 * 2 * 3 * 4
    assert bench._gemm_flops(aten.bmm.default, (z(5, 2, 3), z(5, 3, 4)), {}, z(5, 2, 4)) == 2 * 5 * 2 * 3 * 4
    assert bench._gemm_flops(aten.baddbmm.default, (z(5, 2, 4), z(5, 2, 3), z(5, 3, 4)), {}, z(5, 2, 4)) == 240
