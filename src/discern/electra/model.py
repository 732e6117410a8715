"""ELECTRA pre-training model (generator + discriminator) and the BERT-style MLM baseline.

Both are compositions of Hugging Face ``transformers`` modules, so checkpoints save as
``ElectraForPreTraining`` (discriminator) and ``ElectraForMaskedLM`` (generator / MLM) folders
and a user's ``google/electra-small-discriminator`` loads directly.

Dimension legend: B batch, L sequence length, N masked slots per example (19 for L=128),
V vocabulary, H hidden size, E embedding size.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from discern.nn import attention_kernel, bf16_stream, gumbel_sample, row_cross_entropy
from discern.nn.encoder import encode

from .masking import Masked, mask_tokens


def hf_config(cfg: ModelConfig, vocab_size: int, pad_id: int, generator: bool = False):
    """A ``transformers.ElectraConfig`` for the discriminator or (``generator=True``) the generator.

    The generator is scaled in width, heads and FFN by ``generator_size``; it keeps all layers
    unless ``generator_layers < 1`` (paper section 3.2, Figure 3: generator size; the official
    code's ``generator_layers``).  Heads: ``max(1, h // 64)`` as in the official
    code when scaled, else the discriminator's.
    """
    from transformers import ElectraConfig

    hidden, ffn, heads, layers = cfg.hidden, cfg.ffn, cfg.heads, cfg.layers
    if generator:
        hidden = max(1, int(round(cfg.hidden * cfg.generator_size)))
        ffn = max(1, int(round(cfg.ffn * cfg.generator_size)))
        heads = max(1, int(round(cfg.heads * cfg.generator_size)))
        while hidden % heads:
            heads -= 1
        layers = max(1, int(round(cfg.layers * cfg.generator_layers)))
    return ElectraConfig(
        vocab_size=vocab_size, embedding_size=cfg.embedding, hidden_size=hidden,
        num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
        hidden_act="gelu", hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.attention_dropout,
        max_position_embeddings=cfg.max_len, type_vocab_size=2, pad_token_id=pad_id,
        initializer_range=cfg.init_std if cfg.init_std > 0 else hidden ** -0.5,
        attn_implementation=attention_kernel(cfg.attention, model_type="electra"),
        tie_word_embeddings=True,
    )


def masked_lm_logits(mlm, hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Generator head applied only at the masked slots: (B, L, H) -> (B, N, V)."""
    idx = positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1))  # (B, N, H)
    h = hidden.gather(1, idx)  # (B, N, H)
    h = mlm.generator_predictions(h)  # dense(E) -> GELU -> LayerNorm: (B, N, E)
    return mlm.generator_lm_head(h)  # tied to the input embedding table: (B, N, V)


def weighted_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w).sum() / (w.sum() + 1e-6)


class _Pretrainer(nn.Module):
    def __init__(self, cfg: ModelConfig, special_ids: list[int], mask_id: int):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("special_ids", torch.tensor(sorted(set(special_ids)), dtype=torch.long),
                             persistent=False)
        self.mask_id = mask_id

    def _mask(self, input_ids, attention_mask, vocab_size) -> Masked:
        c = self.cfg
        m = mask_tokens(input_ids.cpu(), attention_mask.cpu(), self.special_ids.cpu(), self.mask_id, vocab_size,
                        c.mask_prob, c.mask_frac, c.random_frac, c.sample_with_replacement)  # drawn on the CPU
        dev = input_ids.device
        return Masked(*(x.to(dev) for x in (m.input_ids, m.positions, m.weights, m.targets, m.is_masked)))


class ElectraPretrainer(_Pretrainer):
    """Replaced token detection (paper section 2).

    ``forward(batch)`` returns ``(loss, metrics)`` with
    ``loss = gen_weight * L_MLM + disc_weight * L_Disc`` (paper eq. 1 with lambda = 50).
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int, special_ids: list[int], mask_id: int,
                 discriminator=None, generator=None):
        """New random models, or the given ``ElectraForPreTraining`` / ``ElectraForMaskedLM``."""
        super().__init__(cfg, special_ids, mask_id)
        from transformers import ElectraForMaskedLM, ElectraForPreTraining

        self.discriminator = discriminator or ElectraForPreTraining(hf_config(cfg, vocab_size, pad_id))
        self.generator = generator or ElectraForMaskedLM(hf_config(cfg, vocab_size, pad_id, generator=True))
        if cfg.tie_embeddings:
            tie_generator(self.generator, self.discriminator)
        if cfg.bf16_stream:
            for model in (self.discriminator, self.generator):
                bf16_stream(model.electra.embeddings)
        self.vocab_size = vocab_size

    def forward(self, batch: dict, details: dict | None = None) -> tuple[torch.Tensor, dict]:
        """``details``: when a dict is given, it receives ``replacement_mass`` (V,), the expected
        count of each token written at a replaced position (generator probabilities at the masked
        slots, minus the mass of the original token), for the unigram-detector reference, and
        appends to ``details["tokens"]`` this batch's ``(token, replaced, discriminator BCE)`` at
        its real positions (numpy arrays), for the detector's per-batch gaps."""
        ids, attn, seg = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
        c = self.cfg
        m = self._mask(ids, attn, self.vocab_size)

        # 1. generator (small MLM) on the masked input; logits only at masked slots
        g_hidden = encode(self.generator.electra, m.input_ids, attn, seg)  # (B, L, H)
        g_logits = masked_lm_logits(self.generator, g_hidden, m.positions)  # (B, N, V), bf16 under autocast
        mlm_ce, _, hit = row_cross_entropy(g_logits.flatten(0, 1), m.targets.flatten(), stats=True)  # fp32
        mlm_loss = weighted_mean(mlm_ce.view_as(m.weights), m.weights)

        # 2. sample replacements (a softmax sample in fp32, stop-gradient) and build the corrupted
        #    input: the *original* sequence with samples scattered in; the discriminator never sees [MASK]
        sampled = gumbel_sample(g_logits, c.temperature)  # (B, N)
        fake = ids.clone()
        active = m.weights.bool()
        rows = torch.arange(ids.size(0), device=ids.device).unsqueeze(1).expand_as(m.positions)
        fake[rows[active], m.positions[active]] = sampled[active]
        labels = (fake != ids) & m.is_masked  # replaced only where the sample differs

        # 3. discriminator: sigmoid BCE over all real tokens ([CLS] and [SEP] included)
        d_hidden = encode(self.discriminator.electra, fake, attn, seg)  # (B, L, H)
        d_logits = self.discriminator.discriminator_predictions(d_hidden)  # (B, L): ElectraForPreTraining's logits
        w = attn.float()
        bce = F.binary_cross_entropy_with_logits(d_logits.float(), labels.float(), reduction="none")
        disc_loss = weighted_mean(bce, w)
        loss = c.gen_weight * mlm_loss + c.disc_weight * disc_loss

        if details is not None:
            with torch.no_grad():
                p = torch.softmax(g_logits.detach().float() / c.temperature, -1)[active]  # (S, V)
                p_orig = p.gather(-1, m.targets[active].unsqueeze(-1)).squeeze(-1)  # (S,)
                mass = p.sum(0)
                mass.index_add_(0, m.targets[active], -p_orig)  # a sample equal to the original is real
                details["replacement_mass"] = details.get("replacement_mass", 0) + mass.clamp_min(0)
                real_pos = attn.bool()
                details.setdefault("tokens", []).append(
                    (fake[real_pos].cpu().numpy(), labels[real_pos].cpu().numpy(), bce[real_pos].cpu().numpy()))
        with torch.no_grad():
            pred = d_logits > 0
            real = attn.bool()
            tp = (pred & labels & real).sum().float()
            metrics = {
                "mlm_loss": mlm_loss.detach(),
                "disc_loss": disc_loss.detach(),
                "mlm_acc": weighted_mean(hit.view_as(m.weights).float(), m.weights),  # argmax = target
                "sampled_acc": weighted_mean((sampled == m.targets).float(), m.weights),
                "disc_acc": ((pred == labels) & real).sum().float() / real.sum(),
                "disc_precision": tp / (pred & real).sum().clamp_min(1),
                "disc_recall": tp / (labels & real).sum().clamp_min(1),
                "replaced_frac": labels.sum().float() / real.sum(),
            }
        return loss, metrics

    def save_pretrained(self, path: str | Path, tokenizer=None) -> None:
        """``path/discriminator`` (ElectraForPreTraining) and ``path/generator`` (ElectraForMaskedLM)."""
        path = Path(path)
        for name, model in (("discriminator", self.discriminator), ("generator", self.generator)):
            model.save_pretrained(path / name)
            if tokenizer is not None:
                tokenizer.save_pretrained(path / name)


class MLMPretrainer(_Pretrainer):
    """BERT-style masked LM baseline on the same code (ELECTRA's ``electra_objective=False``)."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int, special_ids: list[int], mask_id: int,
                 mlm=None):
        super().__init__(cfg, special_ids, mask_id)
        from transformers import ElectraForMaskedLM

        self.mlm = mlm or ElectraForMaskedLM(hf_config(cfg, vocab_size, pad_id))
        self.mlm.generator_lm_head.weight = self.mlm.electra.embeddings.word_embeddings.weight
        if cfg.bf16_stream:
            bf16_stream(self.mlm.electra.embeddings)
        self.vocab_size = vocab_size

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        ids, attn, seg = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
        m = self._mask(ids, attn, self.vocab_size)
        hidden = encode(self.mlm.electra, m.input_ids, attn, seg)  # (B, L, H)
        logits = masked_lm_logits(self.mlm, hidden, m.positions)  # (B, N, V)
        ce, _, hit = row_cross_entropy(logits.flatten(0, 1), m.targets.flatten(), stats=True)
        loss = weighted_mean(ce.view_as(m.weights), m.weights)
        with torch.no_grad():
            acc = weighted_mean(hit.view_as(m.weights).float(), m.weights)
        return loss, {"mlm_loss": loss.detach(), "mlm_acc": acc}

    def save_pretrained(self, path: str | Path, tokenizer=None) -> None:
        path = Path(path) / "mlm"
        self.mlm.save_pretrained(path)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)


def tie_generator(generator, discriminator) -> None:
    """Share the whole embedding module (token, position, segment, LayerNorm) and tie the
    generator's output layer to the shared token embeddings (paper section 3.2, "weight sharing")."""
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight


def load_pretrainer(path: str | Path, cfg: ModelConfig, special_ids: list[int], mask_id: int) -> _Pretrainer:
    """Rebuild a pre-trainer from folders written by ``save_pretrained`` (HF format)."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    path = Path(path)
    if (path / "mlm").is_dir():
        mlm = ElectraForMaskedLM.from_pretrained(path / "mlm")
        c = mlm.config
        return MLMPretrainer(cfg, c.vocab_size, c.pad_token_id, special_ids, mask_id, mlm=mlm)
    disc = ElectraForPreTraining.from_pretrained(path / "discriminator")
    gen = ElectraForMaskedLM.from_pretrained(path / "generator")
    c = disc.config
    return ElectraPretrainer(cfg, c.vocab_size, c.pad_token_id, special_ids, mask_id, discriminator=disc,
                             generator=gen)
