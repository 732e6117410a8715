import pytest
import torch
from scipy.stats import chisquare

from discern.core import ConfigError
from discern.nn import attention_kernel, gumbel_sample, top_hit


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
    assert attention_kernel("auto", cuda=False) == "eager"
    assert attention_kernel("auto", cuda=True) is None  # the library's default (SDPA) on CUDA
    assert attention_kernel("auto") == (None if torch.cuda.is_available() else "eager")
    with pytest.raises(ConfigError, match="model.attention must be one of auto, eager, sdpa, not 'flash'"):
        attention_kernel("flash")


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
    tol = 1e-6 if dtype == torch.float32 else 4e-3  # bf16 gradient: one rounding of the same value
    assert torch.allclose(a.grad.float(), b.grad.float(), atol=tol, rtol=0)
    with pytest.raises(ValueError, match="logits \\(R, V\\) and targets \\(R,\\)"):
        row_cross_entropy(base.unsqueeze(0), targets)
