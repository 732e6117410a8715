"""Sentence scorers for n-best re-ranking: one interface, ``Scorer.score(sentences) -> list[float]`` (a log
probability or pseudo-log-likelihood; higher = more likely), and ``Scorer.passes(sentence)``, the transformer
passes one sentence costs (Electric paper, Table 3's "passes" column).

- ``MaskedLMScorer``: the MLM pseudo-log-likelihood baseline of Salazar et al. 2020, "Masked Language Model
  Scoring" (arXiv 1910.14659), Eq. 2: PLL(x) = Σ_t log P_MLM(x_t | x_\\t), one pass per token, each with x_t
  replaced by [MASK]. Works with any ``AutoModelForMaskedLM`` (BERT, the ELECTRA generator, RoBERTa).
- ``CausalLMScorer``: log p(x) = Σ_t log p(x_t | x_<t) from a causal LM (GPT-2, SmolLM2), one pass.

Electric's own one-pass PLL (paper Section 2.1, PLL = −Σ_t E(x)_t) implements the same protocol elsewhere in
this package.

Dimension legend: R masked copies in a batch (rows), L padded length, H hidden size, V vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import torch

from discern.core.errors import DiscernError
from discern.core.files import first_line
from discern.llm import load_causal_lm, sequence_logprobs

TextTransform = Callable[[str], str]


@runtime_checkable
class Scorer(Protocol):
    """Scores sentences; higher = more likely. ``passes`` counts transformer passes for one sentence."""

    name: str

    def score(self, sentences: list[str]) -> list[float]: ...

    def passes(self, sentence: str) -> int: ...


def sentence_case(text: str) -> str:
    """ASR hypotheses come lower-case without punctuation; written-text LMs prefer a sentence:
    "he might even have been made amiable himself" -> "He might even have been made amiable himself."."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _apply(transform: TextTransform | None, sentences: Sequence[str]) -> list[str]:
    return [transform(s) for s in sentences] if transform else list(sentences)


# --------------------------------------------------------------------------------------------------------------
# Masked-LM pseudo-log-likelihood (Salazar et al. 2020)

def _masked_head(model) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]] | None:
    """(encoder, head) for MLM classes whose head is position-wise, so only masked positions need the
    (H -> V) projection; None for others (the generic path then takes full logits)."""
    kind = type(model).__name__
    if kind == "BertForMaskedLM":
        return model.bert, model.cls
    if kind == "ElectraForMaskedLM":
        return model.electra, lambda h: model.generator_lm_head(model.generator_predictions(h))
    if kind in ("RobertaForMaskedLM", "XLMRobertaForMaskedLM"):
        return model.roberta, model.lm_head
    return None


def checked_batch_size(batch_size: int, who: str) -> int:
    """``batch_size`` if it is at least 1, else a one-line error (a step of 0 or below would score
    nothing, and a negative one silently gave every sentence 0)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DiscernError(f"{who}: batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


class MaskedLMScorer:
    """PLL(x) = Σ_{t=1..|x|} log P(x_t | x with x_t replaced by [MASK]) (Salazar et al. 2020, Eq. 2).

    Each sentence is tokenized as ``[CLS] x [SEP]`` (the tokenizer's own special tokens); every non-special
    position gets one masked copy; copies of many sentences are packed into rows of ``batch_size`` (longest
    sentences first, right padding, attention mask), so a sentence's score does not depend on its neighbours.

    Args:
        model: any ``AutoModelForMaskedLM``; moved to ``device``; scored in eval mode (its mode is restored).
        tokenizer: its tokenizer (must have a mask token).
        batch_size: masked copies per forward pass.
        device: torch device for the forward passes.
        bf16: run the encoder under bf16 autocast (log-softmax stays fp32).
        text_transform: applied to each sentence before tokenizing (e.g. ``sentence_case``); None keeps it.
        fast: for BERT / ELECTRA / RoBERTa, project only the masked position to the vocabulary (same result).
        name: label for reports; defaults to ``mlm-pll:<model class>``.
    """

    def __init__(self, model, tokenizer, batch_size: int = 64, device: str | torch.device = "cpu",
                 bf16: bool = False, text_transform: TextTransform | None = None, fast: bool = True,
                 name: str | None = None):
        if tokenizer.mask_token_id is None:
            raise DiscernError(f"MaskedLMScorer: tokenizer {type(tokenizer).__name__} has no mask token")
        checked_batch_size(batch_size, "MaskedLMScorer")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.bf16 = bf16
        self.text_transform = text_transform
        self.fast = fast
        self.name = name or f"mlm-pll:{type(model).__name__}"
        self.max_len = getattr(model.config, "max_position_embeddings", None)
        if self.max_len and getattr(model.config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
            self.max_len -= (model.config.pad_token_id or 0) + 1  # RoBERTa positions start after padding_idx

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "MaskedLMScorer":
        """Load ``AutoModelForMaskedLM`` + ``AutoTokenizer`` from a folder (or hub id, offline-aware)."""
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            model = AutoModelForMaskedLM.from_pretrained(str(path))
        except (OSError, ValueError) as e:
            raise DiscernError(f"cannot load a masked LM from {path}: {first_line(e)}") from None
        kwargs.setdefault("name", f"mlm-pll:{Path(str(path)).name}")
        return cls(model, tokenizer, **kwargs)

    def _encode(self, sentences: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Per sentence: (token ids with special tokens, positions of the real tokens to mask)."""
        if isinstance(sentences, str):
            raise DiscernError("MaskedLMScorer: pass a list of sentences, not one string")
        sentences = _apply(self.text_transform, sentences)
        if not sentences:
            return []
        enc = self.tokenizer(sentences, add_special_tokens=True, return_special_tokens_mask=True)
        out = []
        for s, ids, special in zip(sentences, enc["input_ids"], enc["special_tokens_mask"]):
            if self.max_len and len(ids) > self.max_len:
                raise DiscernError(f"MaskedLMScorer: sentence has {len(ids)} tokens, more than the model's"
                                   f" {self.max_len} positions: {s[:60]!r}")
            out.append((list(ids), [t for t, sp in enumerate(special) if not sp]))
        return out

    def passes(self, sentence: str) -> int:
        """One pass per token: the number of non-special tokens."""
        return len(self._encode([sentence])[0][1])

    def score(self, sentences: list[str]) -> list[float]:
        return [sum(t) for t in self.token_logprobs(sentences)]

    def token_logprobs(self, sentences: Sequence[str]) -> list[list[float]]:
        """Per sentence, log P(x_t | x_\\t) for each real token t in order (their sum is the PLL)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self._token_logprobs(self._encode(sentences))
        finally:
            self.model.train(was_training)

    def _token_logprobs(self, encoded: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][0]), i))
        copies = [(i, t) for i in order for t in encoded[i][1]]  # one masked copy per (sentence, position)
        out: list[list[float]] = [[0.0] * len(encoded[i][1]) for i in range(len(encoded))]
        slot = {(i, t): k for i in range(len(encoded)) for k, t in enumerate(encoded[i][1])}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        mask_id = self.tokenizer.mask_token_id
        for b in range(0, len(copies), self.batch_size):
            rows = copies[b:b + self.batch_size]
            L = max(len(encoded[i][0]) for i, _ in rows)
            ids = torch.full((len(rows), L), pad, dtype=torch.long)  # (R, L)
            attn = torch.zeros((len(rows), L), dtype=torch.long)
            for r, (i, t) in enumerate(rows):
                n = len(encoded[i][0])
                ids[r, :n] = torch.tensor(encoded[i][0])
                attn[r, :n] = 1
            pos = torch.tensor([t for _, t in rows])  # (R,) the masked position of each row
            target = ids[torch.arange(len(rows)), pos].clone()  # (R,) the original tokens
            ids[torch.arange(len(rows)), pos] = mask_id
            lp = self._masked_logprobs(ids.to(self.device), attn.to(self.device), pos.to(self.device),
                                       target.to(self.device)).tolist()
            for r, (i, t) in enumerate(rows):
                out[i][slot[(i, t)]] = lp[r]
        return out

    def _masked_logprobs(self, ids, attn, pos, target) -> torch.Tensor:
        """(R,) log softmax(logits at each row's masked position)[original token], in fp32."""
        rows = torch.arange(ids.shape[0], device=ids.device)
        split = _masked_head(self.model) if self.fast else None
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if split is not None:
                encoder, head = split
                hidden = encoder(input_ids=ids, attention_mask=attn).last_hidden_state  # (R, L, H)
                logits = head(hidden[rows, pos])  # (R, V)
            else:
                logits = self.model(input_ids=ids, attention_mask=attn).logits[rows, pos]  # (R, V)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (R, V)
        return logp.gather(-1, target[:, None]).squeeze(-1)


# --------------------------------------------------------------------------------------------------------------
# Causal LM log-likelihood

class CausalLMScorer:
    """log p(x) = Σ_t log p(x_t | BOS, x_<t) from a causal LM; one pass per sentence.

    Args:
        model, tokenizer: a Hugging Face causal LM and its tokenizer (see ``discern.llm.load_causal_lm``).
        batch_size: sentences per forward pass.
        text_transform: applied to each sentence first (e.g. ``sentence_case``); None keeps it.
        bos_token_id: token to condition on instead of the tokenizer's BOS (else EOS).
        name: label for reports; defaults to ``causal-lm:<model class>``.
    """

    def __init__(self, model, tokenizer, batch_size: int = 16, text_transform: TextTransform | None = None,
                 bos_token_id: int | None = None, name: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = checked_batch_size(batch_size, "CausalLMScorer")
        self.text_transform = text_transform
        self.bos_token_id = bos_token_id
        self.name = name or f"causal-lm:{type(model).__name__}"

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, dtype: torch.dtype = torch.float32,
                        **kwargs) -> "CausalLMScorer":
        """``"smollm2"``, a ``.gguf`` file, or a Hugging Face causal-LM folder / hub id (cached per process)."""
        model, tokenizer = load_causal_lm(name_or_path, dtype=dtype)
        kwargs.setdefault("name", f"causal-lm:{Path(str(name_or_path)).name}")
        return cls(model, tokenizer, **kwargs)

    def passes(self, sentence: str) -> int:
        return 1

    def score(self, sentences: list[str]) -> list[float]:
        return sequence_logprobs(self.model, self.tokenizer, _apply(self.text_transform, sentences),
                                 batch_size=self.batch_size, bos_token_id=self.bos_token_id)
