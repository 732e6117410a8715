"""DDPO (Black et al. 2023, "Training Diffusion Models with Reinforcement Learning"): the RL
baseline DRaFT compares against (Clark et al. 2024).

The denoising process is a T-step MDP (Black et al. 2023, "denoising as a multi-step MDP"): the state is (c, t, x_t),
the action is x_{t-1}, and the policy is one sampler step.  DDIM with eta = 1 (Song et al. eq. 12)
is a Gaussian policy

    pi_theta(x_{t-1} | x_t, c) = N(mu_theta(x_t, t, c), sigma_t^2 I),
    sigma_t = sqrt((1 - abar_{t-1}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t-1}),

whose mean depends on theta through the (guided) noise prediction and whose variance does not.
The reward arrives at the end of the chain only.  DDPO_IS ("policy gradient estimation") maximises
the clipped importance-sampled objective of PPO over the rollout's transitions,

    L = mean_t mean_b max(-A_b rho_{t,b}, -A_b clip(rho_{t,b}, 1 - e, 1 + e)),
    rho = pi_theta(x_{t-1} | x_t, c) / pi_old(x_{t-1} | x_t, c),

with advantages A normalised per prompt (the paper's implementation details: a running mean and
standard deviation of each prompt's rewards; the batch's while a prompt has too few) and clipped to +-5.
The log-density is averaged over the pixels of x_{t-1}, as the released implementation does; it
only rescales the gradient, which Adam's normalisation and the gradient clip absorb.
"""

from __future__ import annotations

import math
from collections import deque

import torch

from discern.core.errors import DiscernError
from discern.diffusion.sampling import ddim_sample, ddim_step, decode, guided_eps

from .config import DraftConfig, SamplerConfig
from .methods import conditions


def gaussian_log_prob(x_prev: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x_prev; mean, std^2 I), averaged over all but the batch dimension: (B,)."""
    lp = -((x_prev - mean) ** 2) / (2 * std ** 2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return lp.flatten(1).mean(1)


@torch.no_grad()
def ddpo_rollout(den, reward, prompts, x_T, sc: SamplerConfig, generator=None) -> dict:
    """Sample with eta = 1 and keep every stochastic transition (t, t', x_t, x_t', log pi_old(x_t' | x_t), sigma_t).

    The log-probability is that of the very x_t' the sampler drew (mean + sigma z with the
    sampler's own z and sigma).  The last step to x_0 has sigma = 0 on this schedule (abar = 1
    at the end): it is deterministic and no policy step."""
    cond, uncond = conditions(den, prompts, sc)
    traj = []
    x0 = ddim_sample(den, cond, x_T, sc.steps, sc.guidance_scale, uncond, eta=1.0, generator=generator,
                     trajectory=traj)
    steps = [(t, tp, x, s.x_prev, gaussian_log_prob(s.x_prev, s.mean, s.std), s.std) for t, tp, x, s in traj
             if s.std > 0]
    return {"prompts": list(prompts), "cond": cond, "uncond": uncond, "steps": steps,
            "rewards": reward(decode(den, x0), prompts).detach().float()}


class PromptStats:
    """Per-prompt reward normalisation (Black et al. 2023, implementation details): each prompt keeps
    its last ``buffer`` rewards; a reward's advantage is (r - mean) / (std + 1e-6) over that
    prompt's buffer once it holds ``min_count`` rewards, over the current batch before that."""

    def __init__(self, buffer: int = 32, min_count: int = 16):
        if min_count < 1 or buffer < min_count:
            raise ValueError(f"PromptStats: need 1 <= min_count <= buffer, got {min_count}, {buffer}")
        self.buffer, self.min_count = int(buffer), int(min_count)
        self.seen: dict[str, deque] = {}

    def advantages(self, rewards: torch.Tensor, prompts: list[str], clip: float = 5.0) -> torch.Tensor:
        """(B,) advantages of this batch (its rewards join the buffers first), clipped to +-clip."""
        r = rewards.detach().double().cpu()
        adv = torch.empty_like(r)
        for p in dict.fromkeys(prompts):  # first-seen order: deterministic
            idx = torch.tensor([i for i, q in enumerate(prompts) if q == p])
            buf = self.seen.setdefault(p, deque(maxlen=self.buffer))
            buf.extend(r[idx].tolist())
            ref = torch.tensor(list(buf), dtype=torch.float64) if len(buf) >= self.min_count else r
            adv[idx] = (r[idx] - ref.mean()) / (ref.std(unbiased=False) + 1e-6)
        return adv.clamp(-clip, clip).to(rewards.dtype).to(rewards.device)

    def state_dict(self) -> dict:
        return {"buffer": self.buffer, "min_count": self.min_count, "seen": {p: list(b) for p, b in self.seen.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.buffer, self.min_count = int(state["buffer"]), int(state["min_count"])
        self.seen = {p: deque(v, maxlen=self.buffer) for p, v in state["seen"].items()}


def ddpo_loss(den, rollout: dict, advantages: torch.Tensor, sc: SamplerConfig, clip_range: float = 1e-4,
              min_std: float = 0.0):
    """The clipped surrogate (DDPO_IS with PPO's clip) averaged over the rollout's
    steps and samples; returns ``(loss, info)``, info = {"ratio_min", "ratio_max", "clipped"}
    (the share of terms where the clipped branch was taken, i.e. carried no gradient)."""
    total, clipped, n, lo, hi = 0.0, 0, 0, math.inf, -math.inf
    adv = advantages.detach()
    steps = [st for st in rollout["steps"] if st[5] >= min_std]
    if not steps:
        raise DiscernError(f"DDPO: no policy step has sigma >= {min_std:g} (sigmas "
                           f"{', '.join(f'{st[5]:.3g}' for st in rollout['steps'])}); lower ddpo_min_std")
    for t, t_prev, x, x_prev, old_lp, _ in steps:
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = guided_eps(den, x, tt, rollout["cond"], rollout["uncond"], sc.guidance_scale)
        s = ddim_step(den, x, t, t_prev, eps, eta=1.0, noise=torch.zeros_like(x))
        ratio = torch.exp(gaussian_log_prob(x_prev, s.mean, s.std) - old_lp)
        unclipped = -adv * ratio
        clipped_term = -adv * ratio.clamp(1 - clip_range, 1 + clip_range)
        total = total + torch.maximum(unclipped, clipped_term).mean()
        with torch.no_grad():
            clipped += int((clipped_term > unclipped).sum())
            n += ratio.numel()
            lo, hi = min(lo, float(ratio.min())), max(hi, float(ratio.max()))
    k = max(len(steps), 1)
    return total / k, {"ratio_min": lo, "ratio_max": hi, "clipped": clipped / max(n, 1)}


def ddpo_update(den, reward, prompts, x_T, cfg: DraftConfig, opt, params, stats: PromptStats,
                generator=None) -> dict:
    """One DDPO iteration: a rollout of the batch, per-prompt advantages, ``cfg.ddpo_inner`` clipped
    PPO steps of ``opt`` on ``params`` (gradient norm clipped to ``cfg.grad_clip``).

    Returns ``{"rewards", "advantages", "grad_norms", "info"}``."""
    roll = ddpo_rollout(den, reward, prompts, x_T, cfg.sampler, generator)
    adv = stats.advantages(roll["rewards"], list(prompts), cfg.ddpo_adv_clip)
    norms, infos = [], []
    for _ in range(cfg.ddpo_inner):
        loss, info = ddpo_loss(den, roll, adv, cfg.sampler, cfg.ddpo_clip, cfg.ddpo_min_std)
        opt.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)))
        opt.step()
        infos.append(info)
    return {"rewards": roll["rewards"], "advantages": adv, "grad_norms": norms, "info": infos}
