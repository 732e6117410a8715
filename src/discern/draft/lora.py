"""LoRA adapters on the UNet's attention projections (peft), saved in the ``diffusers`` LoRA format.

DRaFT trains only LoRA weights (Clark et al. 2024, section 3): W + (alpha / r) B A on ``to_q``,
``to_k``, ``to_v`` and ``to_out.0`` of every attention block.  At sampling time an adapter can be
scaled (W + a dW: interpolate or extrapolate the fine-tuning) and adapters trained on different
rewards mixed (W + a1 dW1 + a2 dW2) through ``diffusers``' ``set_adapters``.
"""

from __future__ import annotations

from pathlib import Path

import torch

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def add_lora(unet, rank: int = 8, alpha: float | None = None, name: str = "default", seed: int = 0) -> list:
    """Freeze ``unet`` and attach a LoRA adapter ``name``; returns its trainable parameters.
    B starts at 0 (the adapted model equals the base model); A is Gaussian, seeded."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, init_lora_weights="gaussian",
                                target_modules=TARGETS), adapter_name=name)
    return lora_parameters(unet, name)


def lora_parameters(unet, name: str = "default") -> list:
    params = [p for n, p in unet.named_parameters() if ".lora_" in n and n.endswith(f".{name}.weight")]
    for p in params:
        p.requires_grad_(True)
    return params


def save_lora(unet, directory, name: str = "default") -> Path:
    """Write ``pytorch_lora_weights.safetensors`` that ``pipe.load_lora_weights(directory)`` reads."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=name))
    StableDiffusionPipeline.save_lora_weights(directory, unet_lora_layers=state, safe_serialization=True)
    return directory


def load_adapters(pipe, adapters: dict[str, str | Path], weights: dict[str, float] | None = None):
    """Load LoRA folders into ``pipe`` under the given names and activate them with scales
    ``weights`` (default 1 each): W + sum_i a_i dW_i."""
    for name, path in adapters.items():
        if not (Path(path) / "pytorch_lora_weights.safetensors").is_file():
            from discern.core.errors import DiscernError

            raise DiscernError(f"{path}: no pytorch_lora_weights.safetensors (train one with `discern draft train`)")
        pipe.load_lora_weights(str(path), adapter_name=name)
    names = list(adapters)
    pipe.set_adapters(names, adapter_weights=[float((weights or {}).get(n, 1.0)) for n in names])
    return pipe
