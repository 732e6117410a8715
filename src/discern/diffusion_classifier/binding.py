"""Attribute binding (Clark & Jaini 2023, section 5, after Lewis et al. 2022): does a model prefer
"a red circle and a blue square" over the swapped "a blue circle and a red square" for an image
that shows the former?  Chance is 50%: both captions contain the same words.

- The diffusion model prefers the caption with the lower denoising error, with the same (t, eps)
  pairs for both captions.
- The contrastive reference is a small CLIP (:class:`ContrastiveModel`: a CNN image encoder and a
  ``CLIPTextModel`` text transformer over the CLIP vocabulary, pooled at the end token as in CLIP,
  trained with the symmetric InfoNCE loss of Radford et al. 2021); it prefers the caption with the
  higher cosine similarity.  Its text encoder sees word order, so whether it binds is an empirical
  question, as for CLIP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from discern.core import Run, derive_seed, progress

from .config import BindingConfig  # noqa: F401  (its old home)


class ContrastiveModel(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 64, channels: int = 3, size: int = 32, max_length: int = 16,
                 eos_token_id: int = 49407):
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel

        self.image = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, dim))
        self.text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=dim, intermediate_size=2 * dim,
                                                 num_hidden_layers=2, num_attention_heads=2,
                                                 max_position_embeddings=max_length, eos_token_id=eos_token_id))
        self.text_proj = nn.Linear(dim, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), CLIP's initial temperature

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(x), dim=-1)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = self.text(input_ids=ids, attention_mask=mask).pooler_output  # the end token's state
        return F.normalize(self.text_proj(pooled), dim=-1)

    def loss(self, x, ids, mask) -> torch.Tensor:
        """Symmetric InfoNCE over the batch (image i matches caption i)."""
        logits = self.logit_scale.exp() * self.encode_image(x) @ self.encode_text(ids, mask).T
        target = torch.arange(len(x))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def train_contrastive(images: torch.Tensor, captions: list[str], tokenizer, steps: int = 300, batch_size: int = 64,
                      lr: float = 2e-3, seed: int = 0) -> ContrastiveModel:
    torch.manual_seed(seed)
    enc = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt")
    model = ContrastiveModel(len(tokenizer), channels=images.shape[1], size=images.shape[-1],
                             max_length=tokenizer.model_max_length, eos_token_id=tokenizer.eos_token_id)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in progress(range(steps), desc="contrastive"):
        g = torch.Generator().manual_seed(derive_seed(seed, "contrastive", step))
        idx = torch.randperm(len(captions), generator=g)[:batch_size]
        loss = model.loss(images[idx], enc["input_ids"][idx], enc["attention_mask"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def contrastive_prefers_true(model: ContrastiveModel, images, true_caps, swapped_caps, tokenizer) -> list[bool]:
    kw = {"padding": "max_length", "max_length": tokenizer.model_max_length, "truncation": True, "return_tensors": "pt"}
    enc_t, enc_s = tokenizer(true_caps, **kw), tokenizer(swapped_caps, **kw)
    im = model.encode_image(images)
    st = (im * model.encode_text(enc_t["input_ids"], enc_t["attention_mask"])).sum(-1)
    ss = (im * model.encode_text(enc_s["input_ids"], enc_s["attention_mask"])).sum(-1)
    return (st > ss).tolist()


@torch.no_grad()
def diffusion_prefers_true(den, images, true_caps, swapped_caps, samples: int = 64, seed: int = 0,
                           batch_size: int = 128) -> list[bool]:
    """Lower mean denoising error for the true caption, with shared (t, eps) per image."""
    from .classify import image_noise
    from .scores import score_matrix

    out = []
    for i in progress(range(len(images)), desc="binding (diffusion)"):
        x0 = den.encode_images(images[i:i + 1])
        ts, eps = image_noise(den, x0, samples, seed, i)
        conds = den.encode_prompts([true_caps[i], swapped_caps[i]])
        e = score_matrix(den, x0, conds, ts, eps, "mse", batch_size).mean(1)
        out.append(bool(e[0] < e[1]))
    return out


def binomial_p(k: int, n: int) -> float:
    """One-sided P(X >= k) for X ~ Binomial(n, 1/2): how surprising k preferences out of n are at chance."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, n, 0.5))


def run_binding(cfg: BindingConfig, run: Run) -> dict:
    """Train a small text-to-image model (in ``<run>/binding_t2i``, resumable) and a small CLIP on
    ``cfg.train_scenes`` scenes; score true vs swapped captions on ``cfg.test_scenes`` new scenes
    (another seed).  Returns each model's preference accuracy, one-sided binomial p-value and
    whether it binds at ``cfg.alpha``, and every scene's preferences (paired: the same scenes)."""
    from discern.data.scenes import make_scenes
    from discern.diffusion import Denoiser, clip_tokenizer
    from discern.diffusion.captions import to_tensor
    from discern.train.text_to_image import train_or_load

    size = cfg.model.image_size
    tr_imgs, tr_scenes = make_scenes(cfg.train_scenes, size, seed=derive_seed(cfg.seed, "scenes-train"))
    te_imgs, te_scenes = make_scenes(cfg.test_scenes, size, seed=derive_seed(cfg.seed, "scenes-test"))
    x_train, x_test = to_tensor(tr_imgs, size), to_tensor(te_imgs, size)
    true_caps, swapped_caps = [s.caption for s in te_scenes], [s.swapped for s in te_scenes]

    pipe = train_or_load(run.path / "binding_t2i", cfg.model, cfg.train, x_train, list(range(len(tr_scenes))),
                         [s.caption for s in tr_scenes], cfg.seed, "text-to-image (scenes)", templates=False)
    den = Denoiser(pipe)
    diff = diffusion_prefers_true(den, x_test, true_caps, swapped_caps, samples=cfg.samples, seed=cfg.seed)

    clip = train_contrastive(x_train, [s.caption for s in tr_scenes], clip_tokenizer(cfg.model.max_length),
                             steps=cfg.contrastive_steps, batch_size=cfg.contrastive_batch, seed=cfg.seed)
    con = contrastive_prefers_true(clip, x_test, true_caps, swapped_caps, clip_tokenizer(cfg.model.max_length))

    def verdict(prefs):
        k, n = sum(prefs), len(prefs)
        p = binomial_p(k, n)
        return {"accuracy": 100.0 * k / n, "preferred_true": k, "scenes": n, "p_value": p, "binds": p < cfg.alpha}

    return {"diffusion": verdict(diff), "contrastive": verdict(con), "chance": 50.0, "alpha": cfg.alpha,
            "preferences": {"diffusion": [bool(v) for v in diff], "contrastive": [bool(v) for v in con]},
            "diffusion_evaluations_per_scene": 2 * cfg.samples,
            "examples": [{"caption": t, "swapped": s, "diffusion": d, "contrastive": c}
                         for t, s, d, c in list(zip(true_caps, swapped_caps, diff, con))[:8]]}
