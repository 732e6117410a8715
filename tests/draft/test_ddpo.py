"""DDPO on a policy with a known answer.

The toy denoiser predicts the exact noise of Gaussian data N(mu_c, s^2) per prompt c, so the eta = 1
DDIM chain samples near N(mu_c, s^2) and its only parameters are the means mu_c.  With the reward
-(x_0 - target_c)^2 (plus a large per-prompt offset that only per-prompt normalisation removes) the
optimum is mu_c = target_c: DDPO must move there.  The other tests pin the pieces exactly: the
gradient is the score-function estimator of an independent implementation of the eta = 1 policy,
the PPO clip cuts exactly the terms it should, and the per-prompt statistics follow their rule.
"""

import math

import pytest
import torch

from discern.core.errors import DiscernError
from discern.diffusion.sampling import ddim_timesteps
from discern.draft.config import DraftConfig, SamplerConfig
from discern.draft.ddpo import PromptStats, ddpo_loss, ddpo_rollout, ddpo_update, gaussian_log_prob

SHAPE = (1, 2, 2)
TARGET = torch.tensor([0.5, -0.4]).view(2, 1, 1, 1).expand(2, *SHAPE)
OFFSET = torch.tensor([0.0, 30.0])  # prompt 1's rewards sit 30 above prompt 0's
SC = SamplerConfig(steps=5, guidance_scale=1.0, checkpoint=False)


class GaussianToy:
    """eps_theta(x_t, t, c) = E[eps | x_t] for data N(mu_c, s^2 I): sqrt(1 - ab) (x_t - sqrt(ab) mu_c) / (ab s^2 + 1 - ab)."""

    def __init__(self, s: float = 0.15, dtype=torch.float32):
        self.mu = torch.nn.Parameter(torch.zeros(2, *SHAPE, dtype=dtype))
        self.s = s
        self.alphas_cumprod = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=dtype), 0)
        self.num_timesteps, self.vae, self.device = 1000, None, torch.device("cpu")

    def encode_prompts(self, prompts):
        return torch.tensor([int(p[-1]) for p in prompts])

    def predict_eps(self, x, t, cond):
        ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (1 - ab).sqrt() * (x - ab.sqrt() * self.mu[cond]) / (ab * self.s ** 2 + 1 - ab)


def toy_reward(images, prompts):
    idx = torch.tensor([int(p[-1]) for p in prompts])
    return -((images - TARGET[idx].to(images.dtype)) ** 2).flatten(1).mean(1) + OFFSET[idx].to(images.dtype)


PROMPTS = ["p0"] * 8 + ["p1"] * 8


def test_ddpo_moves_the_policy_to_the_rewards_optimum():
    toy = GaussianToy()
    cfg = DraftConfig(method="ddpo", sampler=SC, grad_clip=1.0, ddpo_buffer=32, ddpo_min_count=8)
    opt = torch.optim.Adam([toy.mu], lr=0.03)
    stats = PromptStats(cfg.ddpo_buffer, cfg.ddpo_min_count)
    g = torch.Generator().manual_seed(0)
    start = (toy.mu.detach() - TARGET).abs().mean().item()
    rewards = []
    for _ in range(100):
        x_T = torch.randn(len(PROMPTS), *SHAPE, generator=g)
        out = ddpo_update(toy, toy_reward, PROMPTS, x_T, cfg, opt, [toy.mu], stats, g)
        rewards.append((out["rewards"] - OFFSET[torch.tensor([int(p[-1]) for p in PROMPTS])]).mean().item())
    dist = (toy.mu.detach() - TARGET).abs()  # (2, 1, 2, 2)
    assert start == pytest.approx(0.45)
    assert dist.mean().item() < 0.3 * start  # both prompts' means went most of the way to their targets
    assert (dist.flatten(1).mean(1) < 0.45 * start).all()
    assert sum(rewards[-10:]) / 10 > sum(rewards[:10]) / 10 + 0.1  # and the reward rose


def _ddim_eta1_mean(toy, x, t, t_prev):
    """Song et al. eq. 12 with eta = 1, written out independently of discern.diffusion.sampling."""
    ab_t, ab_p = toy.alphas_cumprod[t], toy.alphas_cumprod[t_prev]
    eps = toy.predict_eps(x, torch.full((x.shape[0],), t), toy.encode_prompts(PROMPTS[:x.shape[0]]))
    x0 = ((x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-1, 1)
    sigma = ((1 - ab_p) / (1 - ab_t) * (1 - ab_t / ab_p)).sqrt()
    return ab_p.sqrt() * x0 + (1 - ab_p - sigma ** 2).sqrt() * eps, sigma


def _rollout(toy, seed=1):
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(len(PROMPTS), *SHAPE, generator=g, dtype=toy.mu.dtype)
    return ddpo_rollout(toy, toy_reward, PROMPTS, x_T, SC, g)


def test_ddpo_gradient_is_the_score_function_estimator_of_the_eta1_policy():
    toy = GaussianToy(dtype=torch.float64)
    with torch.no_grad():
        toy.mu.copy_(0.2 * torch.randn(toy.mu.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    roll = _rollout(toy)
    ts = ddim_timesteps(1000, SC.steps)
    assert [s[0] for s in roll["steps"]] == ts[:-1]  # every step but the deterministic last one is a policy step
    for a, b in zip(roll["steps"], roll["steps"][1:]):
        assert torch.equal(a[3], b[2])  # the action of one step is the state of the next
    adv = torch.linspace(-1.5, 2.0, len(PROMPTS), dtype=torch.float64)
    loss, info = ddpo_loss(toy, roll, adv, SC, clip_range=1e-4)
    assert info["ratio_min"] == pytest.approx(1.0, abs=1e-12) and info["ratio_max"] == pytest.approx(1.0, abs=1e-12)
    assert loss.item() == pytest.approx(-adv.mean().item(), abs=1e-10)  # ratio 1: the loss is -mean(A)
    (got,) = torch.autograd.grad(loss, [toy.mu])
    # by hand: -(1/T) sum_t (1/B) sum_b A_b grad log N(x_{t-1}^b; mu_theta(x_t^b), sigma_t^2), log-density
    # averaged over the D pixels (at ratio 1 the PPO surrogate's gradient is the REINFORCE estimator)
    expect = 0.0
    terms = []
    for t, t_prev, x, x_prev, old_lp, std in roll["steps"]:
        mean, sigma = _ddim_eta1_mean(toy, x, t, t_prev)
        assert std == pytest.approx(sigma.item(), rel=1e-12)
        lp = torch.distributions.Normal(mean, sigma).log_prob(x_prev).flatten(1).mean(1)
        assert torch.allclose(lp, old_lp, atol=1e-10)  # the stored log-probability is the density of the action taken
        terms.append(-(adv * lp).mean())
    (want,) = torch.autograd.grad(sum(terms) / len(terms), [toy.mu], retain_graph=True)
    assert want.abs().sum() > 0
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)
    # min_std leaves out the policy steps with a smaller sigma (here the last one, 200 -> 0): the same
    # estimator over the others
    sigmas = [st[5] for st in roll["steps"]]
    assert sigmas[-1] < 0.05 < min(sigmas[:-1])
    loss, _ = ddpo_loss(toy, roll, adv, SC, clip_range=1e-4, min_std=0.05)
    (got,) = torch.autograd.grad(loss, [toy.mu])
    (want,) = torch.autograd.grad(sum(terms[:-1]) / (len(terms) - 1), [toy.mu])
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)
    with pytest.raises(DiscernError, match="no policy step has sigma >= 2"):
        ddpo_loss(toy, roll, adv, SC, min_std=2.0)


def test_ddpo_clip_cuts_exactly_the_terms_ppo_cuts():
    toy = GaussianToy(dtype=torch.float64)
    roll = _rollout(toy)
    B = len(PROMPTS)
    # set the old log-probabilities so that the ratios are 1.5, 0.5, 1.5, 0.5, ... at every step
    want_ratio = torch.tensor([1.5, 0.5] * (B // 2), dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0] * (B // 4), dtype=torch.float64)
    new_lp = []
    with torch.no_grad():
        for i, (t, t_prev, x, x_prev, _, std) in enumerate(roll["steps"]):
            mean, sigma = _ddim_eta1_mean(toy, x, t, t_prev)
            lp = gaussian_log_prob(x_prev, mean, float(sigma))
            roll["steps"][i] = (t, t_prev, x, x_prev, lp - want_ratio.log(), std)
    e = 0.2
    loss, info = ddpo_loss(toy, roll, adv, SC, clip_range=e)
    # max(-A r, -A clip(r, 1 - e, 1 + e)): (A, r) = (+1, 1.5) -> -(1 + e) (cut), (+1, 0.5) -> -0.5,
    # (-1, 1.5) -> 1.5, (-1, 0.5) -> 1 - e (cut)
    per = torch.tensor([-(1 + e), -0.5, 1.5, 1 - e] * (B // 4), dtype=torch.float64)
    assert loss.item() == pytest.approx(per.mean().item(), abs=1e-9)
    assert info["clipped"] == pytest.approx(0.5) and info["ratio_max"] == pytest.approx(1.5)
    (got,) = torch.autograd.grad(loss, [toy.mu])
    keep = torch.tensor([0.0, 1.0, 1.0, 0.0] * (B // 4), dtype=torch.float64)  # terms that carry gradient
    expect = 0.0
    for t, t_prev, x, x_prev, old_lp, _ in roll["steps"]:
        mean, sigma = _ddim_eta1_mean(toy, x, t, t_prev)
        ratio = torch.exp(torch.distributions.Normal(mean, sigma).log_prob(x_prev).flatten(1).mean(1) - old_lp)
        expect = expect + (keep * -adv * ratio).mean()
    (want,) = torch.autograd.grad(expect / len(roll["steps"]), [toy.mu])
    assert want.abs().sum() > 0
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_prompt_stats_normalise_per_prompt_with_a_buffer():
    st = PromptStats(buffer=3, min_count=2)
    # first batch: "a" has 2 rewards (enough), "b" has 1 (too few: the whole batch's statistics)
    adv = st.advantages(torch.tensor([1.0, 3.0, 10.0]), ["a", "a", "b"])
    batch = torch.tensor([1.0, 3.0, 10.0], dtype=torch.float64)
    assert torch.allclose(adv[:2], torch.tensor([-1.0, 1.0]), atol=1e-5)
    assert adv[2].item() == pytest.approx(((10.0 - batch.mean()) / batch.std(unbiased=False)).item(), rel=1e-5)
    # second batch: "a"'s buffer keeps its last 3 rewards (3, 5, 7); "b" now has 2 (10, 12)
    adv = st.advantages(torch.tensor([5.0, 7.0, 12.0]), ["a", "a", "b"])
    a = torch.tensor([3.0, 5.0, 7.0])
    assert list(st.seen["a"]) == [3.0, 5.0, 7.0]
    assert torch.allclose(adv[:2], (torch.tensor([5.0, 7.0]) - a.mean()) / a.std(unbiased=False), atol=1e-5)
    assert adv[2].item() == pytest.approx(1.0, abs=1e-5)  # (12 - 11) / 1
    assert PromptStats(4, 1).advantages(torch.tensor([0.0, 100.0]), ["a", "a"], clip=0.5).abs().max() == 0.5
    copy = PromptStats()
    copy.load_state_dict(st.state_dict())
    assert {k: list(v) for k, v in copy.seen.items()} == {k: list(v) for k, v in st.seen.items()}
    with pytest.raises(ValueError):
        PromptStats(buffer=2, min_count=4)


def test_gaussian_log_prob_is_the_mean_log_density():
    mean = torch.randn(4, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    x = mean + 0.7 * torch.randn(4, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    ref = torch.distributions.Normal(mean, 0.7).log_prob(x).flatten(1).mean(1)
    assert torch.allclose(gaussian_log_prob(x, mean, 0.7), ref, atol=1e-6)
    assert gaussian_log_prob(mean, mean, 1.0)[0].item() == pytest.approx(-0.5 * math.log(2 * math.pi))
