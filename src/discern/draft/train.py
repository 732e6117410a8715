"""Reward fine-tuning of a text-to-image pipeline's LoRA weights, with any of the five methods.

Every update draws ``batch_size`` prompts and initial noises (a function of the seed and the update
number, so a resumed run repeats them, and two methods run with the same seed see the same
batches), computes the method's loss (:mod:`.methods`, :mod:`.ddpo`), clips the gradient norm and
steps AdamW on the LoRA parameters only.  Samples are counted as the number of full sampler chains
generated (DRaFT-LV's one-step re-noised copies are not chains).

Evaluation (the curve of the paper's Figure 3) uses fixed prompts and initial noises, and for
eta > 0 fixed per-step noises too, so every evaluation of every run sees the same draws and
rewards are paired image by image.  It runs at every sampler eta of ``eval_etas`` (DDPO trains the
eta = 1 policy; the gradient methods the deterministic eta = 0 sampler), after the updates of
:func:`eval_schedule` (denser early), and, when given, on held-out prompts and with a held-out
reward model.
"""

from __future__ import annotations

import torch

from discern.core import Run, derive_seed, progress
from discern.core.checkpoint import load_checkpoint, save_checkpoint
from discern.core.errors import DiscernError

from .config import METHODS, DraftConfig, SamplerConfig, TrainCommandConfig  # noqa: F401  (METHODS: old import)


def eval_schedule(updates: int, every: int) -> list[int]:
    """The updates after which a run evaluates: 1, 2, 4, ... below ``every``, every ``every``-th,
    and the last (0, the base model, is evaluated before training)."""
    early = [2 ** k for k in range(updates.bit_length()) if 2 ** k < every and 2 ** k <= updates]
    return sorted(set(early) | set(range(every, updates + 1, every)) | {updates})


def trained_eta(cfg: DraftConfig) -> float:
    """The sampler eta a method optimises: DDPO's policy is the eta = 1 sampler (Black et al. 2023);
    the gradient methods back-propagate through the configured sampler."""
    return 1.0 if cfg.method == "ddpo" else float(cfg.sampler.eta)


def eval_key(eta: float, prompts: str = "train", reward: str = "reward") -> str:
    return f"eta{eta:g}/{prompts}/{reward}"


def _batch(prompts: list[str], n: int, g: torch.Generator) -> list[str]:
    return [prompts[i] for i in torch.randint(0, len(prompts), (n,), generator=g).tolist()]


def eval_set(pipe, prompts: list[str], n: int, seed: int, name: str = "train") -> tuple[list[str], torch.Tensor]:
    """The fixed evaluation prompts and initial noises: a function of (prompts, n, seed, name) only."""
    from discern.diffusion.sampling import initial_noise

    g = torch.Generator().manual_seed(derive_seed(seed, "draft-eval", name))
    chosen = [prompts[i % len(prompts)] for i in range(n)]
    return chosen, initial_noise(pipe, n, g)


@torch.no_grad()
def eval_images(den, prompts: list[str], noise: torch.Tensor, sc: SamplerConfig, eta: float = 0.0,
                seed: int = 0) -> torch.Tensor:
    """Samples of the evaluation set at sampler ``eta``, decoded; for eta > 0 the per-step noises
    come from ``seed`` (the same draws at every call)."""
    from discern.diffusion.sampling import ddim_sample, decode

    from .methods import conditions

    cond, uncond = conditions(den, prompts, sc)
    g = torch.Generator().manual_seed(derive_seed(seed, "draft-eval-steps", f"{eta:g}"))
    return decode(den, ddim_sample(den, cond, noise, sc.steps, sc.guidance_scale, uncond, eta=eta, generator=g))


@torch.no_grad()
def evaluate(den, reward, prompts: list[str], noise: torch.Tensor, sc: SamplerConfig, eta: float = 0.0,
             seed: int = 0) -> float:
    """The mean reward of the evaluation set at sampler ``eta``."""
    return float(reward(eval_images(den, prompts, noise, sc, eta, seed), prompts).float().mean())


@torch.no_grad()
def evaluate_all(den, rewards: dict, sets: dict, sc: SamplerConfig, etas, seed: int) -> dict[str, list[float]]:
    """Per-image rewards ``{eval_key(eta, set, reward): [...]}`` for every eta, prompt set and reward."""
    out = {}
    for eta in etas:
        for set_name, (prompts, noise) in sets.items():
            images = eval_images(den, prompts, noise, sc, eta, derive_seed(seed, set_name))
            for r_name, reward in rewards.items():
                out[eval_key(eta, set_name, r_name)] = reward(images, prompts).float().tolist()
    return out


def train_draft(pipe, reward, prompts: list[str], cfg: DraftConfig, run: Run, resume: bool = False,
                desc: str | None = None, heldout_prompts: list[str] | None = None, heldout_reward=None) -> list[dict]:
    """Fine-tune ``pipe``'s LoRA adapter in place; returns the history, one row per evaluation:
    ``update``, ``samples``, ``train_reward`` (the batch's mean reward), ``grad_norm`` (mean before
    clipping), ``eval_reward`` (the mean evaluation reward at the eta the method trains) and
    ``per_image`` (``{eval_key: [reward per evaluation image]}``).  Writes ``<run>/lora`` and
    ``<run>/history.json``."""
    from discern.core.checkpoint import atomic_write_json
    from discern.diffusion import Denoiser
    from discern.diffusion.sampling import initial_noise

    from . import methods as M
    from .ddpo import PromptStats, ddpo_update
    from .lora import add_lora, save_lora

    if cfg.method not in METHODS:
        raise DiscernError(f"unknown method {cfg.method!r} (choose from {', '.join(METHODS)})")
    if not prompts:
        raise DiscernError("no prompts to train on")
    den = Denoiser(pipe)
    den.bf16 = cfg.bf16
    pipe.text_encoder.requires_grad_(False)
    params = add_lora(pipe.unet, cfg.rank, cfg.lora_alpha, seed=cfg.seed)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    stats = PromptStats(cfg.ddpo_buffer, cfg.ddpo_min_count)
    sets = {"train": eval_set(pipe, prompts, cfg.eval_prompts, cfg.eval_seed)}
    if heldout_prompts:
        sets["heldout"] = eval_set(pipe, heldout_prompts, cfg.eval_prompts, cfg.eval_seed, "heldout")
    rewards = {"reward": reward} if heldout_reward is None else {"reward": reward, "heldout_reward": heldout_reward}
    etas = sorted(set(float(e) for e in cfg.eval_etas) | {trained_eta(cfg)})
    main_key = eval_key(trained_eta(cfg))

    def evaluation(row: dict) -> dict:
        row["per_image"] = evaluate_all(den, rewards, sets, cfg.sampler, etas, cfg.eval_seed)
        row["eval_reward"] = sum(row["per_image"][main_key]) / len(row["per_image"][main_key])
        return row

    start, samples, history = 0, 0, []
    ckpt = run.checkpoints / "draft.pt"
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt)
        for p, v in zip(params, state["lora"]):
            p.data.copy_(v)
        opt.load_state_dict(state["optimizer"])
        stats.load_state_dict(state["prompt_stats"])
        start, samples, history = state["update"], state["samples"], state["history"]
    if start == 0:
        history.append(evaluation({"update": 0, "samples": 0, "train_reward": None, "grad_norm": None}))
    when = set(eval_schedule(cfg.updates, cfg.eval_every))
    norms: list[float] = []
    bar = progress(range(start, cfg.updates), desc=desc or f"draft ({cfg.method})")
    for u in bar:
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, "draft-update", u))
        batch = _batch(prompts, cfg.batch_size, g)
        x_T = initial_noise(pipe, cfg.batch_size, g)
        if cfg.method == "ddpo":
            out = ddpo_update(den, reward, batch, x_T, cfg, opt, params, stats, g)
            r, n = out["rewards"], len(batch)
            norms.extend(out["grad_norms"])
        else:
            if cfg.method in ("full", "k"):
                loss, r, n = M.draft_loss(den, reward, batch, x_T, cfg.sampler, None if cfg.method == "full" else cfg.K,
                                          g)
            elif cfg.method == "lv":
                loss, r, n = M.lv_loss(den, reward, batch, x_T, cfg.sampler, cfg.n_lv, g)
            else:
                loss, r, n = M.refl_loss(den, reward, batch, x_T, cfg.sampler, cfg.refl_last, g)
            opt.zero_grad()
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)))
            opt.step()
        samples += n
        if u + 1 in when:
            history.append(evaluation({"update": u + 1, "samples": samples, "train_reward": float(r.float().mean()),
                                       "grad_norm": float(sum(norms) / len(norms)) if norms else None}))
            norms = []
            bar.set_postfix(reward=f"{history[-1]['eval_reward']:.3f}")
        if (u + 1) % cfg.checkpoint_every == 0 and run.main:
            save_checkpoint(ckpt, {"lora": [p.detach().clone() for p in params], "optimizer": opt.state_dict(),
                                   "prompt_stats": stats.state_dict(), "update": u + 1, "samples": samples,
                                   "history": history})
    if run.main:
        save_lora(pipe.unet, run.path / "lora")
        atomic_write_json(run.path / "history.json", history)
    return history


def fine_tune(model, cfg: TrainCommandConfig, run: Run, resume: bool = False, aesthetic_weights=None,
              clip=None) -> list[dict]:
    """``discern draft train``: load the pipeline folder ``model`` and the named reward, then
    :func:`train_draft` on the config's prompts."""
    from discern.diffusion import load_pipeline

    from .rewards import build_reward

    from discern.core import dist as ddist

    reward = build_reward(cfg.reward, aesthetic_weights, clip)
    device = ddist.device()  # CUDA when available; a command's --device chooses
    if isinstance(reward, torch.nn.Module):
        reward.to(device)
    return train_draft(load_pipeline(model).to(device), reward, cfg.prompts, cfg.draft, run, resume=resume)
