"""Shared pieces of the pre-training throughput benchmarks (ELECTRA, Electric).

- the machine: its CPU name and a bf16 matmul peak measured in the same run;
- model FLOPs of one training step counted by ``torch.utils.flop_counter`` (every matmul and
  attention product of the forward and backward passes), so MFU = FLOPs / time / peak needs no
  hand formula;
- two bounds on that MFU from the step's own matrix products: each timed alone
  (:func:`matmul_replay`) and each timed where it runs in the step (:func:`matmul_in_step`), the
  MFU the step would reach if nothing but its products took time;
- the previous training path, kept as the in-run baseline: PyTorch SDPA attention (whose CPU
  flash kernel has a slow backward), replacements drawn by Gumbel-max (one exponential draw and
  logarithm per vocabulary entry), accuracy by ``argmax`` over the vocabulary, cross-entropy on an
  fp32 copy of the logits, and an Adam that loops over parameters in Python;
- the previous path ran under glibc's malloc, ours runs under mimalloc (:mod:`discern.core.allocator`):
  :func:`allocator_bench` times each path alone in a child process of its own (a path alternating
  with another in one process runs on the heap the other left, which flatters it under glibc's
  malloc) and reports ours under mimalloc against the previous path under glibc's malloc, with
  the code's share (both under glibc's malloc) and the allocator's share apart.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from typing import Callable

import torch

from .optim import ElectraAdam


#: the encoder shape of ELECTRA's and Electric's quick presets when the 3x throughput goal was
#: set (both have since become smaller); each paper's bench also measures its model at this shape
GOAL_ENCODER = {"layers": 4, "hidden": 128, "embedding": 128, "heads": 2, "ffn": 512}
GOAL_VOCAB = 8192


def matmul_peak(dtype: torch.dtype = torch.bfloat16, n: int = 2048, repeats: int = 20) -> float:
    """FLOP/s of an ``n^3`` matmul in ``dtype`` (best of ``repeats``).  On shared virtual machines
    this drifts by up to 3x over minutes: benchmarks measure it before and after their timed
    steps and keep the higher value, so an MFU errs low."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_info() -> dict:
    """What a training run's speed depends on besides its configuration: CPU, threads, torch, malloc."""
    from discern.core.allocator import active

    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "allocator": active()}


def gumbel_max_before(logits: torch.Tensor, temperature: float = 1.0, generator=None) -> torch.Tensor:
    """The previous sampler: ``argmax(logits/T - log E)``, ``E ~ Exponential(1)`` per entry."""
    with torch.no_grad():
        x = logits.detach().float() / temperature
        e = torch.empty(x.shape).exponential_(generator=generator).clamp_min_(1e-20).to(x.device)
        return (x - e.log_()).argmax(-1)


def cross_entropy_before(logits: torch.Tensor, targets: torch.Tensor, stats: bool = False):
    """The previous per-row loss: ``F.cross_entropy`` on an fp32 copy of the logits; with
    ``stats`` (as :func:`discern.nn.row_cross_entropy`) also the previous accuracy, ``argmax``
    over the vocabulary, and each row's logsumexp from the loss and the target's logit (a
    gather: less than the previous path spent, which took a logsumexp of Electric's noised rows)."""
    ce = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    if not stats:
        return ce
    with torch.no_grad():
        hit = argmax_hit_before(logits, targets).bool()
        lse = ce.detach() + logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()
    return ce, lse, hit


def vocab_cross_entropy_before(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                               keep: torch.Tensor | None = None):
    """The previous vocabulary head and loss (:func:`discern.nn.ops.vocab_cross_entropy`'s
    interface): ``F.linear``, then :func:`cross_entropy_before` of every row (padding rows with
    target 0, their losses dropped), the kept rows read from the logits."""
    z = torch.nn.functional.linear(x, weight, bias)
    C = targets.numel()
    all_targets = torch.cat([targets, targets.new_zeros(z.size(0) - C)])
    ce, lse, hit = (t[:C] for t in cross_entropy_before(z, all_targets, stats=True))
    kept = z.detach()[:C][keep] if keep is not None else z.new_empty(0, z.size(-1))
    return ce, lse, hit, kept


def argmax_hit_before(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The previous accuracy metric: ``argmax`` over the vocabulary, compared with the target."""
    with torch.no_grad():
        return (logits.argmax(-1) == targets).float()


class LoopAdam(ElectraAdam):
    """The previous optimiser step: the same update, one parameter at a time in Python."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v, g = state["step"], state["exp_avg"], state["exp_avg_sq"], p.grad
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                if group["bias_correction"]:
                    update = (m / (1 - b1**t)).div_((v / (1 - b2**t)).sqrt_().add_(eps))
                else:
                    update = m / v.sqrt().add_(eps)
                if wd != 0:
                    update.add_(p, alpha=wd)
                p.add_(update, alpha=-lr)


def train_step(model, opt, batch: dict, bf16: bool = True, foreach_clip: bool | None = None) -> float:
    """One optimiser step of ``model(batch) -> (loss, metrics)``; returns its seconds.
    ``foreach_clip``: the gradient norm in one foreach call (as :func:`discern.train.fit` does
    now) rather than one call per parameter (PyTorch's default on the CPU, the previous path)."""
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = model(batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=foreach_clip)
    opt.step()
    return time.perf_counter() - t


def step_flops(model, batch: dict) -> float:
    """FLOPs of one forward + backward of ``model(batch)``, counted by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss, _ = model(batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


#: the matrix-product kernels of a training step that :func:`matmul_replay` records and replays
GEMMS = ("mm", "addmm", "bmm", "baddbmm")


def _gemm_kernels() -> set:
    """The op overloads of :data:`GEMMS`."""
    return {getattr(torch.ops.aten, name).default for name in GEMMS}


def _gemm_flops(func, args: tuple, kwargs: dict, out: torch.Tensor) -> int:
    """FLOPs of one product, by the formula torch's flop counter uses for it (2 M K N, times the
    batch of a batched product)."""
    from torch.utils.flop_counter import flop_registry

    return int(flop_registry[func.overloadpacket](*args, out_val=out, **kwargs))


def _like(t: torch.Tensor) -> torch.Tensor:
    """A tensor of ``t``'s shape, strides (broadcast strides of 0 included) and dtype, of random values."""
    span = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()) if n > 0)
    return torch.randn(span).to(t.dtype).as_strided(t.shape, t.stride())


def matmul_replay(model, batch: dict, repeats: int = 10, bf16: bool = True) -> dict:
    """The matrix products of one forward and backward of ``model(batch)`` (under bf16 autocast),
    each replayed alone on random operands of its shape, strides and dtype, best of ``repeats``.

    Returns ``calls`` (products in the step), ``flops`` (their 2 M K N, which torch's flop counter
    also counts) and ``seconds`` (the sum over the step's products of each one's best time alone:
    what the step would take if it were its matrix products and nothing else, with warm caches).
    So ``flops / seconds / peak`` bounds the MFU any implementation of the step's other work
    (elementwise passes, norms, softmax, the optimiser, per-call overhead) could reach with these
    products on this machine, and ``seconds / step`` is the least share of the step they take."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    kernels = _gemm_kernels()
    seen: Counter = Counter()
    operands: dict = {}

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in kernels:
                key = (func, tuple((tuple(a.shape), a.stride(), a.dtype) if isinstance(a, torch.Tensor) else a
                                   for a in args), tuple(sorted(kwargs.items())))
                seen[key] += 1
                operands.setdefault(key, args)
            return func(*args, **kwargs)

    with Record(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = model(batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    seconds, flops = 0.0, 0
    for key, n in seen.items():
        func, kwargs = key[0], dict(key[2])
        args = tuple(_like(a) if isinstance(a, torch.Tensor) else a for a in operands[key])
        for _ in range(2):
            out = func(*args, **kwargs)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            func(*args, **kwargs)
            best = min(best, time.perf_counter() - t)
        seconds += n * best
        flops += n * _gemm_flops(func, args, kwargs, out)
    return {"calls": sum(seen.values()), "flops": float(flops), "seconds": seconds}


def matmul_in_step(model, opt, batches: list[dict], foreach_clip: bool | None = None) -> float:
    """Seconds per training step spent inside the step's matrix products (:data:`GEMMS`), each
    call timed where it runs, in :func:`train_step` on each of ``batches`` (mean over them).
    Against :func:`matmul_replay`'s seconds this shows how much slower the products run in the
    step than alone (their operands no longer in cache); the dispatch of every other operation
    through Python while this runs makes the step itself slower, so its length is not taken here."""
    from torch.utils._python_dispatch import TorchDispatchMode

    kernels = _gemm_kernels()
    total = [0.0]

    class Time(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func not in kernels:
                return func(*args, **kwargs)
            t = time.perf_counter()
            out = func(*args, **kwargs)
            total[0] += time.perf_counter() - t
            return out

    with Time():
        for b in batches:
            train_step(model, opt, b, foreach_clip=foreach_clip)
    return total[0] / len(batches)


#: the fraction of pre-training examples cut to a random length in [5, L] by the packer
#: (:mod:`discern.data.pretraining`; the official code's ``short_seq_prob``): on the quick corpus
#: 94.5% of examples are full (mean length 125.2 of 128), and 84% of batches of 32 hold a padded row
SHORT_FRAC = 0.05


def random_batches(n: int, B: int, L: int, vocab: int, seed: int = 1, short: float = SHORT_FRAC) -> list[dict]:
    """``n`` batches of ``B`` random sequences shaped as the packer writes them: [CLS] ... [SEP]
    (ids 2 and 3, the rest drawn from ``5 .. vocab - 1``), a fraction ``short`` of the rows cut to a
    random length in [5, L] and padded with id 0 (attention mask 0), each batch trimmed to its
    longest row (as :meth:`discern.data.pretraining.PretrainingData.batch` does).  A batch with a
    padded row makes the encoders apply an attention mask, as in training."""
    g = torch.Generator().manual_seed(seed)
    out = []
    pos = torch.arange(L).unsqueeze(0)
    for _ in range(n):
        ids = torch.randint(5, vocab, (B, L), generator=g)
        lengths = torch.full((B,), L)
        cut = torch.rand(B, generator=g) < short
        lengths[cut] = torch.randint(5, L + 1, (int(cut.sum()),), generator=g)
        real = pos < lengths.unsqueeze(1)
        ids[:, 0] = 2
        ids[torch.arange(B), lengths - 1] = 3
        ids[~real] = 0
        n_real = int(lengths.max())
        out.append({"input_ids": ids[:, :n_real].contiguous(), "attention_mask": real[:, :n_real].long(),
                    "token_type_ids": torch.zeros(B, n_real, dtype=torch.long)})
    return out


def measure_path(build: Callable, cfg, steps: int, side: str, model_module, describe: str) -> dict:
    """Seconds of each of ``steps`` training steps of one path after warm-up steps, on random
    batches of ``cfg``'s shape, with the FLOPs of our path's step, the bf16 matmul peak and the batch size.

    ``build(model_config)`` makes the pre-trainer; ``side`` is ``ours`` (``cfg.model`` as it is, the
    fused Adam, the gradient norm in one foreach call) or ``before`` (dropout 0.1, SDPA attention,
    an fp32 residual stream, and ``model_module``'s sampling, accuracy and cross-entropy, and its
    vocabulary head and head-with-loss where it has them, replaced by the previous ones while it
    runs, the per-parameter Adam loop)."""
    import dataclasses

    from discern.nn import gumbel_sample, row_cross_entropy

    from .optim import param_groups

    if side not in ("ours", "before"):
        raise ValueError(f"side must be ours or before, not {side!r}")
    now = side == "ours"
    vocab, B, L, tc = cfg.data.vocab_size, cfg.train.batch_size, cfg.data.seq_len, cfg.train
    model_cfg = cfg.model if now else dataclasses.replace(cfg.model, dropout=0.1, attention_dropout=0.1,
                                                          attention="sdpa", bf16_stream=False)
    torch.manual_seed(0)
    model = build(model_cfg)
    opt = (ElectraAdam if now else LoopAdam)(param_groups(model, tc.weight_decay), lr=tc.lr, bias_correction=True)
    batches = random_batches(steps, B, L, vocab)
    # a vocabulary head with its bias in the product, and one fused with its loss, where the module has them
    heads = {name: getattr(model_module, name) for name in ("vocab_linear", "vocab_cross_entropy")
             if hasattr(model_module, name)}
    if not now:
        model_module.gumbel_sample, model_module.row_cross_entropy = gumbel_max_before, cross_entropy_before
        previous = {"vocab_linear": torch.nn.functional.linear, "vocab_cross_entropy": vocab_cross_entropy_before}
        for name in heads:
            setattr(model_module, name, previous[name])
    peak_start = matmul_peak(torch.bfloat16)
    try:
        times = timed_steps(model, opt, batches, foreach_clip=True if now else None)
    finally:
        model_module.gumbel_sample, model_module.row_cross_entropy = gumbel_sample, row_cross_entropy
        for name, fn in heads.items():
            setattr(model_module, name, fn)
    flops = 0.0
    if now:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            flops = step_flops(model, batches[0])
        matmuls = matmul_replay(model, batches[0])["seconds"]
        in_step = matmul_in_step(model, opt, batches, foreach_clip=True)
    peak = max(peak_start, matmul_peak(torch.bfloat16))  # the machine's speed drifts: keep the higher
    out = {"t": times, "flops": flops, "peak": peak, "batch": B, "config": describe}
    return out | ({"matmul_seconds": matmuls, "matmul_in_step_seconds": in_step} if now else {})


WARMUP = 3


def timed_steps(model, opt, batches: list[dict], foreach_clip: bool | None = None) -> list[float]:
    """Seconds of the training step on each of ``batches``, after an untimed pass over the same
    batches (at least :data:`WARMUP` steps).  The warm-up pass is the steady state of a training
    run: its first steps fault in the pages the allocator will reuse (under mimalloc the first
    step takes twice as long as the tenth), and oneDNN compiles a matrix-product kernel the first
    time it meets a shape (Electric's cloze head has one row per candidate token, a count that
    changes with padding: about 17 ms more, forward and backward, for the first step at a new
    count, which a run of thousands of steps pays once per count)."""
    warm = list(batches)
    while len(warm) < WARMUP:
        warm += batches
    for b in warm:
        train_step(model, opt, b, foreach_clip=foreach_clip)
    return [train_step(model, opt, b, foreach_clip=foreach_clip) for b in batches]


#: the three measured processes: (training path, malloc)
SIDES = (("before", "system"), ("ours", "mimalloc"), ("ours", "system"))


def allocator_rounds(quick: bool) -> list[tuple[str, str]]:
    """The child processes of :func:`allocator_bench`, in order: each of :data:`SIDES` once
    (``quick``) or twice, the second time in reverse order, so that a drift of the machine's speed
    falls on all; the previous path and ours alone where mimalloc is not installed."""
    from discern.core.allocator import library

    sides = list(SIDES) if library() is not None else [("before", "system"), ("ours", "system")]
    return sides if quick else sides + sides[::-1]


def run_child(target: str, quick: bool, side: str, kind: str, timeout: float = 1800) -> dict:
    """``target`` (``"module:function"``, called as ``function(quick, side)``) in a new Python process
    under ``kind``'s malloc; returns its result (``{shape: raw}``).  The child checks that it runs
    under the malloc it was given."""
    from discern.core.allocator import child_env
    from discern.core.errors import DiscernError

    cmd = [sys.executable, "-m", "discern.train.bench", target, side, kind] + (["--quick"] if quick else [])
    p = subprocess.run(cmd, env=child_env(kind), capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise DiscernError(f"bench child ({target}, {side} path, {kind} malloc) failed with exit status "
                           f"{p.returncode}: {tail}")
    return json.loads(lines[-1])


def allocator_bench(target: str, quick: bool) -> dict:
    """Time each training path alone in its own process (:func:`allocator_rounds`), so that no path
    runs on a heap the other left behind, and summarise each shape the target measures with
    :func:`summarise` (``{shape: summary}``)."""
    sides: dict = {}
    for side, kind in allocator_rounds(quick):
        for shape, raw in run_child(target, quick, side, kind).items():
            one = sides.setdefault(shape, {}).setdefault(f"{side}/{kind}", {"t": [], "peak": 0.0})
            one["t"] += raw["t"]
            one["peak"] = max(one["peak"], raw["peak"])
            one.update({k: raw[k] for k in ("flops", "batch", "config")})
            for key in ("matmul_seconds", "matmul_in_step_seconds"):  # of our path: keep a process's lower sum
                if key in raw:
                    one[key] = min(one.get(key, float("inf")), raw[key])
    return {shape: summarise(by_side) for shape, by_side in sides.items()}


#: the products' seconds of our step in a child's result: alone (:func:`matmul_replay`) and in the step
MATMUL_KEYS = (("alone", "matmul_seconds"), ("in_step", "matmul_in_step_seconds"))


def summarise(by_side: dict) -> dict:
    """The step seconds of the processes of one shape (``{"before/system": raw, "ours/mimalloc": raw,
    "ours/system": raw}``; ``raw`` has ``t``, ``flops`` (of our path's step), ``peak``, ``batch``,
    ``config``) as ratios of examples/s, each with a percentile bootstrap interval over the steps of
    the processes compared (independent samples, :func:`discern.metrics.stats.bootstrap_ratio_of_means`):

    - ``ratio``: ours under mimalloc over the previous path under glibc's malloc (ours under glibc's
      where mimalloc is not installed);
    - ``ratio_same_allocator``: both under glibc's malloc (the code's share);
    - ``allocator_gain``: ours under mimalloc over ours under glibc's malloc;
    - ``mfu`` / ``mfu_before``: model FLOPs per second over the highest bf16 matmul peak of the
      processes, for ours (as in ``ratio``) and the previous path;
    - ``mfu_matmuls_alone``: the MFU of our step if it were only its matrix products, each at its
      speed alone (``matmul_seconds`` of :func:`matmul_replay`), the most any treatment of the
      rest of the step could reach with these products; ``matmuls_alone_share``: those seconds
      over our mean step (at least the share of the step the products take);
    - ``mfu_matmuls_in_step`` / ``matmuls_in_step_share``: the same with the products' seconds as
      timed inside the step (``matmul_in_step_seconds`` of :func:`matmul_in_step`)."""
    from discern.metrics.stats import bootstrap_ratio_of_means

    before, ours_sys = by_side["before/system"], by_side["ours/system"]
    ours = by_side.get("ours/mimalloc", ours_sys)
    head = bootstrap_ratio_of_means(before["t"], ours["t"])
    same = bootstrap_ratio_of_means(before["t"], ours_sys["t"])
    gain = bootstrap_ratio_of_means(ours_sys["t"], ours["t"])
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    peak = max(one["peak"] for one in by_side.values())
    flops, batch = ours["flops"], ours["batch"]
    ci = lambda r: [round(x, 3) for x in r["ci"]]  # noqa: E731
    return {
        "ratio": head["estimate"], "ratio_ci_95": ci(head), "ratio_ci_test": head["test"],
        "ratio_same_allocator": same["estimate"], "ratio_same_allocator_ci_95": ci(same),
        "allocator": "mimalloc" if "ours/mimalloc" in by_side else "system",
        "allocator_gain": gain["estimate"], "allocator_gain_ci_95": ci(gain),
        "examples_per_s_ours": batch / mean(ours["t"]), "examples_per_s_ours_system_malloc": batch / mean(ours_sys["t"]),
        "examples_per_s_before": batch / mean(before["t"]),
        "mfu": flops / mean(ours["t"]) / peak, "mfu_before": flops / mean(before["t"]) / peak,
        **{f"mfu_matmuls_{where}": flops / ours[key] / peak for where, key in MATMUL_KEYS if ours.get(key)},
        **{f"matmuls_{where}_share": ours[key] / mean(ours["t"]) for where, key in MATMUL_KEYS if ours.get(key)},
        "gflop_per_step": flops / 1e9, "matmul_peak_gflops_bf16": peak / 1e9,
        "steps_timed": len(ours["t"]), "config": ours["config"],
    }


def rounded(summary: dict, digits: int = 4) -> dict:
    """``summary`` with its floats rounded, for a bench's printed details."""
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in summary.items()}


def _child_main(argv: list[str]) -> int:
    """``python -m discern.train.bench MODULE:FUNCTION SIDE KIND [--quick]``: prints
    ``FUNCTION(quick, SIDE)``'s JSON result; exits 3 when this process does not run under ``KIND``'s
    malloc."""
    import importlib

    from discern.core.allocator import active

    target, side, kind, quick = argv[0], argv[1], argv[2], "--quick" in argv[3:]
    if active() != kind:
        print(f"expected the {kind} malloc, running under {active()}", file=sys.stderr)
        return 3
    module, function = target.split(":")
    print(json.dumps(getattr(importlib.import_module(module), function)(quick, side)))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
