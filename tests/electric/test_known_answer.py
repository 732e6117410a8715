"""Known-answer test: Electric with a fixed unigram noise distribution must get below the prior.

On the counting corpus (``[CLS] a a+1 ... [SEP]`` mod K from a random start) the unigram noise
q is uniform over the K content tokens, so an energy model that ignores context is stuck at the
loss of the noise rate, ``c h(rho)``; the data are fully predictable from a neighbour, so a model
that reads context gets far below it.
"""

import torch

from discern.electric import ModelConfig
from discern.electric.model import ElectricPretrainer
from discern.metrics.plateau import nce_prior_loss
from discern.train import TrainConfig, fit

K, L, B = 40, 32, 32
SPECIAL = [0, 1, 2, 3, 4]
V = len(SPECIAL) + K


def counting_batch(g: torch.Generator) -> dict:
    start = torch.randint(0, K, (B, 1), generator=g)
    body = 5 + (start + torch.arange(L - 2)) % K
    ids = torch.cat([torch.full((B, 1), 2), body, torch.full((B, 1), 3)], 1)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def test_energy_model_with_unigram_noise_goes_below_the_prior_entropy():
    torch.manual_seed(0)
    cfg = ModelConfig(layers=2, hidden=64, embedding=64, heads=2, ffn=128, max_len=L, dropout=0.0,
                      attention_dropout=0.0, noise="unigram", init_std=0.0)
    model = ElectricPretrainer(cfg, V, 0, SPECIAL)
    counts = torch.zeros(V)
    counts[5:] = 1.0
    counts[2] = counts[3] = 1.0  # special tokens never get noise mass
    model.set_unigram_noise(counts)
    assert torch.allclose(model.unigram_logq[5:].exp(), torch.full((K,), 1.0 / K))
    assert model.noise is None and model.unigram_logq[:5].exp().sum() == 0
    tc = TrainConfig(steps=400, batch_size=B, lr=1e-3, warmup_steps=0, schedule="constant",
                     optimizer="electra_adam", bias_correction=True, clip_norm=1.0, log_every=10**6)
    fit(model, lambda m, b: m(b), lambda step, *_: counting_batch(torch.Generator().manual_seed(step)), tc)

    model.eval()
    g, noise_gen = torch.Generator().manual_seed(10**6), torch.Generator().manual_seed(7)
    losses = []
    with torch.no_grad():
        for _ in range(8):
            _, met = model(counting_batch(g), generator=noise_gen)
            losses.append(float(met["nce_loss"]))
    nce = sum(losses) / len(losses)
    k = -(-15 * (L - 2) // 100)  # ceil(0.15 n) noised among the n = L - 2 candidates
    prior = nce_prior_loss(k / (L - 2), (L - 2) / L)
    assert abs(prior - 0.4224) < 1e-3
    assert nce < 0.5 * prior, (nce, prior)
