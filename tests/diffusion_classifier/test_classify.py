import math

import pytest
import torch
from diffusers import DDPMScheduler

from discern.diffusion import Denoiser
from discern.diffusion_classifier.classify import (classify_full, classify_li, classify_pruned, image_noise,
                                                   li_evaluations, paired_prune)
from discern.diffusion_classifier.scores import li_grid, li_stage, score_matrix, timestep_weights


class ConstructedDenoiser(Denoiser):
    """eps_theta(x_t, t, c) = c_scale * x_t with c_scale = cond[0, 0]: errors can be computed by hand;
    every call is recorded."""

    def __init__(self):
        self.vae = None
        self.alphas_cumprod = DDPMScheduler().alphas_cumprod.float()
        self.num_timesteps = 1000
        self.prediction_type = "epsilon"
        self.evaluations = 0
        self.calls = []

    @property
    def device(self):
        return torch.device("cpu")

    def predict_eps(self, x_t, t, cond):
        self.evaluations += x_t.shape[0]
        self.calls.append((x_t.clone(), t.clone(), cond[:, 0, 0].clone()))
        return cond[:, 0, 0].view(-1, 1, 1, 1) * x_t


def _conds(scales):
    return torch.tensor(scales).view(-1, 1, 1).expand(-1, 2, 3).contiguous()


def test_score_matrix_equals_the_hand_computed_error_and_shares_noise_and_timesteps():
    den = ConstructedDenoiser()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 1, 4, 4, generator=g)
    ts = torch.tensor([3, 250, 600, 999])
    eps = torch.randn(4, 1, 4, 4, generator=g)
    scales = [0.0, 0.5, 1.0]
    e = score_matrix(den, x0, _conds(scales), ts, eps, batch_size=5)  # batches cut across classes
    ab = den.alphas_cumprod
    for k, s in enumerate(scales):
        for j, t in enumerate(ts.tolist()):
            x_t = math.sqrt(ab[t]) * x0[0] + math.sqrt(1 - ab[t]) * eps[j]
            assert e[k, j].item() == pytest.approx(((eps[j] - s * x_t) ** 2).mean().item(), rel=1e-5)
    # every class saw the same (t, x_t) in column j
    seen = {}
    for x_t, t, c in den.calls:
        for i in range(len(t)):
            key = int(t[i])
            seen.setdefault(key, []).append(x_t[i])
    assert set(seen) == set(ts.tolist())
    for xs in seen.values():
        assert len(xs) == 3 and all(torch.equal(xs[0], x) for x in xs[1:])
    assert den.evaluations == 12


def test_image_noise_is_a_function_of_seed_and_index():
    den = ConstructedDenoiser()
    x0 = torch.zeros(1, 1, 4, 4)
    a, b, c = image_noise(den, x0, 8, 0, 5), image_noise(den, x0, 8, 0, 5), image_noise(den, x0, 8, 0, 6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    # stratified: one timestep in each eighth of [0, 1000)
    assert sorted(int(t) // 125 for t in a[0]) == list(range(8))


def test_weightings():
    sched = DDPMScheduler()
    ab = sched.alphas_cumprod
    ts = torch.tensor([10, 100, 500, 900])
    assert torch.equal(timestep_weights(ts, "uniform", ab), torch.ones(4))
    w = timestep_weights(ts, "elbo", ab)
    # Ho et al. eq. 12 with sigma^2 = beta: beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)), from the betas
    beta = sched.betas[ts].double()
    ref = beta / ((1 - beta) * (1 - ab[ts].double()))
    assert w.double().tolist() == pytest.approx((ref / ref.mean()).tolist(), rel=1e-3)  # float32 abar
    assert int(w.argmax()) == 0 and w[0] > 5 * w[1:].max()  # most weight on low noise
    fitted = torch.tensor([1.0, 3.0])
    assert timestep_weights(ts, "fitted", ab, fitted).tolist() == pytest.approx([0.5, 0.5, 1.5, 1.5])


def test_full_matrix_with_uniform_weights_is_the_plain_mean():
    den = ConstructedDenoiser()
    x0 = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    ts, eps = image_noise(den, x0, 6, 0, 0)
    r = classify_full(den, x0, _conds([0.9, 0.0, 0.4]), ts, eps)
    m = score_matrix(ConstructedDenoiser(), x0, _conds([0.9, 0.0, 0.4]), ts, eps).mean(1)
    assert r.scores == pytest.approx(m.tolist()) and r.pred == int(m.argmin()) and r.evaluations == 18


def test_pruning_keeps_the_true_best_class_when_scores_are_noiseless():
    K, N = 8, 64
    base = torch.tensor([5.0, 4.0, 3.5, 1.0, 6.0, 2.0, 3.0, 4.5])
    common = torch.randn(N, generator=torch.Generator().manual_seed(0)) * 10  # shared across classes

    def errors_fn(classes, cols):
        return base[classes][:, None] + common[cols][None, :]

    r = paired_prune(errors_fn, K, N, torch.ones(N), round_size=8, min_samples=8)
    full = (base[:, None] + common[None, :]).mean(1)
    assert r.pred == int(full.argmin()) == 3
    assert r.evaluations == K * 8  # differences are exact after one round: all others go at once
    assert r.samples[3] == 8 and r.evaluations * 8 == K * N


def test_pruning_with_noisy_scores_spends_less_and_keeps_the_argmin():
    g = torch.Generator().manual_seed(1)
    K, N = 10, 256
    base = torch.linspace(1.0, 2.0, K)[torch.randperm(K, generator=g)]
    noise = torch.randn(K, N, generator=g) * 0.3 + torch.randn(N, generator=g) * 5

    def errors_fn(classes, cols):
        return base[classes][:, None] + noise[classes][:, cols]

    r = paired_prune(errors_fn, K, N, torch.ones(N), round_size=16, alpha=0.01)
    assert r.pred == int(base.argmin())
    assert r.evaluations < K * N / 3


def test_li_grids_and_evaluation_counts():
    g500 = li_grid(1000, 500)
    assert g500 == list(range(1, 1000, 2))
    assert li_stage(g500, 50) == list(range(11, 1000, 20))
    g1000 = li_grid(1000, 1000)
    assert all(t % 20 == 10 for t in li_stage(g1000, 50)) and all(t % 10 == 5 for t in li_stage(g1000, 100))
    assert li_evaluations(10, [50, 500], [5, 1]) == 2750  # CIFAR-10
    assert li_evaluations(37, [25, 250], [5, 1]) == 2050  # Pets
    assert li_evaluations(101, [20, 50, 100, 500], [20, 10, 5, 1]) == 5570  # Food-101
    assert li_evaluations(113, [50, 100, 500, 1000], [25, 10, 5, 1]) == 14400  # ObjectNet
    assert li_evaluations(1000, [50, 100, 500, 1000], [500, 50, 10, 1]) == 124500  # ImageNet


def test_li_schedule_counts_match_its_arithmetic_and_keeps_the_best():
    den = ConstructedDenoiser()
    x0 = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    scales = [0.9, 0.7, 0.0, 0.5, 0.3, 1.2]
    r = classify_li(den, x0, _conds(scales), [10, 40], [2, 1])
    assert r.evaluations == den.evaluations == li_evaluations(6, [10, 40], [2, 1])
    full = classify_full(ConstructedDenoiser(), x0, _conds(scales), torch.tensor(li_grid(1000, 40)),
                         torch.randn(40, 1, 4, 4))
    assert r.pred == full.pred


def test_pruned_classifier_on_a_constructed_denoiser():
    den = ConstructedDenoiser()
    x0 = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    ts, eps = image_noise(den, x0, 64, 0, 0)
    conds = _conds([0.9, 0.0, 0.4, 1.5])
    full = classify_full(ConstructedDenoiser(), x0, conds, ts, eps)
    r = classify_pruned(den, x0, conds, ts, eps, round_size=8, min_samples=8)
    assert r.pred == full.pred and r.evaluations == den.evaluations < full.evaluations


def test_classify_images_resumes_and_counts_evaluations(tmp_path):
    from discern.diffusion import ModelConfig, build_pipeline
    from discern.diffusion_classifier.run import Policy, classify_images, summary

    pipe = build_pipeline(ModelConfig(image_size=16, block_out_channels=(8, 16), cross_attention_dim=16,
                                      text_intermediate=32, attention_head_dim=4, max_length=8, text_layers=1))
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    names = ["coat", "bag", "sandal"]
    out = tmp_path / "preds.jsonl"
    full = classify_images(pipe, images[:2], names, Policy(kind="full", samples=4), out, labels=[0, 1, 2, 0][:2])
    assert [r["evaluations"] for r in full] == [12, 12]
    # a rerun with more images classifies only the new ones, and the old records are kept as they were
    again = classify_images(pipe, images, names, Policy(kind="full", samples=4), out, labels=[0, 1, 2, 0])
    assert again[:2] == full and len(out.read_text().splitlines()) == 4
    s = summary(again)
    assert s["images"] == 4 and s["evaluations_per_image"] == 12 and 0 <= s["accuracy"] <= 100
    li = classify_images(pipe, images[:1], names, Policy(kind="li", li_samples=[2, 4], li_keep=[2, 1]),
                         tmp_path / "li.jsonl")
    assert li[0]["evaluations"] == li_evaluations(3, [2, 4], [2, 1])
