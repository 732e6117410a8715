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


def test_transformers_backend_batches_n_samples():
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(["<eos>"] + list("abcdefghij "))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    hf_tok = GPT2TokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                                       eos_token_id=0, bos_token_id=0))
    calls = []
    orig = model.generate
    model.generate = lambda **kw: calls.append(kw["input_ids"].shape) or orig(**kw)
    be = TransformersBackend(model, hf_tok, "tiny", batch_size=4)
    out = be.generate(["abc", "de", "fgh"], 5, GenParams(temperature=1.0, max_tokens=6, seed=0))
    assert [len(o) for o in out] == [5, 5, 5] and len(calls) == 1  # one call for 3 prompts x 5 samples
    assert out == be.generate(["abc", "de", "fgh"], 5, GenParams(temperature=1.0, max_tokens=6, seed=0))
    greedy = be.generate(["abc"], 3, GenParams(temperature=0.0, max_tokens=6))
    assert len(set(greedy[0])) == 1 and len(greedy[0]) == 3
