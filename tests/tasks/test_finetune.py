import json
import math

import numpy as np
import pytest
import torch

from discern.core import Run
from discern.tasks import (EncoderHead, Example, FinetuneConfig, Task, build_param_groups,
                           finetune_from_pretrained, predict)
from discern.tasks.finetune import finetune

FAST = dict(lr=2e-3, epochs=8, batch_size=16, layerwise_lr_decay=0.8, device="cpu")


@pytest.mark.parametrize("kind", ["electra", "bert"])
def test_toy_task_learned_to_100_percent(kind, make_encoder, tokenizer, toy_task):
    res = finetune(make_encoder(kind), tokenizer, toy_task, FinetuneConfig(**FAST))
    assert res["finished"] and res["steps"] == math.ceil(8 * 96 / 16)
    assert res["dev"]["accuracy"] == 1.0
    assert res["test"]["accuracy"] == 1.0
    assert set(res["predictions"]["dev"]) == {ex.id for ex in toy_task.dev}
    assert all(res["predictions"]["dev"][ex.id] == ex.label for ex in toy_task.dev)
    assert all(len(v) == 2 for v in res["logits"]["test"].values())
    json.dumps(res)  # JSON-serialisable, predictions keyed by example id


def test_layerwise_lr_scales_exact(make_encoder):
    L, d = 3, 0.8
    model = EncoderHead(make_encoder("electra", layers=L), 2)
    scales = {n: g["lr_scale"] for g in build_param_groups(model, FinetuneConfig()) for n in g["names"]}
    assert set(scales) == {n for n, _ in model.named_parameters()}
    for name, s in scales.items():
        if name.startswith("encoder.embeddings"):  # incl. embeddings_project and LayerNorm
            assert s == d ** (L + 2), name
        elif name.startswith("encoder.encoder.layer."):
            i = int(name.split(".")[3])
            assert s == d ** (L + 1 - i), name
        else:
            assert name.startswith("classifier."), name
            assert s == 1.0
    # without the off-by-one: top layer decay^1, head decay^0, embeddings decay^(L+1)
    fixed = {n: g["lr_scale"] for g in build_param_groups(
        model, FinetuneConfig(lr_decay_bug_compat=False)) for n in g["names"]}
    assert fixed["encoder.encoder.layer.2.output.dense.weight"] == d ** 1
    assert fixed["encoder.embeddings.word_embeddings.weight"] == d ** (L + 1)
    assert fixed["classifier.weight"] == 1.0
    # weight decay 0 by default (ELECTRA fine-tuning)
    assert all(g["weight_decay"] == 0.0 for g in build_param_groups(model, FinetuneConfig()))


def test_bert_pooler_left_out(make_encoder):
    model = EncoderHead(make_encoder("bert"), 2)
    names = [n for g in build_param_groups(model, FinetuneConfig()) for n in g["names"]]
    assert not any(".pooler." in n for n in names)
    assert any(n.startswith("encoder.embeddings") for n in names)


def test_head_reads_cls_only(make_encoder, tokenizer):
    model = EncoderHead(make_encoder("electra"), 3).eval()
    enc = tokenizer(["good movie was fine", "the bad plot"], padding=True, return_tensors="pt")
    captured = {}

    def keep(module, args, out):
        out.last_hidden_state.retain_grad()
        captured["h"] = out.last_hidden_state

    handle = model.encoder.register_forward_hook(keep)
    logits = model(**enc)
    logits.sum().backward()
    g = captured["h"].grad  # (B, T, H)
    assert torch.count_nonzero(g[:, 1:]) == 0
    assert torch.count_nonzero(g[:, 0]) > 0
    handle.remove()

    # replacing every non-[CLS] output vector leaves the head's output bit-identical
    def scramble(module, args, out):
        h = out.last_hidden_state.clone()
        h[:, 1:] = torch.randn_like(h[:, 1:]) * 100
        out.last_hidden_state = h
        return out

    with torch.no_grad():
        ref = model(**enc)
        handle = model.encoder.register_forward_hook(scramble)
        got = model(**enc)
        handle.remove()
    assert torch.equal(ref, got)


def test_resume_is_exact(make_encoder, tokenizer, toy_task, tmp_path):
    cfg = FinetuneConfig(lr=2e-3, epochs=2, batch_size=16, device="cpu", seed=3)
    full = finetune(make_encoder(), tokenizer, toy_task, cfg)
    run = Run.create("tasks", "resume", config=cfg, root=tmp_path)
    part = finetune(make_encoder(), tokenizer, toy_task, cfg, run, stop_after=5)
    assert not part["finished"] and part["steps"] == 5
    done = finetune(make_encoder(), tokenizer, toy_task, cfg, run, resume=True)
    assert done["finished"] and done["steps"] == full["steps"] == 12
    assert done["logits"]["dev"] == full["logits"]["dev"]
    assert json.loads((run.path / "results.json").read_text())["dev"] == done["dev"]


def test_regression_and_pairs(make_encoder, tokenizer):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "the", "movie"]

    def ex(i, split):
        a = " ".join(rng.choice(words, size=4))
        b = " ".join(rng.choice(words, size=3))
        y = (a + " " + b).split().count("good") / 7
        return Example(f"{split}/{i}", a, b, float(y))

    task = Task("toy-reg", "regression", (), ("spearman", "pearson"), "spearman")
    task.splits = {"train": [ex(i, "train") for i in range(64)],
                   "dev": [ex(i, "dev") for i in range(24)], "test": []}
    cfg = FinetuneConfig(lr=2e-3, regression_epochs=2, batch_size=16, device="cpu",
                         double_unordered=True, predict_train=True, max_train=48)
    res = finetune(make_encoder("bert"), tokenizer, task, cfg)
    assert res["total_steps"] == math.ceil(2 * 96 / 16)  # 48 examples, both orders of each pair
    assert all(isinstance(v, float) for v in res["predictions"]["dev"].values())
    assert "logits" not in res and set(res["dev"]) == {"spearman", "pearson"}
    assert res["n"] == {"train": 48, "dev": 24, "test": 0} and res["test"] == {}
    assert set(res["predictions"]["train"]) <= {ex.id for ex in task.train}


def test_dynamic_padding_does_not_change_outputs(make_encoder, tokenizer):
    model = EncoderHead(make_encoder("bert"), 2)
    exs = [Example(f"e{i}", " ".join(["good"] * (i + 1)), None, 0) for i in range(6)]
    together = predict(model, tokenizer, exs, batch_size=6)
    alone = np.concatenate([predict(model, tokenizer, [e], batch_size=1) for e in exs])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_finetune_from_pretrained_folder(make_encoder, tokenizer, toy_task, tmp_path):
    enc = make_encoder("electra")
    enc.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    res = finetune_from_pretrained(tmp_path / "model", toy_task, FinetuneConfig(**FAST))
    assert res["dev"]["accuracy"] == 1.0
    from discern.core import DiscernError
    with pytest.raises(DiscernError, match="does not exist"):
        finetune_from_pretrained(tmp_path / "nope", toy_task)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "<html><b>config</b></html>", '{"model_type": "=1+1"}'])
def test_a_folder_with_a_broken_config_is_a_one_line_error(tokenizer, toy_task, tmp_path, text):
    from discern.core import DiscernError

    (tmp_path / "model").mkdir()
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "config.json").write_text(text)
    with pytest.raises(DiscernError, match=r"^model folder .*model: cannot load \(") as e:
        finetune_from_pretrained(tmp_path / "model", toy_task, FinetuneConfig(**FAST))
    assert "\n" not in str(e.value)


def test_folder_models_train_with_the_fused_kernel_on_the_cpu_and_match_sdpa(make_encoder, tokenizer, toy_task,
                                                                             tmp_path, monkeypatch):
    """``attention=auto`` loads an ELECTRA folder with the fused kernel on the CPU; the kernel
    changes the speed, not the numbers: fused, eager and SDPA fine-tunes give the same dev
    predictions."""
    import transformers

    from discern.core import ConfigError

    enc = make_encoder("electra")
    enc.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    seen = []
    load = transformers.AutoModel.from_pretrained

    def spy(path, **kw):
        model = load(path, **kw)
        seen.append(model.config._attn_implementation)
        return model

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", spy)
    cfg = dict(FAST, epochs=2)
    fused = finetune_from_pretrained(tmp_path / "model", toy_task, FinetuneConfig(**cfg))
    eager = finetune_from_pretrained(tmp_path / "model", toy_task, FinetuneConfig(**cfg, attention="eager"))
    sdpa = finetune_from_pretrained(tmp_path / "model", toy_task, FinetuneConfig(**cfg, attention="sdpa"))
    assert seen == ["discern_fused", "eager", "sdpa"]
    ids = sorted(eager["logits"]["dev"])
    assert ids == sorted(sdpa["logits"]["dev"]) == sorted(fused["logits"]["dev"]) and ids
    for other in (fused, sdpa):
        np.testing.assert_allclose([eager["logits"]["dev"][i] for i in ids], [other["logits"]["dev"][i] for i in ids],
                                   atol=1e-3)
    with pytest.raises(ConfigError, match="model.attention must be one of"):
        finetune_from_pretrained(tmp_path / "model", toy_task, FinetuneConfig(**cfg, attention="flash"))


def _hf_outputs(folder, examples):
    """Outputs of the saved folder through transformers alone (AutoModelForSequenceClassification)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    a = [ex.text for ex in examples]
    b = [ex.text_b for ex in examples] if examples[0].text_b is not None else None
    enc = tok(a, b, padding=True, return_tensors="pt")
    with torch.no_grad():
        return hf, hf(**enc).logits.numpy()


@pytest.mark.parametrize("kind", ["electra", "bert"])
def test_saved_model_is_an_auto_model_for_sequence_classification_with_the_same_logits(
        kind, make_encoder, tokenizer, toy_task, tmp_path):
    """ELECTRA's head (linear on [CLS]) carried into ElectraForSequenceClassification (dense + GELU) and
    BertForSequenceClassification (tanh pooler): transformers alone gives the fine-tuned logits."""
    res = finetune(make_encoder(kind), tokenizer, toy_task, FinetuneConfig(**FAST), save=tmp_path / "model")
    assert res["model"] == str(tmp_path / "model")
    hf, got = _hf_outputs(tmp_path / "model", toy_task.dev)
    assert type(hf).__name__ == f"{kind.capitalize()}ForSequenceClassification"
    c = hf.config
    assert c.num_labels == 2 and c.id2label == {0: "neg", 1: "pos"} and c.label2id == {"neg": 0, "pos": 1}
    assert c.problem_type == "single_label_classification" and c.finetuning_task == "toy"
    ref = np.array([res["logits"]["dev"][ex.id] for ex in toy_task.dev])
    assert res["dev"]["accuracy"] == 1.0 and np.abs(ref).max() > 0.5  # trained logits, not a degenerate head
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_saved_regression_model_has_one_output_and_the_regression_problem_type(make_encoder, tokenizer, tmp_path):
    rng = np.random.default_rng(1)
    words = ["good", "bad", "the", "movie"]

    def ex(i, split):
        a, b = " ".join(rng.choice(words, size=4)), " ".join(rng.choice(words, size=3))
        return Example(f"{split}/{i}", a, b, (a + " " + b).split().count("good") / 7)

    task = Task("toy-reg", "regression", (), ("spearman",), "spearman", scale={"min": 0.0, "max": 7.0})
    task.splits = {"train": [ex(i, "train") for i in range(32)], "dev": [ex(i, "dev") for i in range(12)],
                   "test": []}
    res = finetune(make_encoder("bert"), tokenizer, task, FinetuneConfig(lr=2e-3, regression_epochs=2, batch_size=16,
                                                                         device="cpu"), save=tmp_path / "reg")
    hf, got = _hf_outputs(tmp_path / "reg", task.dev)
    assert hf.config.num_labels == 1 and hf.config.problem_type == "regression"
    assert hf.config.id2label == {0: "toy-reg"}
    assert hf.config.discern_task == {"name": "toy-reg", "kind": "regression", "scale": {"min": 0.0, "max": 7.0}}
    np.testing.assert_allclose(got[:, 0], [res["predictions"]["dev"][e.id] for e in task.dev], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["roberta", "mpnet"])
def test_heads_with_dense_and_tanh_carry_the_linear_head(kind, tokenizer):
    """RoBERTa's and MPNet's heads (dense + tanh + out_proj) give ELECTRA's head's logits, even large ones."""
    import transformers

    from discern.tasks import to_sequence_classification

    conf = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    enc = (transformers.RobertaModel(transformers.RobertaConfig(**conf)) if kind == "roberta"
           else transformers.MPNetModel(transformers.MPNetConfig(**conf)))
    model = EncoderHead(enc, 3).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
        model.classifier.bias.normal_(0.0, 1.0)
    task = Task("three", "classification", ("a", "b", "c"), ("accuracy",), "accuracy")
    hf = to_sequence_classification(model, task)
    ids = torch.randint(5, len(tokenizer), (4, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    with torch.no_grad():
        ref, got = model(ids, mask), hf(input_ids=ids, attention_mask=mask).logits
    assert ref.abs().max() > 10
    assert torch.allclose(got, ref, atol=1e-5, rtol=0)
