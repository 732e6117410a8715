"""``discern bench medqa`` prints the {"bench", "ratios", "goals", "details"} convention.  The model is
replaced by a scripted backend, so this checks the shape and the arithmetic, not the speed."""

import pytest

from discern.reproduce.registry import check_bench


class _Tok:
    def __call__(self, text):
        return type("Enc", (), {"input_ids": text.split()})()


class _Backend:
    def __init__(self, model, tok, name, shared_prefix=True, **kw):
        self.name = name

    def generate(self, prompts, n, params):
        return [["Because. Answer: (A)"] * n for _ in prompts]


def test_bench_json_convention(monkeypatch):
    import discern.llm
    import discern.llm.generation
    from discern.medqa import bench

    monkeypatch.setattr(discern.llm, "load_causal_lm", lambda name, dtype=None: (object(), _Tok()))
    monkeypatch.setattr(discern.llm.generation, "TransformersBackend", _Backend)
    out = bench.bench(quick=True)
    check_bench(out, "medqa")
    ways = out["details"]["ways"]
    qpm = {k: v["questions_per_minute"] for k, v in ways.items()}
    assert out["ratios"] == pytest.approx({
        "shared_prefix_vs_one_call_per_sample": qpm["batched_shared_prefix"] / qpm["one_call_per_sample"],
        "shared_prefix_vs_batched_recompute": qpm["batched_shared_prefix"] / qpm["batched_recompute"]})
    # one question: 11 stage-1 and 33 stage-2 generations of 3 words each
    assert all(v["generated_tokens"] == 3 * 44 for v in ways.values())
    assert out["goals"] == {}
