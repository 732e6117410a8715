"""Differentiable rewards: ``reward(images, prompts) -> (B,)``, images (B, C, H, W) in [-1, 1].

Every reward is a torch function of the pixels, so DRaFT can back-propagate through it (no PIL or
uint8 round trip, no ``no_grad``).

- :class:`ClassifierReward`: log p(target class | image) of a classifier (e.g. the small
  Fashion-MNIST CNN), the classifier-guidance style reward.
- :class:`ImageStatReward`: contrast (pixel std), brightness, or a compressibility proxy
  (minus the mean absolute difference of neighbouring pixels: flat images compress well).
- :class:`AestheticReward`: the LAION aesthetic predictor v2 architecture, an MLP
  768-1024-128-64-16-1 on the L2-normalised CLIP ViT-L/14 image embedding; loads the released
  ``.pth`` and a CLIP folder when a user has them.
- :class:`PreferenceReward`: HPSv2 / PickScore style, the scaled cosine similarity of CLIP image
  and text embeddings from a preference-tuned CLIP folder.

Missing weights raise a clear error; a randomly initialised scorer exists only when built
explicitly from a config (tests).  :func:`build_reward` turns a reward's name into one;
:func:`train_classifier` trains (or reloads) the small Fashion-MNIST CNN behind the classifier rewards.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from discern.core.errors import DiscernError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_pixels(images: torch.Tensor, size: int) -> torch.Tensor:
    """[-1, 1] images -> CLIP's input (3 channels, size x size, normalised), differentiably."""
    x = (images + 1) / 2
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


class ClassifierReward(nn.Module):
    def __init__(self, classifier: nn.Module, target: int):
        super().__init__()
        self.classifier, self.target = classifier.eval().requires_grad_(False), int(target)

    def forward(self, images, prompts=None):
        return F.log_softmax(self.classifier(images), dim=-1)[:, self.target]


class PromptClassReward(nn.Module):
    """log p(the class the prompt names | image): ``names[k]`` is looked up in each prompt (the
    longest name that occurs wins, so "ankle boot" beats "boot")."""

    def __init__(self, classifier: nn.Module, names: list[str]):
        super().__init__()
        self.classifier, self.names = classifier.eval().requires_grad_(False), list(names)

    def target(self, prompt: str) -> int:
        hits = [k for k, n in enumerate(self.names) if n in prompt]
        if not hits:
            raise DiscernError(f"prompt {prompt!r} names none of the classes {self.names}")
        return max(hits, key=lambda k: len(self.names[k]))

    def forward(self, images, prompts):
        idx = torch.tensor([self.target(p) for p in prompts], device=images.device)
        return F.log_softmax(self.classifier(images), dim=-1).gather(1, idx[:, None]).squeeze(1)


class ImageStatReward(nn.Module):
    KINDS = ("contrast", "brightness", "compressibility")

    def __init__(self, kind: str = "contrast"):
        super().__init__()
        if kind not in self.KINDS:
            raise DiscernError(f"unknown image statistic {kind!r} (choose from {', '.join(self.KINDS)})")
        self.kind = kind

    def forward(self, images, prompts=None):
        if self.kind == "contrast":
            return images.flatten(1).std(1)
        if self.kind == "brightness":
            return images.flatten(1).mean(1)
        dx = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(1)
        dy = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(1)
        return -(dx + dy) / 2


class AestheticMLP(nn.Module):
    """The LAION aesthetic predictor v2 head (layer indices as in its released state dict)."""

    def __init__(self, dim: int = 768):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, emb):
        return self.layers(emb).squeeze(-1)


class AestheticReward(nn.Module):
    def __init__(self, clip_vision, mlp: AestheticMLP):
        super().__init__()
        self.clip = clip_vision.eval().requires_grad_(False)
        self.mlp = mlp.eval().requires_grad_(False)
        self.size = clip_vision.config.image_size

    @classmethod
    def from_pretrained(cls, mlp_path, clip_dir) -> "AestheticReward":
        """``mlp_path``: the released ``sac+logos+ava1-l14-linearMSE.pth``; ``clip_dir``: a
        ``CLIPVisionModelWithProjection`` folder (openai/clip-vit-large-patch14)."""
        from transformers import CLIPVisionModelWithProjection

        if not Path(mlp_path).is_file():
            raise DiscernError(f"aesthetic predictor weights not found: {mlp_path} (the LAION improved aesthetic "
                               "predictor's sac+logos+ava1-l14-linearMSE.pth)")
        if not Path(clip_dir, "config.json").is_file():
            raise DiscernError(f"CLIP folder not found: {clip_dir} (openai/clip-vit-large-patch14, saved locally)")
        clip = CLIPVisionModelWithProjection.from_pretrained(clip_dir)
        mlp = AestheticMLP(clip.config.projection_dim)
        mlp.load_state_dict(torch.load(mlp_path, map_location="cpu", weights_only=True))
        return cls(clip, mlp)

    def forward(self, images, prompts=None):
        emb = self.clip(pixel_values=clip_pixels(images, self.size)).image_embeds
        return self.mlp(F.normalize(emb, dim=-1))


def _features(out) -> torch.Tensor:
    """transformers 5 returns the projected embedding as ``pooler_output``; 4.x returned the tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class PreferenceReward(nn.Module):
    """logit_scale * cos(image, prompt) of a preference-tuned CLIP (PickScore, HPSv2 in HF format)."""

    def __init__(self, clip_model, tokenizer):
        super().__init__()
        self.clip = clip_model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.size = clip_model.config.vision_config.image_size

    @classmethod
    def from_pretrained(cls, clip_dir) -> "PreferenceReward":
        from transformers import AutoTokenizer, CLIPModel

        if not Path(clip_dir, "config.json").is_file():
            raise DiscernError(f"preference model not found: {clip_dir} (a CLIPModel folder such as "
                               "yuvalkirstain/PickScore_v1, saved locally)")
        return cls(CLIPModel.from_pretrained(clip_dir), AutoTokenizer.from_pretrained(clip_dir))

    def forward(self, images, prompts):
        tok = self.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt").to(images.device)
        img = F.normalize(_features(self.clip.get_image_features(pixel_values=clip_pixels(images, self.size))), dim=-1)
        txt = F.normalize(_features(self.clip.get_text_features(**tok)), dim=-1)
        return self.clip.logit_scale.exp() * (img * txt).sum(-1)


def fashion_tensor(images, size: int) -> torch.Tensor:
    """Fashion-MNIST uint8 (N, 28, 28) -> (N, 1, size, size) in [-1, 1]: padded when size >= 28,
    area-downsampled otherwise."""
    from discern.diffusion.captions import to_tensor

    if size >= 28:
        return to_tensor(images, size)
    return F.interpolate(to_tensor(images, 28), size=(size, size), mode="area")


def train_classifier(images: torch.Tensor, labels, cache: Path | None = None, epochs: int = 1, seed: int = 0,
                     desc: str = "Fashion-MNIST CNN (reward)"):
    """The small CNN on (N, 1, H, W) images in [-1, 1]: loaded from ``cache`` when that file exists,
    else trained (Adam, cross-entropy) and saved there."""
    from discern.nn.cnn import SmallCNN, train_cnn

    if cache is not None and Path(cache).is_file():
        model = SmallCNN(10, images.shape[1], images.shape[-1])
        model.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        return model.eval()
    model = train_cnn(images, labels, 10, epochs=epochs, seed=seed, desc=desc)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), cache)
    return model.eval()


def fashion_classifier(epochs: int = 1, size: int = 28):
    """The classifier of the ``classifier:<class>`` reward: the small CNN trained on Fashion-MNIST
    (data registry), cached in the runs folder."""
    from discern.core.runs import runs_root
    from discern.data.corpora import fashion_mnist

    path = runs_root() / "draft" / f"fashion-cnn-{size}.pt"
    if path.is_file():
        return train_classifier(torch.zeros(1, 1, size, size), [0], path)
    imgs, labels = fashion_mnist("train")
    return train_classifier(fashion_tensor(imgs, size), labels, path, epochs)


REWARDS = "contrast, brightness, compressibility, classifier:<Fashion-MNIST class>, aesthetic, preference"


def build_reward(name: str, aesthetic_weights=None, clip=None) -> nn.Module:
    """A reward by name: an image statistic, ``classifier:<class>``, ``aesthetic`` (needs the LAION
    MLP weights and a CLIP folder) or ``preference`` (a PickScore / HPS CLIP folder)."""
    if name in ImageStatReward.KINDS:
        return ImageStatReward(name)
    if name.startswith("classifier:"):
        from discern.diffusion.captions import FASHION_NAMES

        target = name.split(":", 1)[1]
        if target not in FASHION_NAMES:
            raise DiscernError(f"unknown Fashion-MNIST class {target!r} (choose from {', '.join(FASHION_NAMES)})")
        return ClassifierReward(fashion_classifier(), FASHION_NAMES.index(target))
    if name == "aesthetic":
        if not aesthetic_weights or not clip:
            raise DiscernError("reward 'aesthetic' needs --aesthetic-weights PTH and --clip DIR")
        return AestheticReward.from_pretrained(aesthetic_weights, clip)
    if name == "preference":
        if not clip:
            raise DiscernError("reward 'preference' needs --clip DIR (a PickScore or HPS CLIP folder)")
        return PreferenceReward.from_pretrained(clip)
    raise DiscernError(f"unknown reward {name!r} ({REWARDS})")
