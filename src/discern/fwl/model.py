"""Any Hugging Face causal LM with a Fast Weight Layer block on top (paper section 3).

The block reads the LM's final hidden states (after its final norm) and replaces the LM's
output head: Dense(4S) -> SquaredReLU -> Dense(S) -> LayerNorm -> unembedding.  With the default
``size = hidden size`` the unembedding is the LM's own (tied) output matrix, so a pretrained
vocabulary projection is reused; it is not fast-weighted.

``residual=True`` (the default, for pretrained LMs) adds the block to the hidden state with the
LayerNorm gain starting at 0, so the wrapped model starts as exactly the base model and the
fine-tuning learns how much fast weights to add; ``residual=False`` is the paper's placement,
for a model trained together with its FWL from scratch.  ``fast_weights=False`` is the control:
the same block with every step size fixed at 0 and not trained, so it adds a trained slow block
and nothing else.  ``seed`` draws the block's initial weights (same seed, same block: the FWL and
its control start identical).  Labels for the fast-weight update are
the next tokens (the input shifted by one), weighted 0 at padding and at the last position.

:class:`FWLCausalLM` is a ``transformers`` model (``PreTrainedModel`` + ``GenerationMixin``) with
config :class:`FWLConfig` (the base LM's config as ``base_config``, whatever its model type, and the
block's hyperparameters).  ``save_pretrained`` writes one folder (``config.json``,
``model.safetensors``, ``generation_config.json``); ``FWLCausalLM.from_pretrained`` loads it, and so
does ``AutoModelForCausalLM.from_pretrained`` once ``discern.fwl`` is imported (the
``discern_fwl`` model type is registered with ``AutoConfig`` and ``AutoModelForCausalLM``; the
base LM's type varies inside the config, so one registration covers every base).  Folders saved
before, ``<dir>/base`` (the causal LM's folder) plus ``<dir>/fwl.pt`` and ``<dir>/fwl.json``,
still load with ``FWLCausalLM.from_pretrained``.  ``generate`` works without a key/value cache:
every step runs the whole sequence, since the fast weights at a position depend on all earlier
tokens.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import CausalLMOutputWithPast

from discern.core import CheckpointError

from .layer import FastWeightBlock


class FWLConfig(PretrainedConfig):
    """The base causal LM's config (``base_config``: a dict with its ``model_type``, or a config) and
    the FWL block's hyperparameters: ``size`` (block width; ``None`` = the LM's hidden size, sharing
    its output matrix), ``attn_chunks``, ``residual``, ``fast_weights`` (``False``: the control) and
    ``eps`` (the block's LayerNorm)."""

    model_type = "discern_fwl"
    sub_configs_defaults = {"base_config": SubConfigSpec(config_class=AutoConfig, model_type="gpt2")}

    base_config: dict | PretrainedConfig | None = None
    size: int | None = None
    attn_chunks: int = 1
    residual: bool = True
    fast_weights: bool = True
    eps: float = 1e-6
    tie_word_embeddings: bool = True  # the block's unembedding is the LM's output matrix when size is None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        hidden = int(self.base_config.hidden_size)
        if self.size is None or int(self.size) == hidden:
            self.size = None
        self.tie_word_embeddings = self.size is None

    def get_text_config(self, decoder=None, encoder=None) -> PretrainedConfig:
        """The base LM's config (vocabulary, layers) for generation."""
        return self.base_config


class FWLCausalLM(PreTrainedModel, GenerationMixin):
    """A causal LM with an FWL block as its output head; ``forward`` returns
    ``CausalLMOutputWithPast`` with the fast-weight logits (B, T, V) (and ``loss`` given ``labels``).

    Two constructors: ``FWLCausalLM(config)`` (an :class:`FWLConfig`; what ``from_pretrained``
    calls: the LM is ``AutoModelForCausalLM.from_config(config.base_config)``) and
    ``FWLCausalLM(base, size, attn_chunks, residual, fast_weights, seed)`` around an existing causal
    LM, whose weights are kept."""

    config_class = FWLConfig
    base_model_prefix = "fwl"
    main_input_name = "input_ids"
    # attention is the base LM's: these let its own config choose the kernel
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: FWLConfig | nn.Module, size: int | None = None, attn_chunks: int = 1,
                 residual: bool = True, fast_weights: bool = True, seed: int | None = None):
        base = None
        if not isinstance(config, PretrainedConfig):  # FWLCausalLM(base, size, ...)
            base = config
            # the LM's config is shared, not copied; {} leaves its attention / experts kernels as they are
            config = FWLConfig(base_config=base.config, size=size, attn_chunks=attn_chunks, residual=residual,
                               fast_weights=fast_weights, attn_implementation={}, experts_implementation={})
        super().__init__(config)
        if base is None:
            base = AutoModelForCausalLM.from_config(config.base_config)
        self.base = base
        d = int(config.base_config.hidden_size)
        size = config.size or d
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        head = base.get_output_embeddings()
        if size == d:
            unembed = head
        else:
            unembed = nn.Linear(size, int(config.base_config.vocab_size), bias=False)
            if not unembed.weight.is_meta:
                with torch.no_grad():  # nn.Linear's own default init, drawn from the block's generator
                    bound = 1.0 / size ** 0.5
                    unembed.weight.uniform_(-bound, bound, generator=gen)
        self.block = FastWeightBlock(d, size, unembed, attn_chunks=config.attn_chunks, eps=config.eps,
                                     residual=config.residual, generator=gen)
        if not config.fast_weights:
            self.block.freeze_steps()
        self.size = size
        # the shared output matrix is one tensor under three names (e.g. wte, lm_head, block.unembed): tell
        # save_pretrained which one to keep and from_pretrained what to tie back
        if unembed is head:
            name = next(n for n, m in base.named_modules() if m is head) + ".weight"
            source = getattr(base, "all_tied_weights_keys", {}).get(name, name)  # the LM's own tie, if any
            self._tied_weights_keys = {"block.unembed.weight": f"base.{source}"}
        self.generation_config = copy.deepcopy(base.generation_config)
        self.generation_config.use_cache = False  # no key/value cache: each step reads the whole sequence
        if not any(p.is_meta for p in self.block.parameters()):  # from_pretrained builds on meta
            for m in self.modules():  # initialised: the LM by its loader or constructor, the block from the seed
                m._is_hf_initialized = True
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """For weights a checkpoint lacks: the block's init (kernels N(0, 0.05), biases 0, LayerNorm 1 / 0)."""
        from transformers import initialization as init

        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=0.05)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> "FWLCausalLM":
        """``PreTrainedModel.from_pretrained``; a folder in the layout saved before (``base/``, ``fwl.pt``,
        ``fwl.json``) loads too (in train mode, as it did)."""
        path = Path(str(pretrained_model_name_or_path))
        if (path / "fwl.json").is_file() and not (path / "config.json").is_file():
            return cls._from_old_layout(path)
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if not model.config.fast_weights:  # loading makes new parameters: the control's step sizes stay untrained
            for p in model.block.steps.values():
                p.requires_grad_(False)
        return model

    @classmethod
    def _from_old_layout(cls, path: Path) -> "FWLCausalLM":
        meta = json.loads((path / "fwl.json").read_text())
        model = cls(AutoModelForCausalLM.from_pretrained(str(path / "base")), meta["size"], meta["attn_chunks"],
                    meta["residual"], fast_weights=meta.get("fast_weights", True))
        res = model.block.load_state_dict(torch.load(path / "fwl.pt", weights_only=True), strict=False)
        missing = [k for k in res.missing_keys if not k.startswith("unembed.")]
        if missing or res.unexpected_keys:
            raise CheckpointError(f"{path / 'fwl.pt'}: missing {missing}, unexpected {res.unexpected_keys}")
        return model.train()

    @property
    def fast_weights(self) -> bool:
        return self.block.fast

    def get_input_embeddings(self) -> nn.Module:
        return self.base.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.base.get_output_embeddings()

    @staticmethod
    def next_token_targets(input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """(mask, labels, weights): labels are the next tokens; weight 0 at padding and at the last position."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        labels = torch.roll(input_ids, -1, dims=1)
        weights = (attention_mask * torch.roll(attention_mask, -1, dims=1)).float()
        weights[:, -1] = 0.0  # no next token after the last position
        return attention_mask, labels, weights

    def fast_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Fast-weight logits (B, T, V) for predicting token t+1 at position t."""
        attention_mask, labels, weights = self.next_token_targets(input_ids, attention_mask)
        body = self.base.get_decoder() if hasattr(self.base, "get_decoder") else self.base.base_model
        kwargs = {} if position_ids is None else {"position_ids": position_ids}
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state  # (B, T, D)
        return self.block(hidden, labels, weights.to(hidden.dtype))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs) -> CausalLMOutputWithPast | tuple:
        """``logits``: the fast-weight logits (B, T, V); with ``labels`` (the input ids, shifted here as
        by every ``*ForCausalLM``; -100 is ignored) also ``loss``, the mean next-token cross-entropy.
        Cache arguments are accepted and ignored (no key/value cache)."""
        logits = self.fast_logits(input_ids, attention_mask, position_ids)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                               ignore_index=-100)
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-token cross-entropy of the fast-weight logits over real next tokens."""
        attention_mask, labels, w = self.next_token_targets(input_ids, attention_mask)
        logits = self.fast_logits(input_ids, attention_mask)
        ce = nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="none")
        return (ce * w.flatten()).sum() / w.sum().clamp_min(1.0)

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                                      **kwargs) -> dict:
        """The whole sequence at every step (no cache), with positions counted over real tokens so left
        padding does not shift them."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if attention_mask is not None:
            inputs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        return inputs


def register_auto_classes() -> None:
    """``AutoConfig`` / ``AutoModelForCausalLM`` learn the ``discern_fwl`` model type (idempotent)."""
    AutoConfig.register(FWLConfig.model_type, FWLConfig, exist_ok=True)
    AutoModelForCausalLM.register(FWLConfig, FWLCausalLM, exist_ok=True)


def is_fwl_folder(path: str | Path) -> bool:
    """An FWL model folder: ``config.json`` of model type ``discern_fwl``, or the old ``fwl.json``."""
    from discern.core.files import is_saved_model

    return is_saved_model(path, FWLConfig.model_type, legacy_file="fwl.json")


register_auto_classes()
