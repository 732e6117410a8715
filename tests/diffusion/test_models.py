import torch

from discern.diffusion import Denoiser, ModelConfig, build_pipeline, clip_tokenizer, load_pipeline, sample

TINY = ModelConfig(image_size=16, block_out_channels=(8, 16), cross_attention_dim=16, text_intermediate=32,
                   attention_head_dim=4, max_length=8, text_layers=1)


def test_clip_tokenizer_is_the_real_clip_vocabulary():
    tok = clip_tokenizer()
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert tok("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_pipeline_saves_and_loads_with_identical_denoising_errors(tmp_path):
    pipe = build_pipeline(TINY)
    pipe.save_pretrained(tmp_path)
    again = load_pipeline(tmp_path)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    t, eps = torch.tensor([5, 400, 990]), torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        a, b = Denoiser(pipe), Denoiser(again)
        ea = a.errors(x, t, eps, a.encode_prompts(["a photo of a shirt"] * 3))
        eb = b.errors(x, t, eps, b.encode_prompts(["a photo of a shirt"] * 3))
    assert torch.equal(ea, eb) and a.evaluations == 3
    # the error is the mean squared difference between the noise and the UNet's prediction at x_t
    ab = pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        pred = pipe.unet(ab.sqrt() * x + (1 - ab).sqrt() * eps, t,
                         encoder_hidden_states=a.encode_prompts(["a photo of a shirt"] * 3)).sample
    assert torch.allclose(ea, ((pred - eps) ** 2).mean((1, 2, 3)), atol=1e-6)
    img = again(["a photo of a shirt", "a photo of a boot"], num_inference_steps=3,
                generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert img.shape == (2, 1, 16, 16) and torch.isfinite(img).all()


def test_sampler_is_differentiable():
    pipe = build_pipeline(TINY)
    img = sample(pipe, ["a photo of a bag"], steps=2, generator=torch.Generator().manual_seed(0))
    img.mean().backward()
    assert pipe.unet.conv_in.weight.grad.abs().sum() > 0


def _tiny_sd():
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tok = clip_tokenizer(77)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=77))
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=32)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=4)
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=DDIMScheduler(steps_offset=1, clip_sample=False),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def test_stable_diffusion_folder_scores_in_latent_space(tmp_path):
    sd = _tiny_sd()
    sd.save_pretrained(tmp_path)
    pipe = load_pipeline(tmp_path)
    den = Denoiser(pipe)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        x0 = den.encode_images(images)
        ref = pipe.vae.encode(images).latent_dist.mean * pipe.vae.config.scaling_factor
        assert x0.shape == (2, 4, 16, 16) and torch.allclose(x0, ref)
        e = den.errors(x0, torch.tensor([100, 700]), torch.randn_like(x0), den.encode_prompts(["a cat", "a dog"]))
    assert e.shape == (2,) and torch.isfinite(e).all()


def test_calling_the_pipeline_follows_diffusers_output_types():
    """pipe(prompt) -> ImagePipelineOutput: PIL images by default, "np" (B, H, W, C) and "pt" (B, C, H, W)
    in [0, 1], "latent" the sampler's [-1, 1] tensor, return_dict=False a 1-tuple; all the same sample."""
    import numpy as np
    from diffusers import ImagePipelineOutput
    from PIL import Image

    pipe = build_pipeline(TINY)
    prompts = ["a photo of a shirt", "a photo of a boot"]

    def call(**kw):
        return pipe(prompts, num_inference_steps=2, generator=torch.Generator().manual_seed(0), **kw)

    with torch.no_grad():
        raw = sample(pipe, prompts, 2, generator=torch.Generator().manual_seed(0))
    out = call()
    assert isinstance(out, ImagePipelineOutput) and len(out.images) == 2
    assert all(isinstance(im, Image.Image) and im.size == (16, 16) and im.mode == "L" for im in out.images)
    pt = call(output_type="pt").images
    assert torch.equal(pt, (raw / 2 + 0.5).clamp(0, 1))
    arr = call(output_type="np").images
    assert arr.shape == (2, 16, 16, 1) and np.allclose(arr, pt.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(np.asarray(out.images[1]), (arr[1, ..., 0] * 255).round().astype(np.uint8))
    assert torch.equal(call(output_type="latent").images, raw)
    (only,) = call(output_type="pt", return_dict=False)
    assert torch.equal(only, pt)
    one = pipe("a photo of a shirt", num_inference_steps=2, generator=torch.Generator().manual_seed(0),
               output_type="pt").images
    assert one.shape == (1, 1, 16, 16)


def test_diffusers_loads_the_folder_through_its_custom_pipeline_file(tmp_path, monkeypatch):
    """diffusers resolves a string _class_name in the diffusers package only; the saved pipeline.py makes
    DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder, trust_remote_code=True) give this
    pipeline class, with the same samples."""
    import json

    from diffusers import DiffusionPipeline

    from discern.diffusion import TextToImagePipeline

    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    import diffusers.utils.dynamic_modules_utils as dyn

    monkeypatch.setattr(dyn, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    pipe = build_pipeline(TINY)
    pipe.save_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["_class_name"] == "TextToImagePipeline"
    assert "from discern.diffusion.models import TextToImagePipeline" in (tmp_path / "pipe" / "pipeline.py").read_text()
    folder = str(tmp_path / "pipe")
    loaded = DiffusionPipeline.from_pretrained(folder, custom_pipeline=folder, trust_remote_code=True)
    assert type(loaded) is TextToImagePipeline
    kw = dict(num_inference_steps=2, output_type="pt")
    a = pipe(["a photo of a bag"], generator=torch.Generator().manual_seed(1), **kw).images
    b = loaded(["a photo of a bag"], generator=torch.Generator().manual_seed(1), **kw).images
    assert torch.equal(a, b)
    # without the custom pipeline, diffusers looks for the class in its own package
    try:
        DiffusionPipeline.from_pretrained(folder)
    except AttributeError as e:
        assert "TextToImagePipeline" in str(e)
    else:
        raise AssertionError("diffusers found TextToImagePipeline without the custom pipeline file")
