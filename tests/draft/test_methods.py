"""DRaFT and its baselines: where gradients go, the LV estimator's formula, DDPO's policy density,
LoRA save / load / scale / mix, and the rewards."""

import math

import pytest
import torch

from discern.core.errors import DiscernError
from discern.diffusion import Denoiser, ModelConfig, build_pipeline, sample
from discern.diffusion.sampling import ddim_sample, ddim_step, ddim_timesteps, guided_eps
from discern.draft import ddpo
from discern.draft import methods as D
from discern.draft.config import SamplerConfig
from discern.draft.lora import add_lora, load_adapters, save_lora
from discern.draft.rewards import AestheticMLP, AestheticReward, ClassifierReward, ImageStatReward, PreferenceReward

CFG = ModelConfig(image_size=8, block_out_channels=(4, 8), cross_attention_dim=8, text_intermediate=16,
                  attention_head_dim=2, max_length=8, text_layers=1)
SC = SamplerConfig(steps=4, guidance_scale=2.0, checkpoint=True)


def _lora_pipe(seed=0):
    pipe = build_pipeline(CFG, seed=seed)
    params = add_lora(pipe.unet, rank=2, seed=seed)
    with torch.no_grad():  # B starts at zero; move it so the adapter does something
        for p in params:
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(p.flatten()))))
    pipe.text_encoder.requires_grad_(False)
    return pipe, params


def _x_T(n=2, seed=0, grad=False):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)).requires_grad_(grad)


@pytest.mark.parametrize("method", ["full", "k", "lv", "refl", "ddpo"])
def test_gradients_reach_only_the_lora_parameters(method):
    pipe, params = _lora_pipe()
    den = Denoiser(pipe)
    reward = ImageStatReward("contrast")
    prompts = ["a bag", "a shoe"]
    g = torch.Generator().manual_seed(0)
    if method == "full":
        loss, r, n = D.draft_loss(den, reward, prompts, _x_T(), SC, None, g)
    elif method == "k":
        loss, r, n = D.draft_loss(den, reward, prompts, _x_T(), SC, 1, g)
    elif method == "lv":
        loss, r, n = D.lv_loss(den, reward, prompts, _x_T(), SC, 2, g)
    elif method == "refl":
        loss, r, n = D.refl_loss(den, reward, prompts, _x_T(), SC, 3, g)
    else:
        roll = ddpo.ddpo_rollout(den, reward, prompts, _x_T(), SC, g)
        loss, _ = ddpo.ddpo_loss(den, roll, torch.tensor([1.0, -0.5]), SC)
        r, n = roll["rewards"], len(prompts)
    loss.backward()
    assert n == 2 and r.shape == (2,)
    lora = {id(p) for p in params}
    with_grad = [name for name, p in list(pipe.unet.named_parameters()) + list(pipe.text_encoder.named_parameters())
                 if p.grad is not None]
    assert with_grad and all(".lora_" in name for name in with_grad)
    assert {id(p) for p in pipe.unet.parameters() if p.grad is not None} <= lora
    assert any(p.grad.abs().sum() > 0 for p in params)


def test_truncation_leaves_every_earlier_step_without_gradient():
    pipe, _ = _lora_pipe()
    den = Denoiser(pipe)
    reward = ImageStatReward("contrast")
    x_T = _x_T(grad=True)
    D.draft_loss(den, reward, ["a bag", "a shoe"], x_T, SC, K=2)[0].backward()
    assert x_T.grad is None  # d loss / d x_T is exactly zero under stop_grad(x_K)
    x_T = _x_T(grad=True)
    D.draft_loss(den, reward, ["a bag", "a shoe"], x_T, SC, K=None)[0].backward()
    assert x_T.grad is not None and x_T.grad.abs().sum() > 0  # full back-propagation reaches x_T


class _LinearToy:
    """A denoiser whose prediction is theta * x: the LV gradient has a closed form."""

    def __init__(self, theta: float):
        self.theta = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        self.alphas_cumprod = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
        self.num_timesteps, self.vae, self.device, self.evaluations = 1000, None, torch.device("cpu"), 0

    def encode_prompts(self, prompts):
        return torch.zeros(len(prompts), 1, 1, dtype=torch.float64)

    def predict_eps(self, x, t, cond):
        self.evaluations += x.shape[0]
        return self.theta * x


def test_lv_estimator_equals_its_formula_on_a_linear_denoiser():
    toy = _LinearToy(0.3)
    c = torch.linspace(-1, 1, 16, dtype=torch.float64).view(1, 1, 4, 4)

    def reward(images, prompts):
        return (images * c).flatten(1).sum(1)

    sc = SamplerConfig(steps=5, guidance_scale=1.0, checkpoint=False)
    x_T = 0.05 * torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    loss, _, _ = D.lv_loss(toy, reward, ["p"] * 3, x_T, sc, n=2, generator=torch.Generator().manual_seed(7))
    loss.backward()
    # by hand: x_0 from the whole chain (no graph), then x_1^i = sqrt(ab1) x_0 + sqrt(1 - ab1) eps_i and
    # x_0^i = (x_1^i - sqrt(1 - ab1) theta x_1^i) / sqrt(ab1), so d r / d theta = -sum c x_1^i sqrt(1 - ab1) / sqrt(ab1)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        x0 = ddim_sample(toy, toy.encode_prompts(["p"] * 3), x_T, 5)
    ab1 = toy.alphas_cumprod[ddim_timesteps(1000, 5)[-1]]
    expect = 0.0
    for _ in range(2):
        x1 = ab1.sqrt() * x0 + (1 - ab1).sqrt() * torch.randn(x0.shape, generator=g, dtype=torch.float64)
        expect = expect + (-(c * x1).flatten(1).sum(1) * (1 - ab1).sqrt() / ab1.sqrt()).mean()
    assert toy.theta.grad.item() == pytest.approx(-expect.item(), rel=1e-10)  # the loss is minus the reward


def test_ddpo_rollout_on_a_guided_pipeline_stores_the_density_of_each_step_it_took():
    # a rollout stores, for every eta = 1 step, the density of the step it took; the ratio starts at 1
    pipe, _ = _lora_pipe()
    den = Denoiser(pipe)
    roll = ddpo.ddpo_rollout(den, ImageStatReward("contrast"), ["a bag", "a bag"], _x_T(), SC,
                             torch.Generator().manual_seed(0))
    assert len(roll["steps"]) == 3  # the final step to x_0 has sigma = 0 and is no policy step
    for t, t_prev, xt, x_prev, lp, std in roll["steps"]:
        tt = torch.full((2,), t)
        with torch.no_grad():
            eps = guided_eps(den, xt, tt, roll["cond"], roll["uncond"], SC.guidance_scale)
            s = ddim_step(den, xt, t, t_prev, eps, eta=1.0, noise=torch.zeros_like(xt))
        ab = den.alphas_cumprod
        sigma = math.sqrt((1 - ab[t_prev]) / (1 - ab[t]) * (1 - ab[t] / ab[t_prev]))
        assert s.std == pytest.approx(sigma, rel=1e-6) and std == s.std
        assert torch.allclose(lp, torch.distributions.Normal(s.mean, sigma).log_prob(x_prev).flatten(1).mean(1),
                              atol=1e-5)
    adv = torch.tensor([1.0, -1.0])
    loss, info = ddpo.ddpo_loss(den, roll, adv, SC)
    assert loss.item() == pytest.approx(-adv.mean().item(), abs=1e-5)
    assert info["ratio_min"] == pytest.approx(1.0, abs=1e-5) and info["ratio_max"] == pytest.approx(1.0, abs=1e-5)


def test_lora_saves_in_the_diffusers_format_and_scales_and_mixes(tmp_path):
    pipe, _ = _lora_pipe(seed=0)
    noise = _x_T(1, seed=3)
    tuned = sample(pipe, ["a bag"], steps=3, noise=noise)
    save_lora(pipe.unet, tmp_path / "a")
    other, _ = _lora_pipe(seed=1)
    save_lora(other.unet, tmp_path / "b")
    fresh = build_pipeline(CFG, seed=0)
    base = sample(fresh, ["a bag"], steps=3, noise=noise)
    fresh.load_lora_weights(str(tmp_path / "a"), adapter_name="a")  # diffusers' own loader
    assert torch.allclose(sample(fresh, ["a bag"], steps=3, noise=noise), tuned, atol=1e-6)
    fresh.set_adapters(["a"], adapter_weights=[0.0])
    assert torch.allclose(sample(fresh, ["a bag"], steps=3, noise=noise), base, atol=1e-6)
    # mixing: W + a1 dW1 + a2 dW2, checked on one projection
    mixed = build_pipeline(CFG, seed=0)
    load_adapters(mixed, {"a": tmp_path / "a", "b": tmp_path / "b"}, {"a": 0.5, "b": 2.0})
    proj = mixed.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q
    x = torch.randn(3, proj.in_features)
    delta = {n: proj.lora_B[n].weight @ proj.lora_A[n].weight for n in ("a", "b")}  # alpha / r = 1
    manual = x @ (proj.base_layer.weight + 0.5 * delta["a"] + 2.0 * delta["b"]).T
    assert torch.allclose(proj(x), manual, atol=1e-6)
    with pytest.raises(DiscernError, match="no pytorch_lora_weights"):
        load_adapters(mixed, {"c": tmp_path / "missing"})


def test_rewards_are_differentiable_and_exact():
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x.requires_grad_(True)
    assert torch.allclose(ImageStatReward("contrast")(x), x.flatten(1).std(1))
    tv = ImageStatReward("compressibility")(x)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    assert torch.allclose(tv, -(dx + dy) / 2)
    with pytest.raises(DiscernError, match="unknown image statistic"):
        ImageStatReward("beauty")
    clf = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    r = ClassifierReward(clf, target=2)(x)
    assert torch.allclose(r, torch.log_softmax(clf(x), -1)[:, 2])
    r.sum().backward()
    assert x.grad is not None and clf[1].weight.grad is None  # the classifier stays frozen


def test_clip_based_rewards_have_the_released_shapes_and_fail_clearly_without_weights(tmp_path):
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig, CLIPVisionModelWithProjection

    from discern.diffusion import clip_tokenizer

    vis = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8, projection_dim=768)
    mlp = AestheticMLP(768)
    assert [k for k in mlp.state_dict()] == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                                             "layers.4.weight", "layers.4.bias", "layers.6.weight", "layers.6.bias",
                                             "layers.7.weight", "layers.7.bias"]  # the released file's keys
    aes = AestheticReward(CLIPVisionModelWithProjection(vis), mlp)
    x = (torch.rand(2, 1, 8, 8) * 2 - 1).requires_grad_(True)
    aes(x).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(DiscernError, match="aesthetic predictor weights not found"):
        AestheticReward.from_pretrained(tmp_path / "none.pth", tmp_path)
    tok = clip_tokenizer(16)
    clip = CLIPModel(CLIPConfig(text_config=CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                                           num_hidden_layers=1, num_attention_heads=2,
                                                           max_position_embeddings=16).to_dict(),
                                vision_config=vis.to_dict(), projection_dim=8))
    pref = PreferenceReward(clip, tok)
    y = (torch.rand(2, 1, 8, 8) * 2 - 1).requires_grad_(True)
    pref(y, ["a bag", "a shoe"]).sum().backward()
    assert y.grad.abs().sum() > 0
    with pytest.raises(DiscernError, match="preference model not found"):
        PreferenceReward.from_pretrained(tmp_path / "nope")
