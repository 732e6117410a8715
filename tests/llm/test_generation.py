"""Generation backends: the SQLite cache resumes after a crash with no repeated calls; the in-process
backend samples n completions per prompt in one batched call and honours stop strings."""

import hashlib

import pytest
import torch

from discern.llm.generation import CachedBackend, GenParams, TransformersBackend, truncate_at_stop


class _Stub:
    """A deterministic backend: completion = f(prompt, sample index, seed); can crash after k prompts."""

    name = "stub"

    def __init__(self, crash_after: int | None = None):
        self.crash_after, self.seen = crash_after, []

    def generate(self, prompts, n, params):
        out = []
        for p in prompts:
            if self.crash_after is not None and len(self.seen) >= self.crash_after:
                raise RuntimeError("simulated crash")
            self.seen.append(p)
            out.append([hashlib.md5(f"{p}|{i}|{params.seed}".encode()).hexdigest()[:8] for i in range(n)])
        return out


def test_cache_resumes_after_a_crash_with_no_lost_or_repeated_generations(tmp_path):
    prompts = [f"question {i}" for i in range(10)]
    params = GenParams(temperature=0.7, seed=3)
    reference = _Stub().generate(prompts, 3, params)

    crashing = CachedBackend(_Stub(crash_after=5), tmp_path / "cache.sqlite", chunk=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.generate(prompts, 3, params)
    crashing.close()
    # chunks of 2 committed before the crash: prompts 0-3; prompt 4 was in the chunk in flight
    resumed_stub = _Stub()
    resumed = CachedBackend(resumed_stub, tmp_path / "cache.sqlite", chunk=2)
    assert resumed.generate(prompts, 3, params) == reference
    assert resumed_stub.seen == prompts[4:]  # nothing generated twice that was committed
    again = _Stub()
    assert CachedBackend(again, tmp_path / "cache.sqlite").generate(prompts, 3, params) == reference
    assert again.seen == []  # fully cached: no backend call at all


def test_cache_keys_include_every_parameter(tmp_path):
    stub = _Stub()
    cache = CachedBackend(stub, tmp_path / "c.sqlite")
    cache.generate(["q", "q"], 2, GenParams(seed=0))
    assert stub.seen == ["q"]  # a repeated prompt is generated once
    cache.generate(["q"], 2, GenParams(seed=1))
    cache.generate(["q"], 3, GenParams(seed=0))
    cache.generate(["q"], 2, GenParams(seed=0, temperature=0.0))
    assert stub.seen == ["q"] * 4


def test_truncate_at_stop():
    assert truncate_at_stop("Answer: (B)\n\nQuestion: next", ("\n\nQuestion:",)) == "Answer: (B)"
    assert truncate_at_stop("abc", ("x", "")) == "abc"
    assert truncate_at_stop("a.b;c", (";", ".")) == "a"


def test_transformers_backend_batches_n_samples(tiny_lm):
    model, hf_tok = tiny_lm()
    calls = []
    orig = model.generate
    model.generate = lambda **kw: calls.append(kw["input_ids"].shape) or orig(**kw)
    be = TransformersBackend(model, hf_tok, "tiny", batch_size=4, shared_prefix=False)
    out = be.generate(["abc", "de", "fgh"], 5, GenParams(temperature=1.0, max_tokens=6, seed=0))
    assert [len(o) for o in out] == [5, 5, 5] and len(calls) == 1  # one call for 3 prompts x 5 samples
    assert out == be.generate(["abc", "de", "fgh"], 5, GenParams(temperature=1.0, max_tokens=6, seed=0))
    # shared prefix: the prompts are prefilled once at batch 3, then 15 samples decode together
    shapes = []
    hook = model.transformer.register_forward_hook(lambda m, a, kw, o: shapes.append(tuple(kw["position_ids"].shape)),
                                                   with_kwargs=True)
    shared = TransformersBackend(model, hf_tok, "tiny", batch_size=4)
    shared.generate(["abc", "de", "fgh"], 5, GenParams(temperature=1.0, max_tokens=6, seed=0))
    hook.remove()
    assert shapes[0] == (3, 2) and set(shapes[1:]) == {(15, 1)} and 1 <= len(shapes) - 1 <= 6
    greedy = be.generate(["abc"], 3, GenParams(temperature=0.0, max_tokens=6))
    assert len(set(greedy[0])) == 1 and len(greedy[0]) == 3


def test_shared_prefix_samples_exactly_what_recomputing_the_prompt_samples(tiny_lm):
    """Prefilling a prompt once and repeating its cache n times is an optimisation, not an approximation:
    with the same seed, the samples equal those of num_return_sequences (prompt recomputed per sample),
    for left-padded prompts of different lengths."""
    model, tok = tiny_lm()
    model = model.double()
    params = GenParams(temperature=1.0, max_tokens=8, seed=5)
    prompts = ["abcdefg", "de", "hij ab"]
    shared = TransformersBackend(model, tok, "tiny", shared_prefix=True).generate(prompts, 4, params)
    plain = TransformersBackend(model, tok, "tiny", shared_prefix=False).generate(prompts, 4, params)
    assert shared == plain
    assert len({t for row in shared for t in row}) > 3  # real sampling, not one repeated string


def test_stop_pattern_ends_each_sequence_at_its_match(tiny_lm):
    model, tok = tiny_lm()
    be = TransformersBackend(model, tok, "tiny")
    free = be.generate(["abc", "hij"], 6, GenParams(temperature=1.0, max_tokens=12, seed=2))
    stopped = be.generate(["abc", "hij"], 6, GenParams(temperature=1.0, max_tokens=12, seed=2, stop_pattern="[ab]"))
    for f_row, s_row in zip(free, stopped):
        for f, s in zip(f_row, s_row):
            # the same draws up to the first a or b, which ends the completion
            cut = min([i for i in (f.find("a"), f.find("b")) if i >= 0], default=len(f) - 1) + 1
            assert s == f[:cut]
    assert truncate_at_stop("Explanation: x\nAnswer: (B)\nmore", (), r"(?m)^Answer: \(?[A-E]\)?") == \
        "Explanation: x\nAnswer: (B)"
    assert truncate_at_stop("x\n\nQuestion: Answer: (B)", ("\n\nQuestion:",), "Answer: .") == "x"


def test_shared_prefix_attention_is_exact_with_grouped_query_heads(tiny_lm):
    """A Llama with 4 query heads over 2 key/value heads (grouped-query attention, as SmolLM2): the
    shared-prefix samples equal generate()'s with the prompt recomputed per sample, top-p included."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tok = tiny_lm()
    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=12, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                         eos_token_id=0, bos_token_id=0, pad_token_id=0)).double()
    params = GenParams(temperature=0.8, top_p=0.9, max_tokens=10, seed=7)
    prompts = ["abcdefgh", "ji", "cab cab"]
    shared = TransformersBackend(model, tok, "llama", shared_prefix=True).generate(prompts, 5, params)
    plain = TransformersBackend(model, tok, "llama", shared_prefix=False).generate(prompts, 5, params)
    assert shared == plain
    assert model.config._attn_implementation != "discern_cascade"  # restored after sampling


def test_chat_backend_sends_prompts_through_the_chat_template(tiny_lm):
    model, tok = tiny_lm()
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} j{% endfor %}"
    params = GenParams(temperature=0.0, max_tokens=5)
    chat = TransformersBackend(model, tok, "tiny", chat=True)
    plain = TransformersBackend(model, tok, "tiny")
    assert chat.generate(["abc", "de"], 1, params) == plain.generate(["abc j", "de j"], 1, params)
    assert chat.name == "tiny+chat" and plain.name == "tiny"  # distinct cache keys
