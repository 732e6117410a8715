"""The differentiable DDIM sampler: parity with diffusers' DDIMScheduler, truncated gradients,
checkpointing, finite differences."""

import pytest
import torch
from diffusers import DDIMScheduler

from discern.diffusion import Denoiser, ModelConfig, build_pipeline, ddim_sample, ddim_step, ddim_timesteps


def _pipe():
    return build_pipeline(ModelConfig(image_size=8, block_out_channels=(4, 8), cross_attention_dim=8,
                                      text_intermediate=16, attention_head_dim=2, max_length=8, text_layers=1), seed=0)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_equals_diffusers_scheduler(eta):
    den = Denoiser(_pipe())
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, set_alpha_to_one=True)
    sched.set_timesteps(10)
    ts = ddim_timesteps(1000, 10)
    assert ts == sched.timesteps.tolist()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 8, 8, generator=g)
    for i, t in enumerate(ts):
        eps = torch.randn(x.shape, generator=g)
        z = torch.randn(x.shape, generator=g)
        ref = sched.step(eps, t, x, eta=eta, variance_noise=z).prev_sample
        ours = ddim_step(den, x, t, ts[i + 1] if i + 1 < len(ts) else None, eps, eta, z, clip=False)
        assert torch.allclose(ours.x_prev, ref, atol=1e-5), (t, (ours.x_prev - ref).abs().max())


def _params(pipe):
    return [p for p in pipe.unet.parameters()]


def test_truncated_gradients_equal_a_run_restarted_from_the_detached_sample():
    pipe = _pipe()
    den = Denoiser(pipe)
    cond = den.encode_prompts(["a photo of a bag"] * 2).detach()
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    traj = []
    out = ddim_sample(den, cond, x_T, steps=5, grad_steps=2, trajectory=traj)
    out.square().mean().backward()
    g_trunc = [p.grad.clone() for p in _params(pipe)]
    assert x_T.grad is None  # nothing flows to steps before the last K
    # the inputs of the first 3 steps carry no graph; the last 2 do
    assert [x.requires_grad for _, _, x, _ in traj[:3]] == [False, False, False]
    assert traj[4][3].x_prev.requires_grad
    # the same gradient from an explicit stop_grad(x_K) and the last K steps
    pipe.unet.zero_grad()
    with torch.no_grad():
        whole = ddim_sample(den, cond, x_T, steps=5, grad_steps=0)
        x = x_T.detach()
        ts = ddim_timesteps(1000, 5)
        for i in range(3):
            t = torch.full((2,), ts[i])
            x = ddim_step(den, x, ts[i], ts[i + 1], den.predict_eps(x, t, cond)).x_prev
    ts = ddim_timesteps(1000, 5)
    for i in (3, 4):
        t = torch.full((2,), ts[i])
        x = ddim_step(den, x, ts[i], ts[i + 1] if i < 4 else None, den.predict_eps(x, t, cond)).x_prev
    assert torch.allclose(x, out) and torch.allclose(whole, out)
    x.square().mean().backward()
    for a, p in zip(g_trunc, _params(pipe)):
        assert torch.allclose(a, p.grad, atol=1e-7)


def test_checkpointing_gives_the_same_gradients_and_guidance_batches_both_predictions():
    pipe = _pipe()
    den = Denoiser(pipe)
    cond = den.encode_prompts(["a photo of a bag"]).detach()
    uncond = den.encode_prompts([""]).detach()
    x_T = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    grads = []
    for ck in (False, True):
        pipe.unet.zero_grad()
        before = den.evaluations
        ddim_sample(den, cond, x_T, steps=3, guidance_scale=3.0, uncond=uncond, checkpoint=ck).sum().backward()
        assert den.evaluations - before == 3 * 2  # conditional and unconditional in one call per step
        grads.append([p.grad.clone() for p in _params(pipe)])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_sampler_gradient_matches_finite_differences():
    pipe = _pipe().to(torch.float64)
    den = Denoiser(pipe)
    den.alphas_cumprod = den.alphas_cumprod.double()
    cond = den.encode_prompts(["a photo of a bag"]).detach()
    x_T = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w = pipe.unet.conv_out.bias

    def reward():
        return ddim_sample(den, cond, x_T, steps=3).tanh().mean()

    reward().backward()
    h = 1e-6
    for k in range(w.numel()):
        with torch.no_grad():
            w[k] += h
            up = reward()
            w[k] -= 2 * h
            down = reward()
            w[k] += h
        assert w.grad[k].item() == pytest.approx(((up - down) / (2 * h)).item(), rel=1e-4, abs=1e-9)
