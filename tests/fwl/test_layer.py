import copy

import pytest
import torch
import torch.nn.functional as F

from discern.fwl.layer import FastWeightBlock, causal_linear_attention



@pytest.fixture(autouse=True)
def float64():
    """The equivalence is checked in float64; the default dtype is restored for other tests."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _block(seed=0, chunks=1, V=11, D=6, S=4, residual=False):
    torch.manual_seed(seed)
    unembed = torch.nn.Linear(S, V, bias=False)
    block = FastWeightBlock(D, S, unembed, attn_chunks=chunks, residual=residual)
    with torch.no_grad():  # non-trivial LayerNorm and biases
        block.norm.weight.add_(0.3 * torch.randn(S))
        block.norm.bias.add_(0.1 * torch.randn(S))
        block.dense1.bias.add_(0.1 * torch.randn(4 * S))
        for n, p in block.steps.items():
            p.fill_(0.01)
    return block


def _inputs(B=2, T=8, D=6, V=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g)
    labels = torch.randint(0, V, (B, T), generator=g)
    w = torch.ones(B, T)
    w[:, -1] = 0.0  # no next token for the last position
    w[1, 5:] = 0.0  # padding in the second sequence
    return x, labels, w


@pytest.mark.parametrize("residual", [False, True])
def test_fast_output_equals_one_sgd_step_on_the_preceding_tokens(residual):
    D = 4 if residual else 6
    block = _block(D=D, residual=residual)
    x, labels, w = _inputs(D=D)
    fast = block(x, labels, w)
    total = w.sum()
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            ref = copy.deepcopy(block)
            logits, _ = ref.slow(x[i:i + 1, :j + 1])
            ce = F.cross_entropy(logits[0, :j], labels[i, :j], reduction="none")
            loss = (ce * w[i, :j]).sum() / total  # the preceding tokens only, normalised by the batch total
            params = [ref.dense1.weight, ref.dense1.bias, ref.dense2.weight, ref.dense2.bias,
                      ref.norm.weight, ref.norm.bias]
            if j > 0:
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                with torch.no_grad():
                    for p_, g_ in zip(params, grads):
                        if g_ is not None:
                            p_ -= 0.01 * g_
            with torch.no_grad():
                expected = ref.slow(x[i:i + 1, j:j + 1])[0][0, 0]
            assert torch.allclose(fast[i, j], expected, atol=1e-5, rtol=0), (i, j)


def test_no_position_sees_a_later_token_or_label():
    block = _block()
    x, labels, w = _inputs()
    base = block(x, labels, w).detach()
    x2, labels2 = x.clone(), labels.clone()
    x2[:, 5:] += 1.0
    labels2[:, 4:] = (labels2[:, 4:] + 1) % 11  # the label at t is the token t+1
    out = block(x2, labels2, w).detach()
    assert torch.allclose(out[:, :5], base[:, :5], atol=1e-12)
    assert not torch.allclose(out[:, 6:], base[:, 6:])


def test_inner_loss_is_normalised_by_the_whole_batch_weight():
    """Two copies of the batch halve every inner gradient: twice the step sizes give the same output."""
    block = _block()
    x, labels, w = _inputs()
    once = block(x, labels, w)
    with torch.no_grad():
        for p in block.steps.values():
            p.mul_(2.0)
    twice = block(torch.cat([x, x]), torch.cat([labels, labels]), torch.cat([w, w]))
    assert torch.allclose(twice[:2], once, atol=1e-12) and torch.allclose(twice[2:], once, atol=1e-12)
    # zero weights (padding, last token) contribute nothing: changing their labels changes no output
    labels2 = labels.clone()
    labels2[1, 5:] = (labels2[1, 5:] + 3) % 11
    labels2[0, -1] = (labels2[0, -1] + 3) % 11
    assert torch.allclose(block(x, labels2, w), block(x, labels, w), atol=1e-12)


@pytest.mark.parametrize("chunks", [2, 3, 4, 8])
def test_mixed_chunk_attention_equals_quadratic(chunks):
    g = torch.Generator().manual_seed(0)
    for T in (8, 7):  # 3 chunks of 8 and any chunks of 7 leave a padded tail
        q, k, v = (torch.randn(2, T, d, generator=g) for d in (3, 3, 5))
        out = causal_linear_attention(q, k, v, chunks)
        assert out.shape == (2, T, 5)
        assert torch.allclose(out, causal_linear_attention(q, k, v, 1), atol=1e-12)
    x, labels, w = _inputs()
    assert torch.allclose(_block(chunks=chunks)(x, labels, w), _block(chunks=1)(x, labels, w), atol=1e-12)


def test_outer_gradient_reaches_slow_weights_and_step_sizes():
    block = _block()
    x, labels, w = _inputs()
    out = block(x, labels, w)
    F.cross_entropy(out.flatten(0, 1), labels.flatten()).backward()
    for name, p in block.steps.items():
        assert p.grad is not None and p.grad.abs() > 0, name
    assert block.dense1.weight.grad.abs().sum() > 0 and block.unembed.weight.grad.abs().sum() > 0


def _plain_block(block):
    """The same block as ordinary torch modules, with no fast-weight machinery at all."""
    def f(x):
        h = block.norm(block.dense2(F.relu(block.dense1(x)) ** 2))
        return block.unembed(x + h if block.residual else h)
    return f


@pytest.mark.parametrize("residual", [False, True])
def test_frozen_step_sizes_give_exactly_the_block_without_fast_weights(residual):
    """The control: step sizes fixed at 0 make the fast pass add exactly nothing, in the forward
    pass and in every gradient, and no gradient reaches the frozen step sizes."""
    D = 4 if residual else 6
    block = _block(D=D, residual=residual, chunks=2).freeze_steps()
    assert not block.fast and all(float(p) == 0.0 and not p.requires_grad for p in block.steps.values())
    slow = copy.deepcopy(block)
    x, labels, w = _inputs(D=D)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = block(x1, labels, w)
    ref = slow.slow(x2)[0]
    assert torch.equal(out, ref)  # bit for bit
    assert torch.allclose(out, _plain_block(slow)(x), atol=1e-12, rtol=0)
    F.cross_entropy(out.flatten(0, 1), labels.flatten()).backward()
    F.cross_entropy(ref.flatten(0, 1), labels.flatten()).backward()
    assert all(p.grad is None for p in block.steps.values())
    for (name, p), q in zip(block.named_parameters(), slow.parameters()):
        if not name.startswith("steps."):
            assert p.grad is not None and torch.equal(p.grad, q.grad), name
    assert torch.equal(x1.grad, x2.grad)  # the body below receives the same gradient too
    # with the same weights but live step sizes the output differs: the update is what is switched off
    live = copy.deepcopy(slow)
    for p in live.steps.values():
        p.requires_grad_(True)
        with torch.no_grad():
            p.fill_(0.01)
    assert not torch.allclose(live(x, labels, w)[:, 1:], ref[:, 1:], atol=1e-6)


def test_an_optimiser_step_leaves_frozen_step_sizes_at_zero():
    block = _block().freeze_steps()
    opt = torch.optim.AdamW([p for p in block.parameters() if p.requires_grad], lr=0.1)
    assert {id(p) for g in opt.param_groups for p in g["params"]}.isdisjoint(id(p) for p in block.steps.values())
    x, labels, w = _inputs()
    F.cross_entropy(block(x, labels, w).flatten(0, 1), labels.flatten()).backward()
    before = block.dense1.weight.detach().clone()
    opt.step()
    assert all(float(p) == 0.0 for p in block.steps.values())
    assert not torch.equal(block.dense1.weight, before)
