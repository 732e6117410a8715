"""Analytic FLOPs of pre-training, with the conventions of ELECTRA's ``flops_computation.py``.

Counted per token: every dense layer (2 x in x out), biases, residuals, LayerNorm (5 per
element), GELU (8), softmax (5), dropout (4), attention scores and weighted values; embedding
lookups counted as dense multiplies (one-hot x table); the backward pass counted as equal to
the forward pass, so a training step is 2 x forward.  ELECTRA-Small (1M steps, batch 128,
length 128) comes to 1.42e18, the paper's Table 1 figure of 1.4e18, when the generator is
counted at half the discriminator's width (hidden 128); with the 1/4-width generator of
Table 6 the same formula gives 1.29e18.  MLM outputs are counted at 15.625% of positions
(``output_frac`` of the official script).
"""

from __future__ import annotations

from dataclasses import dataclass

DROPOUT, LAYER_NORM, ACTIVATION, SOFTMAX = 4, 5, 8, 5


@dataclass
class Dims:
    vocab: int
    embedding: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    seq_len: int


def layer_flops(d: Dims) -> float:
    """One transformer layer, per token."""
    h, s, i, a = d.hidden, d.seq_len, d.ffn, d.heads
    attention = (
        3 * 2 * h * h + 3 * h  # q, k, v projections + biases
        + 2 * h * s  # scores
        + (SOFTMAX + DROPOUT + 1) * s * a  # softmax, dropout, scaling
        + 2 * h * s  # weighted values
        + 2 * h * h + h  # output projection + bias
        + DROPOUT * h + h + LAYER_NORM * h  # dropout, residual, LayerNorm
    )
    mlp = (2 * h * i + i + ACTIVATION * i  # intermediate + bias + GELU
           + 2 * i * h + h + DROPOUT * h + h + LAYER_NORM * h)
    return attention + mlp


def input_embedding_flops(d: Dims, dense_lookup: bool = True) -> float:
    e, h, s = d.embedding, d.hidden, d.seq_len
    f = 2 * e * d.vocab if dense_lookup else 0.0  # lookup counted as a one-hot matmul
    f += 2 * e * (s + 2) + 2 * e + LAYER_NORM * e + DROPOUT * e  # position/segment, add, LN, dropout
    if e != h:
        f += 2 * e * h + h  # embeddings_project
    return f


def mlm_head_flops(d: Dims) -> float:
    """Generator/MLM output per *predicted* token: dense(E), GELU, LayerNorm, softmax over V."""
    e, h, v = d.embedding, d.hidden, d.vocab
    return 2 * h * e + e + ACTIVATION * e + LAYER_NORM * e + 2 * e * v + v + SOFTMAX * v + 2 * v


def disc_head_flops(d: Dims) -> float:
    h = d.hidden
    return 2 * h * h + h + ACTIVATION * h + 2 * h + 1


def forward_flops_per_example(d: Dims, mlm_frac: float = 0.15625, disc: bool = False,
                              generator: Dims | None = None, dense_lookup: bool = True) -> float:
    """Forward FLOPs of one example: encoder + embeddings + heads (+ generator for ELECTRA).

    ``dense_lookup=False`` counts embedding lookups as free (what a GPU or CPU really does;
    use it for utilisation), ``True`` follows the paper's accounting."""
    s = d.seq_len
    total = s * (d.layers * layer_flops(d) + input_embedding_flops(d, dense_lookup))
    if disc:
        total += s * disc_head_flops(d)
    else:
        total += s * mlm_frac * mlm_head_flops(d)
    if generator is not None:
        total += s * (generator.layers * layer_flops(generator) + input_embedding_flops(generator, dense_lookup))
        total += s * mlm_frac * mlm_head_flops(generator)
    return total


def train_flops(d: Dims, batch_size: int, steps: int, mlm_frac: float = 0.15625, disc: bool = False,
                generator: Dims | None = None) -> float:
    """Training FLOPs: forward + an equal backward, for ``steps`` steps of ``batch_size``."""
    return 2.0 * batch_size * steps * forward_flops_per_example(d, mlm_frac, disc, generator)


def electra_small(generator_size: float = 0.5) -> tuple[Dims, Dims]:
    """ELECTRA-Small discriminator and its generator (hidden ``generator_size`` x 256)."""
    disc = Dims(vocab=30522, embedding=128, hidden=256, layers=12, heads=4, ffn=1024, seq_len=128)
    gh = int(256 * generator_size)
    gen = Dims(vocab=30522, embedding=128, hidden=gh, layers=12, heads=max(1, gh // 64), ffn=4 * gh,
               seq_len=128)
    return disc, gen
