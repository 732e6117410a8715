import numpy as np
import torch

from discern.core import Run
from discern.diffusion import Denoiser, build_pipeline, load_pipeline
from discern.diffusion.captions import FASHION_NAMES, TEMPLATES, caption, to_tensor
from discern.train.text_to_image import TextToImageTrainConfig, train_text_to_image

from .test_models import TINY


def test_to_tensor_pads_to_the_model_size_in_minus_one_to_one():
    img = np.full((2, 28, 28), 255, dtype=np.uint8)
    x = to_tensor(img, 32)
    assert x.shape == (2, 1, 32, 32)
    assert x[:, :, 2:30, 2:30].eq(1.0).all() and x[:, :, :2].eq(-1.0).all() and x[:, :, :, 30:].eq(-1.0).all()
    assert caption("coat", 1) == "a black and white photo of a coat" and caption("bag", len(TEMPLATES)) == "a photo of a bag"


def test_training_on_fashion_mnist_lowers_the_loss_and_saves_a_pipeline(tmp_path):
    from discern.data.corpora import fashion_mnist

    imgs, labels = fashion_mnist("train")
    x = to_tensor(imgs[:64], 32)[:, :, 8:24, 8:24]  # the centre 16 x 16 for the tiny model
    pipe = build_pipeline(TINY)
    run = Run.create("diffusion", "tiny", {"tiny": True}, root=tmp_path)
    cfg = TextToImageTrainConfig(steps=30, batch_size=16, lr=3e-3, warmup_steps=0)
    state = train_text_to_image(pipe, x, labels[:64], FASHION_NAMES, cfg, run)
    losses = [m["loss"] for m in run.metrics() if "loss" in m]
    assert state.step == 30 and losses[-1] < losses[0]
    again = load_pipeline(run.path / "pipeline")
    t, eps = torch.tensor([50, 500]), torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        a, b = Denoiser(pipe), Denoiser(again)
        prompts = ["a photo of a coat", "a photo of a bag"]
        assert torch.allclose(a.errors(x[:2], t, eps, a.encode_prompts(prompts)),
                              b.errors(x[:2], t, eps, b.encode_prompts(prompts)), atol=1e-6)
