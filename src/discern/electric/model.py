"""Electric: an energy-based cloze model trained with noise-contrastive estimation.

Paper: Clark, Luong, Le, Manning, "Pre-Training Transformers as Energy-Based Cloze Models",
EMNLP 2020, arXiv 2012.08561; the official TF code is ``run_pretraining.py`` of
google-research/electra with ``electric_objective``.

* Energy model (section 2): a bidirectional transformer on the *unmasked* input with a scalar
  head, E(x)_t = head(h(x)_t); the unnormalised cloze probability is p̂(x_t | x_\\t) = exp(-E(x)_t).
  It is a Hugging Face ``ElectraForPreTraining`` whose per-token logit *is* E, so it saves and
  loads with ``save_pretrained`` / ``from_pretrained``.
* Noise distribution q (section 3): a two-tower cloze model, a left-to-right and a
  right-to-left causal transformer; position t reads LTR state t-1 and RTL state t+1, so no
  tower sees x_t; q = softmax(W [h_LTR_{t-1} ; h_RTL_{t+1}]).  Each tower is ``tower_size`` of
  Electric's width, shares Electric's embeddings, and is trained by maximum likelihood on
  every candidate position of the unmasked input.
* NCE (eq. 2 and Algorithm 2): k = ceil(0.15 n) unique positions are replaced simultaneously by
  samples of q; one forward pass; the "noise" logit is
  E(x̃)_t + stop_grad(log q(x̃_t | x_\\t)) + log(k / (n - k)), with the code's
  log(mask_prob / (1 - mask_prob)) for k / (n - k), and every sampled position is labelled
  noise, also where the sample equals the original token.  Sigmoid cross-entropy averaged
  over all real tokens; total loss = 50 * NCE + 1 * cloze MLE.

Dimension legend: B batch, L sequence length, V vocabulary, H hidden size, E embedding size.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from discern.core import CheckpointError
from discern.nn import attention_kernel, bf16_stream, fp32_narrow_layer_norms, gumbel_sample, row_cross_entropy
from discern.nn.encoder import encode
from discern.nn.ops import vocab_cross_entropy, vocab_linear

from .config import ModelConfig


def hf_config(cfg: ModelConfig, vocab_size: int, pad_id: int, tower: bool = False):
    """``transformers.ElectraConfig`` of the energy model, or (``tower=True``) of one causal tower."""
    from transformers import ElectraConfig

    hidden, ffn, heads, layers = cfg.hidden, cfg.ffn, cfg.heads, cfg.layers
    if tower:
        hidden = max(1, int(round(cfg.hidden * cfg.tower_size)))
        ffn = max(1, int(round(cfg.ffn * cfg.tower_size)))
        heads = max(1, int(round(cfg.heads * cfg.tower_size)))
        while hidden % heads:
            heads -= 1
        layers = max(1, int(round(cfg.layers * cfg.tower_layers)))
    return ElectraConfig(
        vocab_size=vocab_size, embedding_size=cfg.embedding, hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
        hidden_act="gelu", hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.attention_dropout,
        max_position_embeddings=cfg.max_len, type_vocab_size=2, pad_token_id=pad_id,
        initializer_range=cfg.init_std if cfg.init_std > 0 else hidden ** -0.5,
        attn_implementation=attention_kernel(cfg.attention, model_type="electra"),
        is_decoder=tower, use_cache=False, tie_word_embeddings=True,
    )


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` entries along dim 1, leaving the padding in place.

    x: (B, L, ...) ; lengths: (B,).  Applying it twice is the identity."""
    B, L = x.shape[:2]
    t = torch.arange(L, device=x.device).unsqueeze(0)  # (1, L)
    n = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    idx = torch.where(t < n, n - 1 - t, t)  # (B, L)
    idx = idx.view(B, L, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


class TwoTowerCloze(nn.Module):
    """Noise model q(x_t | x_\\t) of Baevski et al. (2019) as Electric uses it (paper section 3; the
    official ``run_pretraining.py``, ``two_tower_generator``)."""

    def __init__(self, cfg: ModelConfig | None, vocab_size: int, pad_id: int, embeddings: nn.Module | None = None,
                 tower_config=None):
        """Towers shaped by ``cfg`` (fractions of Electric's size), or by a saved ``tower_config``."""
        super().__init__()
        from transformers import ElectraModel

        c = tower_config if tower_config is not None else hf_config(cfg, vocab_size, pad_id, tower=True)
        self.ltr = ElectraModel(c)
        self.rtl = ElectraModel(c)
        if embeddings is not None:  # share Electric's embedding module (token, position, segment, LayerNorm)
            self.ltr.embeddings = embeddings
            self.rtl.embeddings = embeddings
        else:
            self.rtl.embeddings = self.ltr.embeddings
        H = c.hidden_size
        self.dense = nn.Linear(2 * H, c.embedding_size)
        self.norm = nn.LayerNorm(c.embedding_size, eps=c.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.tower_config = c

    def word_embeddings(self) -> torch.Tensor:
        return self.ltr.embeddings.word_embeddings.weight  # (V, E)

    def context(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """(B, L, 2H): [LTR state t-1 ; RTL state t+1], zeros past either end."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        lengths = attention_mask.sum(-1)
        fwd = encode(self.ltr, input_ids, attention_mask, token_type_ids)  # (B, L, H), causal
        rev_ids = reverse_within_length(input_ids, lengths)
        rev_seg = reverse_within_length(token_type_ids, lengths)
        bwd = encode(self.rtl, rev_ids, attention_mask, rev_seg)  # causal over the reversed sequence
        bwd = reverse_within_length(bwd, lengths)  # (B, L, H): state t summarises x_t..x_end
        zero = fwd.new_zeros(fwd.size(0), 1, fwd.size(2))
        left = torch.cat([zero, fwd[:, :-1]], 1)  # state t-1
        right = torch.cat([bwd[:, 1:], zero], 1)  # state t+1
        last = (lengths - 1).clamp_min(0)
        right = right.masked_fill((torch.arange(right.size(1), device=right.device).unsqueeze(0)
                                   >= last.unsqueeze(1)).unsqueeze(-1), 0.0)  # nothing right of the end
        return torch.cat([left, right], -1)

    def head_input(self, context: torch.Tensor) -> torch.Tensor:
        """(..., 2H) -> (..., E) through dense -> GELU -> LayerNorm: the output layer's input."""
        return self.norm(F.gelu(self.dense(context)))

    def logits(self, context: torch.Tensor) -> torch.Tensor:
        """(..., 2H) -> (..., V) through dense -> GELU -> LayerNorm -> tied output embedding."""
        return vocab_linear(self.head_input(context), self.word_embeddings(), self.bias)  # F.linear

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        return self.logits(self.context(input_ids, attention_mask, token_type_ids))  # (B, L, V)


def choose_noise_positions(candidates: torch.Tensor, mask_prob: float,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 2, step 1: k = ceil(mask_prob * n) *unique* positions among each row's n
    candidates, uniformly (Gumbel top-k).  candidates: (B, L) bool -> (B, L) bool."""
    B, L = candidates.shape
    n = candidates.sum(-1)  # (B,)
    k = torch.ceil(mask_prob * n.double()).long()  # (B,)
    u = torch.rand(B, L, generator=generator).to(candidates.device).clamp_min(1e-20)
    keys = torch.where(candidates, -torch.log(-torch.log(u)), torch.full_like(u, -math.inf))
    rank = keys.argsort(-1, descending=True).argsort(-1)  # (B, L): 0 = largest key
    return candidates & (rank < k.unsqueeze(1))


def nce_logits(energy: torch.Tensor, log_q: torch.Tensor, mask_prob: float) -> torch.Tensor:
    """Logit of "this token is noise" (paper section 2, NCE; the official
    ``_get_discriminator_output`` with ``electric_objective``): E + stop_grad(log q) + log(k / (n - k))."""
    return energy + log_q.detach() + math.log(mask_prob / (1.0 - mask_prob))


#: on the CPU the cloze head's rows (one per candidate token, a count that changes from batch to
#: batch with padding) are padded to a multiple of this.  oneDNN compiles a matrix product for
#: each new row count (about 17 ms per step at a new count on 2 cores) and keeps a bounded cache of
#: them, so without padding a run keeps meeting new counts; with it a quick run meets a handful
HEAD_ROWS = 64


class ElectricPretrainer(nn.Module):
    """Energy model + two-tower noise model; ``forward(batch) -> (loss, metrics)``."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int, special_ids: list[int],
                 energy_model=None, noise_model: TwoTowerCloze | None = None):
        super().__init__()
        from transformers import ElectraForPreTraining

        self.cfg = cfg
        self.energy_model = energy_model or ElectraForPreTraining(hf_config(cfg, vocab_size, pad_id))
        if cfg.noise not in ("two-tower", "unigram"):
            raise ValueError(f"model.noise must be two-tower or unigram, got {cfg.noise!r}")
        self.noise = None
        if cfg.noise == "two-tower":
            self.noise = noise_model or TwoTowerCloze(cfg, vocab_size, pad_id,
                                                      embeddings=self.energy_model.electra.embeddings)
        if cfg.bf16_stream:
            bf16_stream(self.energy_model.electra.embeddings)
            if self.noise is not None:
                bf16_stream(self.noise.ltr.embeddings)  # the same module unless the towers were loaded apart
                fp32_narrow_layer_norms(self.noise)  # width-8 towers: bf16's LayerNorm kernel is 2.3x slower
        # fixed unigram noise: log q(w), set from corpus counts by set_unigram_noise (uniform until then)
        self.register_buffer("unigram_logq", torch.full((vocab_size,), -math.log(vocab_size)), persistent=False)
        self.register_buffer("special_ids", torch.tensor(sorted(set(special_ids)), dtype=torch.long),
                             persistent=False)
        self.vocab_size = vocab_size

    def set_unigram_noise(self, counts) -> None:
        """q(w) proportional to the candidate tokens' corpus counts (special tokens get no mass)."""
        c = torch.as_tensor(counts, dtype=torch.float64).clone()
        c[self.special_ids.cpu()] = 0
        if c.sum() <= 0:
            raise ValueError("set_unigram_noise: no candidate tokens counted")
        logq = (c / c.sum()).log().float()
        self.unigram_logq.copy_(logq.to(self.unigram_logq.device))

    def energies(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """E(x): (B, L) per-token energies in one pass; low energy = likely token."""
        hidden = encode(self.energy_model.electra, input_ids, attention_mask, token_type_ids)  # (B, L, H)
        return self.energy_model.discriminator_predictions(hidden).float()  # ElectraForPreTraining's logits

    def forward(self, batch: dict, generator: torch.Generator | None = None,
                details: dict | None = None) -> tuple[torch.Tensor, dict]:
        """``(loss, metrics)``; ``details``: when a dict is given, this batch's ``(token, noise
        offset log q + log(k / (n - k)), noised, NCE BCE)`` at its real positions is appended to
        ``details["tokens"]`` (numpy arrays), for the token-only energy plateau."""
        ids, attn = batch["input_ids"], batch["attention_mask"]
        seg = batch.get("token_type_ids")
        c = self.cfg
        real = attn.bool()
        candidates = real & ~torch.isin(ids, self.special_ids)  # (B, L)

        # noise model on the unmasked input; MLE on every candidate position (the official
        # two-tower generator loss).
        # Output logits only where they are used: (C, V) for the C candidate positions.
        targets = ids[candidates]  # (C,)
        C = targets.numel()
        # Algorithm 2, step 1: the k unique positions to replace (they depend on the candidates only)
        noised = choose_noise_positions(candidates, c.mask_prob, generator)  # (B, L) bool
        pick = noised[candidates]  # (C,) which candidates are noised
        if self.noise is not None:
            ctx = self.noise.context(ids, attn, seg)  # (B, L, 2H)
            rows = ctx[candidates]
            extra = (-C) % HEAD_ROWS if ctx.device.type == "cpu" else 0
            if extra:  # zero rows up to a multiple of HEAD_ROWS: logits, but no loss
                rows = torch.cat([rows, rows.new_zeros(extra, rows.size(1))])
            # the cloze loss (fp32) and the noised positions' logits (K, V) for the samples below
            nll, lse, hit, z = vocab_cross_entropy(self.noise.head_input(rows), self.noise.word_embeddings(),
                                                   self.noise.bias, targets, keep=pick)
        else:  # a fixed unigram q: nothing to train
            q_logits = self.unigram_logq.unsqueeze(0).expand(C, -1)  # (C, V)
            nll, lse, hit = row_cross_entropy(q_logits, targets, stats=True)  # (C,) in fp32
            z = q_logits[pick]  # (K, V): the noised positions' logits
        cloze_loss = nll.mean() if nll.numel() else nll.sum()
        if self.noise is None:
            cloze_loss = cloze_loss.detach()

        # Algorithm 2, step 2: replace them simultaneously by samples of q
        sampled = gumbel_sample(z, c.temperature, generator=generator)  # (K,)
        fake_ids = ids.clone()
        fake_ids[noised] = sampled
        # log q(token at t | context) for the *input* token; 0 at special tokens (never noised)
        with torch.no_grad():
            log_q_cand = -nll.detach()
            # log q(sample) = z[sample] - logsumexp(z), the log-normaliser read off the cloze loss
            lq_fake = z.detach().gather(-1, sampled.unsqueeze(-1)).squeeze(-1).float() - lse[pick]
            log_q_cand[pick] = lq_fake
            log_q = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
            log_q[candidates] = log_q_cand

        energy = self.energies(fake_ids, attn, seg)  # (B, L): one pass on the noised input
        logits = nce_logits(energy, log_q, c.mask_prob)
        labels = noised.float()  # every sampled position is noise, even if sample == original
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        rw = real.float()
        nce_loss = (bce * rw).sum() / rw.sum()
        if details is not None:
            with torch.no_grad():
                offset = logits.detach() - energy.detach()
                details.setdefault("tokens", []).append(tuple(
                    x[real].cpu().numpy() for x in (fake_ids, offset, labels, bce.detach())))
        loss = c.disc_weight * nce_loss + c.gen_weight * cloze_loss
        with torch.no_grad():
            pred = logits > 0
            cand = candidates
            metrics = {
                "loss": loss.detach(),
                "nce_loss": nce_loss.detach(),
                "cloze_loss": cloze_loss.detach(),
                "cloze_acc": hit.float().mean() if targets.numel() else
                loss.new_zeros(()),
                "nce_acc": ((pred == noised) & real).sum().float() / real.sum(),
                "sample_is_original": (sampled == ids[noised]).float().mean() if sampled.numel() else
                loss.new_zeros(()),
                "noised_frac": noised.sum().float() / candidates.sum().clamp_min(1),
                "candidate_frac": candidates.sum().float() / real.sum().clamp_min(1),
                "mean_energy_data": (energy * (cand & ~noised)).sum() / (cand & ~noised).sum().clamp_min(1),
                "mean_energy_noise": (energy * noised).sum() / noised.sum().clamp_min(1),
            }
        return loss, metrics

    def save_pretrained(self, path: str | Path, tokenizer=None) -> None:
        """``path/energy`` (ElectraForPreTraining, logits = energies) and ``path/noise``
        (the two towers as ElectraModel folders plus ``head.pt``)."""
        path = Path(path)
        self.energy_model.save_pretrained(path / "energy")
        if tokenizer is not None:
            tokenizer.save_pretrained(path / "energy")
        n = path / "noise"
        if self.noise is None:  # fixed unigram noise: its log-probabilities
            n.mkdir(parents=True, exist_ok=True)
            torch.save(self.unigram_logq.cpu(), n / "unigram_logq.pt")
            return
        self.noise.ltr.save_pretrained(n / "ltr")
        self.noise.rtl.save_pretrained(n / "rtl")
        torch.save({k: v for k, v in self.noise.state_dict().items()
                    if k.split(".")[0] in ("dense", "norm", "bias")}, n / "head.pt")


def load_pretrainer(path: str | Path, cfg: ModelConfig, special_ids: list[int]) -> ElectricPretrainer:
    """Rebuild from a folder written by :meth:`ElectricPretrainer.save_pretrained`; the shapes
    come from the saved configs, ``cfg`` gives the training settings (mask_prob, weights)."""
    from transformers import ElectraConfig, ElectraForPreTraining, ElectraModel

    path = Path(path)
    if not (path / "energy").is_dir():
        raise CheckpointError(f"{path}: not an Electric model folder (no energy/ inside)")
    energy = ElectraForPreTraining.from_pretrained(path / "energy")
    c = energy.config
    n = path / "noise"
    noise = None
    if (n / "unigram_logq.pt").is_file():
        import dataclasses

        pre = ElectricPretrainer(dataclasses.replace(cfg, noise="unigram"), c.vocab_size, c.pad_token_id,
                                 special_ids, energy_model=energy)
        pre.unigram_logq.copy_(torch.load(n / "unigram_logq.pt", weights_only=True))
        return pre
    if n.is_dir():
        tc = ElectraConfig.from_pretrained(n / "ltr")
        noise = TwoTowerCloze(None, c.vocab_size, c.pad_token_id, tower_config=tc)
        noise.ltr = ElectraModel.from_pretrained(n / "ltr")
        noise.rtl = ElectraModel.from_pretrained(n / "rtl")
        noise.ltr.embeddings = noise.rtl.embeddings = energy.electra.embeddings
        res = noise.load_state_dict(torch.load(n / "head.pt", weights_only=True), strict=False)
        missing = [k for k in res.missing_keys if not k.startswith(("ltr.", "rtl."))]
        if missing or res.unexpected_keys:
            raise CheckpointError(f"{n / 'head.pt'}: missing {missing}, unexpected {res.unexpected_keys}")
    return ElectricPretrainer(cfg, c.vocab_size, c.pad_token_id, special_ids, energy_model=energy, noise_model=noise)
