"""The Fast Weight Layer block (Clark et al., EMNLP 2022, section 3).

Block: Dense(4s) -> SquaredReLU -> Dense(s) -> LayerNorm -> Unembed(V), between a
language model's last hidden states and its softmax; the unembedding is not fast-weighted.

1. Slow pass: run the block with its slow weights and take the gradient of the weighted
   next-token loss, sum_t w_t CE_t / sum(w) over the **whole batch** (w = 0 for padding and the
   last token), with respect to every layer's output at every token (autograd with
   ``create_graph=True``: no stop-gradient, so the outer loss trains through the update).
2. Fast pass (section 3: gradient updates as linear attention): each parameter used at token t
   has taken one SGD step on the losses of the tokens strictly before t in the same sequence:
   dense  y_t = x_t W + b - eta_W sum_{s<t} (x_t . x_s) g_s - eta_b sum_{s<t} g_s  (causal linear
          attention: queries = current inputs, keys = slow-pass inputs, values = gradients);
   LayerNorm  alpha_t = alpha - eta_a sum_{s<t} g_s * xhat_s,  beta_t = beta - eta_b sum_{s<t} g_s.
   Step sizes are learned scalars initialised to 0.01, one per parameter tensor.
   :meth:`FastWeightBlock.freeze_steps` fixes them at 0 and stops their training: the control,
   the same block trained as a plain slow-weight block, with no fast-weight update.
   ``residual=True`` (not in the paper; used to attach the block to a *pretrained* LM) adds the
   block's output to its input before the unembedding and starts the LayerNorm gain at 0, so the
   slow block is the identity and a freshly wrapped LM predicts exactly as before; the fast-weight
   algebra is unchanged (the gradient at the block's output is the gradient at the sum).
3. Mixed-chunk attention (Hua et al. 2022, which the paper uses): strictly lower-triangular
   quadratic attention inside chunks, linear attention across chunks through an exclusive
   cumulative sum of K^T V.

Dimension legend: B batch, T tokens, D input width, S block size, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def causal_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunks: int = 1) -> torch.Tensor:
    """out_t = sum_{s<t} (q_t . k_s) v_s.  q, k: (B, T, D); v: (B, T, E) -> (B, T, E)."""
    B, T, _ = q.shape
    if chunks <= 1:
        scores = torch.tril(q @ k.transpose(1, 2), diagonal=-1)  # (B, T, T), strictly causal
        return scores @ v
    C = -(-T // chunks)  # chunk length; the tail is zero-padded (zero keys and values add nothing)
    if C * chunks != T:
        q, k, v = (F.pad(x, (0, 0, 0, C * chunks - T)) for x in (q, k, v))
    qc, kc, vc = (x.reshape(B, chunks, C, x.shape[-1]) for x in (q, k, v))  # (B, n, C, .)
    intra = torch.tril(qc @ kc.transpose(2, 3), diagonal=-1) @ vc  # within each chunk
    kv = kc.transpose(2, 3) @ vc  # (B, n, D, E) per chunk
    prefix = torch.cumsum(kv, dim=1) - kv  # exclusive: chunks strictly before
    inter = qc @ prefix  # (B, n, C, E)
    return (intra + inter).reshape(B, C * chunks, -1)[:, :T]


def _exclusive_cumsum(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x, dim=1) - x


def squared_relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x) ** 2


class FastWeightBlock(nn.Module):
    """Dense(4S) -> SquaredReLU -> Dense(S) -> LayerNorm -> unembedding, with fast weights."""

    def __init__(self, d_in: int, size: int, unembed: nn.Module, attn_chunks: int = 1, eps: float = 1e-6,
                 init_step: float = 0.01, residual: bool = False, generator: torch.Generator | None = None):
        super().__init__()
        if residual and size != d_in:
            raise ValueError(f"a residual block needs size == d_in (got size={size}, d_in={d_in})")
        self.dense1 = nn.Linear(d_in, 4 * size)
        self.dense2 = nn.Linear(4 * size, size)
        self.norm = nn.LayerNorm(size, eps=eps)
        self.unembed = unembed  # (S -> V); not fast-weighted
        self.attn_chunks = attn_chunks
        self.residual = residual
        with torch.no_grad():  # kernels 0.05 N(0, 1), biases 0 (the authors' released layer)
            for lin in (self.dense1, self.dense2):
                lin.weight.normal_(0.0, 0.05, generator=generator)
                lin.bias.zero_()
            if residual:  # the slow block starts as the identity: a fresh wrap is the base model itself
                self.norm.weight.zero_()
        names = ("w1", "b1", "w2", "b2", "alpha", "beta")
        self.steps = nn.ParameterDict({n: nn.Parameter(torch.tensor(float(init_step))) for n in names})

    @property
    def fast(self) -> bool:
        """False for the control: every step size frozen (not trained), so no fast-weight update."""
        return any(p.requires_grad for p in self.steps.values())

    def freeze_steps(self) -> "FastWeightBlock":
        """The control: every step size fixed at 0 and excluded from training.  The fast pass then
        adds exactly nothing to the slow pass, so the block is a plain Dense -> SquaredReLU ->
        Dense -> LayerNorm block trained like the FWL (same parameters, same computation)."""
        with torch.no_grad():
            for p in self.steps.values():
                p.zero_()
                p.requires_grad_(False)
        return self

    def slow(self, x: torch.Tensor):
        """Slow-weight forward; returns logits and the intermediates the fast pass needs."""
        h1 = self.dense1(x)  # (B, T, 4S)
        a = squared_relu(h1)
        h2 = self.dense2(a)  # (B, T, S)
        mu = h2.mean(-1, keepdim=True)
        var = h2.var(-1, unbiased=False, keepdim=True)
        xhat = (h2 - mu) / torch.sqrt(var + self.norm.eps)
        n = xhat * self.norm.weight + self.norm.bias
        return self.unembed(x + n if self.residual else n), (h1, a, h2, xhat, n)

    def forward(self, x: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) hidden states, labels (B, T) next tokens, weights (B, T) (0 for padding and the
        last token) -> fast-weight logits (B, T, V)."""
        outer = torch.is_grad_enabled()  # training: second-order, the outer loss flows through the update
        with torch.enable_grad():  # the inner gradient is needed at evaluation too
            logits, (h1, a, h2, xhat, n) = self.slow(x)
            total = weights.sum().clamp_min(1e-9)
            ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view_as(weights)
            loss = (ce * weights).sum() / total  # normalised by the whole batch's weight
            g_h1, g_h2, g_n = torch.autograd.grad(loss, (h1, h2, n), create_graph=outer)
        st = self.steps
        c = self.attn_chunks
        # dense 1: first layer inputs are the slow inputs themselves
        f1 = h1 - st["w1"] * causal_linear_attention(x, x, g_h1, c) - st["b1"] * _exclusive_cumsum(g_h1)
        fa = squared_relu(f1)
        f2 = self.dense2(fa) - st["w2"] * causal_linear_attention(fa, a, g_h2, c) - st["b2"] * _exclusive_cumsum(g_h2)
        mu = f2.mean(-1, keepdim=True)
        var = f2.var(-1, unbiased=False, keepdim=True)
        fxhat = (f2 - mu) / torch.sqrt(var + self.norm.eps)
        alpha = self.norm.weight - st["alpha"] * _exclusive_cumsum(g_n * xhat)  # (B, T, S)
        beta = self.norm.bias - st["beta"] * _exclusive_cumsum(g_n)
        out = fxhat * alpha + beta
        return self.unembed(x + out if self.residual else out)
