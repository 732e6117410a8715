import torch

from discern.data.scenes import make_scenes
from discern.diffusion import Denoiser, ModelConfig, build_pipeline, clip_tokenizer
from discern.diffusion.captions import to_tensor
from discern.diffusion_classifier.binding import (contrastive_prefers_true, diffusion_prefers_true,
                                                  train_contrastive)


def test_contrastive_model_learns_to_match_scenes_and_sees_word_order():
    imgs, scenes = make_scenes(256, 32, seed=0)
    x = to_tensor(imgs, 32)
    tok = clip_tokenizer(16)
    model = train_contrastive(x, [s.caption for s in scenes], tok, steps=120, batch_size=64)
    enc = tok([s.caption for s in scenes[:32]], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        sims = model.encode_image(x[:32]) @ model.encode_text(enc["input_ids"], enc["attention_mask"]).T
        # the text transformer is order-aware: a caption and its swap do not embed alike
        swapped = tok([scenes[0].swapped], padding="max_length", max_length=16, return_tensors="pt")
        assert not torch.allclose(model.encode_text(enc["input_ids"][:1], enc["attention_mask"][:1]),
                                  model.encode_text(swapped["input_ids"], swapped["attention_mask"]))
    # retrieval well above chance (1/32) after a short training
    assert (sims.argmax(1) == torch.arange(32)).float().mean() > 0.1  # chance: 1/32
    prefs = contrastive_prefers_true(model, x[:8], [s.caption for s in scenes[:8]], [s.swapped for s in scenes[:8]],
                                     tok)
    sw = tok([s.swapped for s in scenes[:8]], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        im = model.encode_image(x[:8])
        true_sim = (im * model.encode_text(enc["input_ids"][:8], enc["attention_mask"][:8])).sum(-1)
        swap_sim = (im * model.encode_text(sw["input_ids"], sw["attention_mask"])).sum(-1)
    assert prefs == (true_sim > swap_sim).tolist()


def test_diffusion_binding_compares_the_two_captions_on_shared_noise():
    imgs, scenes = make_scenes(3, 16, seed=1)
    pipe = build_pipeline(ModelConfig(image_size=16, channels=3, block_out_channels=(8, 16), cross_attention_dim=16,
                                      text_intermediate=32, attention_head_dim=4, max_length=16, text_layers=1))
    den = Denoiser(pipe)
    prefs = diffusion_prefers_true(den, to_tensor(imgs, 16), [s.caption for s in scenes], [s.swapped for s in scenes],
                                   samples=4)
    assert len(prefs) == 3 and den.evaluations == 3 * 2 * 4
