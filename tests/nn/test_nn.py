import pytest
import torch
from scipy.stats import chisquare

from discern.core import ConfigError
from discern.nn import attention_kernel, gumbel_sample, top_hit
from discern.nn.sampling import default_block


@pytest.mark.parametrize("V,block", [(1000, None), (10, 3), (64, 8), (7, 1), (5, 5)])
def test_two_level_sample_has_the_softmax_law_and_skips_zero_mass(V, block):
    g = torch.Generator().manual_seed(V)
    logits = torch.randn(V, generator=g) * 2
    logits[V // 4: V // 2] = -float("inf")  # a run of zero-mass entries (whole blocks for V=1000)
    R = 200_000
    s = gumbel_sample(logits.expand(R, V), generator=torch.Generator().manual_seed(0), block=block)
    counts = torch.bincount(s, minlength=V)
    assert counts.numel() == V  # never an index past the vocabulary (padding is never drawn)
    p = torch.softmax(logits.double(), -1)
    assert int(counts[p == 0].sum()) == 0
    live = p > 0
    expected = (p[live] * R).numpy()
    assert chisquare(counts[live].double().numpy(), expected * R / expected.sum()).pvalue > 1e-3


@pytest.mark.parametrize("V,block", [(2048, 32), (8192, 64), (1000, 25), (7, 3), (50257, 224), (1, 1)])
def test_default_block_divides_the_vocabulary_when_a_divisor_is_near_its_root(V, block):
    assert default_block(V) == block
    assert (V % block == 0) == (V not in (7, 50257))


def test_block_choice_and_bf16_input_keep_the_draws():
    # the same uniforms pick the same entries with padded blocks of 45 and unpadded ones of 32,
    # and bf16 logits give the draws of their fp32 copy (the softmax reads them in fp32)
    logits = (torch.randn(608, 2048, generator=torch.Generator().manual_seed(5)) * 3).bfloat16()
    a = gumbel_sample(logits, generator=torch.Generator().manual_seed(9))
    b = gumbel_sample(logits.float(), generator=torch.Generator().manual_seed(9), block=45)
    assert torch.equal(a, b)


def test_sample_keeps_leading_shape_and_one_uniform_per_row():
    logits = torch.randn(3, 5, 40)
    a = gumbel_sample(logits, generator=torch.Generator().manual_seed(3))
    assert a.shape == (3, 5) and a.dtype == torch.long
    g = torch.Generator().manual_seed(3)
    gumbel_sample(logits, generator=g)
    assert torch.equal(g.get_state(), _after_uniforms(3, 15))  # 15 rows: 15 doubles drawn


def _after_uniforms(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    torch.rand(n, 1, generator=g, dtype=torch.float64)
    return g.get_state()


def test_a_one_hot_row_always_gives_its_token():
    logits = torch.full((50, 300), -float("inf"))
    where = torch.arange(50) * 6
    logits[torch.arange(50), where] = 0.0
    assert torch.equal(gumbel_sample(logits, generator=torch.Generator().manual_seed(1)), where)


def test_top_hit_equals_argmax_accuracy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 19, 500, generator=g)
    targets = torch.randint(0, 500, (64, 19), generator=g)
    targets[:, :5] = logits[:, :5].argmax(-1)  # some hits
    assert torch.equal(top_hit(logits, targets), (logits.argmax(-1) == targets).float())
    assert top_hit(logits, targets)[:, :5].min() == 1.0


def test_attention_kernel_choice():
    assert attention_kernel("eager") == "eager" and attention_kernel("sdpa") == "sdpa"
    # auto on the CPU: the fused kernel for the model types checked against eager, eager for others
    assert attention_kernel("auto", cuda=False, model_type="electra") == "discern_fused"
    assert attention_kernel("auto", cuda=False, model_type="bert") == "discern_fused"
    assert attention_kernel("auto", cuda=False, model_type="modernbert") == "eager"
    assert attention_kernel("auto", cuda=False) == "eager"
    assert attention_kernel("auto", cuda=True, model_type="electra") is None  # the library's default (SDPA) on CUDA
    assert attention_kernel("auto", model_type="electra") == (None if torch.cuda.is_available() else "discern_fused")
    assert attention_kernel("fused", model_type="roberta") == "discern_fused"  # asked for by name: given
    with pytest.raises(ConfigError, match="model.attention must be one of auto, eager, sdpa, fused, not 'flash'"):
        attention_kernel("flash")


#: tolerance of row_cross_entropy's gradient against F.cross_entropy's.  bf16: one rounding of the
#: same value.  fp32: torch's own vectorised exp was seen off by 9e-5 relative on one entry of a
#: tensor in about one process in five on a 2-core AVX-512 machine (exp(-0.2139244) = 0.8074823
#: instead of 0.8074094; recomputed alone it is right)
_CE_GRAD_TOL = {torch.float32: 2e-4, torch.bfloat16: 4e-3}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_row_cross_entropy_matches_torch_in_values_and_gradients(dtype):
    from discern.nn import row_cross_entropy

    g = torch.Generator().manual_seed(0)
    base = (torch.randn(37, 300, generator=g) * 3).to(dtype)
    targets = torch.randint(0, 300, (37,), generator=g)
    w = torch.rand(37, generator=g)
    a = base.clone().requires_grad_()
    b = base.clone().requires_grad_()
    la = row_cross_entropy(a, targets)
    lb = torch.nn.functional.cross_entropy(b.float(), targets, reduction="none")
    assert la.dtype == torch.float32
    assert torch.allclose(la, lb, atol=1e-5, rtol=1e-5)
    (la * w).sum().backward()
    (lb * w).sum().backward()
    assert a.grad.dtype == dtype
    tol = _CE_GRAD_TOL[dtype]
    assert torch.allclose(a.grad.float(), b.grad.float(), atol=tol, rtol=0)
    with pytest.raises(ValueError, match="logits \\(R, V\\) and targets \\(R,\\)"):
        row_cross_entropy(base.unsqueeze(0), targets)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_row_cross_entropy_stats_are_the_logsumexp_and_the_top_hit(dtype):
    """``stats=True``: torch's logsumexp of the fp32 logits and ``top_hit``, ties and rows with
    -inf entries (a unigram noise model gives special tokens log q = -inf) included, without a
    gradient; the loss and its gradient are those of ``stats=False``."""
    from discern.nn import row_cross_entropy

    g = torch.Generator().manual_seed(1)
    base = (torch.randn(41, 300, generator=g) * 3).to(dtype)
    targets = torch.randint(0, 300, (41,), generator=g)
    base[0, 5:9] = -float("inf")
    base[1] = base[1].round()  # many ties
    base[1, targets[1]] = base[1].max()  # the target ties for the maximum: a hit
    base[2, targets[2]] = base[2].max() + 1
    base[3, targets[3]] = base[3].min() - 1
    a = base.clone().requires_grad_()
    ce, lse, hit = row_cross_entropy(a, targets, stats=True)
    assert lse.dtype == torch.float32 and hit.dtype == torch.bool
    assert not lse.requires_grad and not hit.requires_grad
    torch.testing.assert_close(lse, torch.logsumexp(base.float(), -1), rtol=0, atol=2e-6)
    assert torch.equal(hit.float(), top_hit(base, targets))
    assert hit[1] and hit[2] and not hit[3]
    torch.testing.assert_close(ce, lse - base.float().gather(-1, targets[:, None]).squeeze(-1), rtol=0, atol=0)
    b = base.clone().requires_grad_()
    plain = row_cross_entropy(b, targets)
    assert torch.equal(plain, ce)
    w = torch.rand(41, generator=g)
    (ce * w).sum().backward()
    (plain * w).sum().backward()
    assert torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_row_cross_entropy_gradient_with_negative_and_zero_upstream_gradients(dtype):
    """The backward folds a non-negative upstream gradient g into the softmax's shift,
    exp(z - (lse - log g)); a g with negative entries takes the multiply instead, and a zero g
    gives a zero row either way: both match ``F.cross_entropy``'s gradient."""
    from discern.nn import row_cross_entropy

    g = torch.Generator().manual_seed(5)
    base = (torch.randn(23, 200, generator=g) * 3).to(dtype)
    targets = torch.randint(0, 200, (23,), generator=g)
    tol = _CE_GRAD_TOL[dtype]
    for w in (torch.rand(23, generator=g).index_fill_(0, torch.tensor([0, 7]), 0.0),  # folded
              torch.randn(23, generator=g).index_fill_(0, torch.tensor([3]), 0.0)):  # negative: multiply
        a = base.clone().requires_grad_()
        b = base.clone().requires_grad_()
        (row_cross_entropy(a, targets) * w).sum().backward()
        (torch.nn.functional.cross_entropy(b.float(), targets, reduction="none") * w).sum().backward()
        torch.testing.assert_close(a.grad.float(), b.grad.float(), rtol=0, atol=tol)
        zero = (w == 0).nonzero().flatten()
        assert torch.count_nonzero(a.grad[zero]) == 0


def test_row_cross_entropy_is_the_same_in_any_number_of_row_blocks(monkeypatch):
    from discern.nn import ops, row_cross_entropy

    g = torch.Generator().manual_seed(3)
    base = (torch.randn(37, 300, generator=g) * 3).bfloat16()
    targets = torch.randint(0, 300, (37,), generator=g)
    w = torch.rand(37, generator=g)

    def run():
        a = base.clone().requires_grad_()
        loss = row_cross_entropy(a, targets)
        (loss * w).sum().backward()
        return loss, a.grad

    one_block, grad_one = run()  # 11,100 floats: one block on either device
    assert list(ops._row_blocks(37, 300)) == [(0, 37)]
    monkeypatch.setattr(ops, "_CHUNK_FLOATS", 1000)  # 3 rows per block: 13 blocks
    assert len(list(ops._row_blocks(37, 300))) == 13
    assert list(ops._row_blocks(37, 300, cuda=True)) == [(0, 37)]  # GPU blocks are large
    many, grad_many = run()
    assert torch.equal(many, one_block) and torch.equal(grad_many, grad_one)


def _tiny_electra(embedding: int = 32):
    from transformers import ElectraConfig, ElectraModel

    torch.manual_seed(0)
    cfg = ElectraConfig(vocab_size=50, embedding_size=embedding, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=16,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation="eager")
    return ElectraModel(cfg).eval()


def _layer_output_dtypes(model, ids, autocast: bool):
    seen = []
    hooks = [layer.register_forward_hook(lambda m, a, o: seen.append((o[0] if isinstance(o, tuple) else o).dtype))
             for layer in model.encoder.layer]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(ids).last_hidden_state
    for h in hooks:
        h.remove()
    return seen, out


def test_bf16_stream_makes_the_residual_stream_bf16_only_under_bf16_autocast():
    from discern.nn import bf16_stream

    ids = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(1))
    plain = _tiny_electra()
    dtypes, ref = _layer_output_dtypes(plain, ids, autocast=True)
    assert dtypes == [torch.float32, torch.float32]  # the library's stream under CPU autocast: fp32
    _, ref32 = _layer_output_dtypes(plain, ids, autocast=False)

    streamed = _tiny_electra()
    bf16_stream(streamed.embeddings)
    bf16_stream(streamed.embeddings)  # idempotent: one hook
    assert len(streamed.embeddings._forward_hooks) == 1
    dtypes, out = _layer_output_dtypes(streamed, ids, autocast=True)
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    assert (out.float() - ref.float()).abs().max() < 0.1  # the same model up to bf16 rounding
    assert out.float().std() > 0.5  # (not a collapsed output that would pass the bound trivially)
    _, out32 = _layer_output_dtypes(streamed, ids, autocast=False)
    assert torch.equal(out32, ref32)  # outside autocast the hook changes nothing

    # gradients reach every parameter, in fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        streamed(ids).last_hidden_state.float().square().mean().backward()
    for name, p in streamed.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and p.grad.abs().sum() > 0, name


def test_bf16_stream_gives_a_factorised_encoder_the_stream_it_already_has():
    from discern.nn import bf16_stream

    ids = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(2))
    plain = _tiny_electra(embedding=16)  # a projection after the embeddings: bf16 stream already
    dtypes, ref = _layer_output_dtypes(plain, ids, autocast=True)
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    streamed = _tiny_electra(embedding=16)
    bf16_stream(streamed.embeddings)
    _, out = _layer_output_dtypes(streamed, ids, autocast=True)
    assert torch.equal(out, ref)  # the projection cast its input to bf16 anyway: the same numbers


def test_fp32_narrow_layer_norms_match_the_bf16_kernel_and_only_touch_narrow_layers():
    from discern.nn import fp32_narrow_layer_norms

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 32),
                                torch.nn.LayerNorm(32))
    with torch.no_grad():  # non-trivial affine parameters
        model[1].weight.uniform_(0.5, 1.5), model[1].bias.uniform_(-0.5, 0.5)
    x = torch.randn(64, 4)

    def run():
        for p in model.parameters():
            p.grad = None
        seen = []
        hook = model[1].register_forward_hook(lambda m, a, o: seen.append((a[0].dtype, o.dtype)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
        hook.remove()
        y.float().square().mean().backward()
        return y, seen, {n: p.grad.clone() for n, p in model.named_parameters()}

    ref, seen_ref, grads_ref = run()
    assert seen_ref == [(torch.bfloat16, torch.bfloat16)]  # the bf16 kernel
    assert fp32_narrow_layer_norms(model) == 1  # width 8 only; width 32 keeps the bf16 kernel
    assert fp32_narrow_layer_norms(model) == 0  # idempotent
    out, seen, grads = run()
    assert seen == [(torch.float32, torch.bfloat16)]  # fp32 inside, bf16 to the next layer
    assert out.dtype == ref.dtype == torch.bfloat16
    # the bf16 kernel normalises in fp32 too: the same outputs; gradients up to bf16 rounding
    assert torch.equal(out, ref)
    for name, g in grads.items():
        assert g.dtype == torch.float32
        assert torch.allclose(g, grads_ref[name], rtol=0.02, atol=1e-3), name
    # outside autocast the hooks change nothing
    ln = model[1]
    expected = model[3](model[2](torch.nn.functional.layer_norm(model[0](x), (8,), ln.weight, ln.bias, ln.eps)))
    assert torch.equal(model(x), expected)


@pytest.mark.parametrize("K", [20, 31, 32, 128])
def test_vocab_linear_equals_f_linear_in_values_and_gradients(K):
    """The bias carried as one more inner column (padded to a multiple of 32): float64 parity
    with F.linear for every gradient, including inner sizes where the padding is 0 (K = 31)."""
    from discern.nn.ops import vocab_linear

    g = torch.Generator().manual_seed(K)
    x = torch.randn(2, 19, K, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(70, K, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(70, dtype=torch.float64, generator=g, requires_grad=True)
    up = torch.randn(2, 19, 70, dtype=torch.float64, generator=g)
    y, ref = vocab_linear(x, w, b), torch.nn.functional.linear(x, w, b)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)
    for got, want in zip(torch.autograd.grad(y, (x, w, b), up), torch.autograd.grad(ref, (x, w, b), up)):
        assert got.shape == want.shape and got.is_contiguous()
        torch.testing.assert_close(got, want, rtol=0, atol=1e-11)


def test_vocab_linear_under_bf16_autocast_is_f_linear_bit_for_bit():
    """Under autocast the operands are cast as F.linear's are; the bias inside the product gives
    the bf16 logits of addmm; the fp32 parameters get fp32 gradients."""
    from discern.nn.ops import vocab_linear

    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 128, generator=g)
    w = torch.randn(512, 128, generator=g, requires_grad=True)
    b = torch.randn(512, generator=g, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, ref = vocab_linear(x, w, b), torch.nn.functional.linear(x, w, b)
    assert y.dtype == ref.dtype == torch.bfloat16
    assert torch.equal(y, ref)
    got = torch.autograd.grad(y.float().sum(), (w, b))
    want = torch.autograd.grad(ref.float().sum(), (w, b))
    assert got[0].dtype == got[1].dtype == torch.float32
    torch.testing.assert_close(got[1], torch.full_like(b, 300.0), rtol=0, atol=0)  # one per row, exact
    # each weight gradient is a column sum of the bf16 inputs, rounded to bf16 once by either path
    torch.testing.assert_close(got[0], want[0], rtol=2 ** -7, atol=0)


def _vocab_case(R=45, C=40, K=20, V=70, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(R, K, dtype=dtype, generator=g, requires_grad=True)
    w = torch.randn(V, K, dtype=dtype, generator=g, requires_grad=True)
    b = torch.randn(V, dtype=dtype, generator=g, requires_grad=True)
    t = torch.randint(0, V, (C,), generator=g)
    return x, w, b, t


@pytest.mark.parametrize("upstream", ["mean", "weighted", "zero"])
def test_vocab_cross_entropy_equals_linear_then_cross_entropy(upstream):
    """The fused head and loss against F.linear and F.cross_entropy in float64: the losses, the
    logsumexps, the hits, the kept logits, and every gradient, for a mean of the losses (one
    upstream value for all rows), a weighted sum with negative weights, and a zero upstream; the
    padding rows (C..R-1) get logits and no gradient."""
    from discern.nn.ops import vocab_cross_entropy

    x, w, b, t = _vocab_case()
    keep = torch.zeros(40, dtype=torch.bool)
    keep[[3, 17, 39]] = True
    ce, lse, hit, kept = vocab_cross_entropy(x, w, b, t, keep=keep)
    z = torch.nn.functional.linear(x, w, b)
    ref = torch.nn.functional.cross_entropy(z[:40], t, reduction="none")
    # the loss is computed in fp32 (as row_cross_entropy's): float64 agreement to fp32 precision
    torch.testing.assert_close(ce, ref.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lse, torch.logsumexp(z[:40], -1).float(), rtol=1e-6, atol=1e-6)
    assert torch.equal(hit, z[:40].argmax(-1) == t)
    assert torch.equal(kept, z.detach()[[3, 17, 39]]) and not kept.requires_grad
    weights = {"mean": torch.full((40,), 1 / 40), "weighted": torch.linspace(-1, 2, 40),
               "zero": torch.zeros(40)}[upstream]
    got = torch.autograd.grad((ce * weights).sum(), (x, w, b))
    want = torch.autograd.grad((ref * weights.double()).sum(), (x, w, b))
    for a, c in zip(got, want):
        assert a.dtype == torch.float64 and a.shape == c.shape
        torch.testing.assert_close(a, c, rtol=0, atol=1e-6)
    assert torch.count_nonzero(got[0][40:]) == 0


def test_vocab_cross_entropy_under_bf16_autocast_matches_the_two_functions():
    """Under bf16 autocast: the losses of vocab_linear and row_cross_entropy apart, bit for bit,
    and the gradients up to bf16 rounding of softmax - onehot before the scale."""
    from discern.nn.ops import row_cross_entropy, vocab_cross_entropy, vocab_linear

    x, w, b, t = (v.detach().float() if v.is_floating_point() else v for v in _vocab_case(300, 280, 128, 512))
    w.requires_grad_(), b.requires_grad_()
    xb = x.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ce, lse, hit, _ = vocab_cross_entropy(xb, w, b, t)
        ref_ce, ref_lse, ref_hit = row_cross_entropy(vocab_linear(xb, w, b)[:280], t, stats=True)
    assert torch.equal(ce, ref_ce) and torch.equal(lse, ref_lse) and torch.equal(hit, ref_hit)
    got = torch.autograd.grad(ce.mean(), (xb, w, b))
    want = torch.autograd.grad(ref_ce.mean(), (xb, w, b))
    assert [g.dtype for g in got] == [torch.bfloat16, torch.float32, torch.float32]
    for a, c in zip(got, want):
        err = (a.float() - c.float()).abs().max() / c.float().abs().max()
        assert err < 2 ** -6, float(err)


def test_vocab_cross_entropy_refuses_more_targets_than_rows():
    from discern.nn.ops import vocab_cross_entropy

    x, w, b, t = _vocab_case(R=10, C=12)
    with pytest.raises(ValueError, match="C <= R"):
        vocab_cross_entropy(x, w, b, t)
