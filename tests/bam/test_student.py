import pytest
import torch

from discern.bam.student import MultiTaskModel, StudentConfig, evaluate, train_student
from discern.bam.teachers import TeacherOutputs
from discern.core import DataError


@pytest.fixture(scope="module")
def setup():
    from transformers import BertConfig

    from discern.data.tokenizer import train_wordpiece
    from discern.tasks import get_task

    tasks = [get_task("spam", max_train=48, max_dev=24, max_test=24),
             get_task("sotu-year", max_train=12, max_dev=24, max_test=24)]
    tok = train_wordpiece([ex.text for t in tasks for ex in t.train], 400)
    conf = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64)
    return tasks, tok, conf


def _encoder(conf, seed=0):
    from transformers import BertModel

    torch.manual_seed(seed)
    return BertModel(conf)


def _teachers(tasks):
    return {"spam": TeacherOutputs("spam", "classification", {ex.id: [0.0, 2.0] for ex in tasks[0].train}),
            "sotu-year": TeacherOutputs("sotu-year", "regression", {ex.id: [0.5] for ex in tasks[1].train})}


def test_mixed_stream_lambda_and_sampling(setup, monkeypatch):
    import discern.bam.student as st

    tasks, tok, conf = setup
    seen = []
    real_fit = st.fit

    def spy_fit(model, step_fn, batch_fn, tc, run, **kw):
        for step in range(tc.steps):
            b = batch_fn(step, 0, 0, 1)
            seen.append((step, b["lam"], b["task_ids"].tolist(), b["weights"].tolist(), b["targets"]))
        return real_fit(model, step_fn, batch_fn, tc, run, **kw)

    monkeypatch.setattr(st, "fit", spy_fit)
    cfg = StudentConfig(batch_size=8, epochs=1.0, max_length=48)
    _, info = train_student(_encoder(conf), tok, tasks, cfg, teachers=_teachers(tasks))
    # 48 vs 12 examples: sotu-year is repeated round((48/12)^0.25) = round(1.41) = 1 time
    assert info["multiples"] == {"spam": 1, "sotu-year": 1}
    assert info["total_steps"] == 8  # ceil(60 / 8)
    assert [s[1] for s in seen] == [step / 8 for step in range(8)]  # lambda = step / total
    # one pass over the pool = every example once: shares 48 : 12 before weighting
    ids = [i for s in seen for i in s[2]][:60]
    assert ids.count(0) == 48 and ids.count(1) == 12
    # any 5 consecutive batches (40 of the 60 draws without replacement) hold 32 +- 8 spam examples
    # (hypergeometric sd 1.8, so 8 is over 4 sd)
    first = ids[:40].count(0)
    assert abs(first - 32) <= 8
    # loss weights make the weighted shares |D|^0.75
    w = info["loss_weights"]
    assert 48 * w["spam"] / (12 * w["sotu-year"]) == pytest.approx((48 / 12) ** 0.75)
    # targets: spam rows mix one-hot and softmax([0, 2]); sotu rows mix label and 0.5
    step, lam, tids, _, targets = seen[3]
    soft = torch.softmax(torch.tensor([0.0, 2.0]), -1)
    for r, ti in enumerate(tids):
        if ti == 0:
            row = targets["spam"][r]
            options = [lam * torch.tensor(onehot) + (1 - lam) * soft for onehot in ([1.0, 0.0], [0.0, 1.0])]
            assert sum(torch.allclose(row, o, atol=1e-6) for o in options) == 1
            assert targets["sotu-year"][r] == 0
        else:
            assert torch.equal(targets["spam"][r], torch.zeros(2))


def test_heads_learn_only_from_their_own_task(setup):
    tasks, tok, conf = setup
    model = MultiTaskModel(_encoder(conf), {"spam": 2, "sotu-year": 1}, dropout=0.0)
    from discern.bam.targets import distill_loss
    from discern.tasks import encode_examples
    from discern.tasks import collate

    batch = collate(encode_examples(tok, tasks[0].train[:4], 48), tok.pad_token_id, torch.device("cpu"))
    outs = model(**batch)
    targets = {"spam": torch.tensor([[1.0, 0.0]] * 4), "sotu-year": torch.zeros(4)}
    loss, _ = distill_loss(outs, torch.zeros(4, dtype=torch.long), ["spam", "sotu-year"],
                           {"spam": "classification", "sotu-year": "regression"}, targets)
    loss.backward()
    assert model.heads["spam"].weight.grad.abs().sum() > 0
    assert model.heads["sotu-year"].weight.grad is None or model.heads["sotu-year"].weight.grad.abs().sum() == 0


def test_student_refuses_teachers_of_other_examples(setup):
    tasks, tok, conf = setup
    teachers = _teachers(tasks)
    first = tasks[1].train[0].id
    del teachers["sotu-year"].outputs[first]
    with pytest.raises(DataError, match=f"task 'sotu-year': the teacher has no output for example id '{first}'"):
        train_student(_encoder(conf), tok, tasks, StudentConfig(batch_size=8, max_steps=1), teachers=teachers)


def test_end_to_end_tiny_student_evaluates_every_task(setup):
    tasks, tok, conf = setup
    model, info = train_student(_encoder(conf), tok, tasks, StudentConfig(batch_size=8, max_steps=3, max_length=48),
                                teachers=_teachers(tasks))
    assert info["finished"] and info["distilled"]
    res = evaluate(model, tok, tasks, "dev", 48)
    assert set(res) == {"spam", "sotu-year"}
    assert 0.0 <= res["spam"]["accuracy"] <= 1.0 and "spearman" in res["sotu-year"]


def test_any_encoder_folder_an_electra_discriminator(setup, tmp_path, monkeypatch, capsys):
    """The student starts from any Hugging Face encoder folder, e.g. an ELECTRA discriminator."""
    import json

    from transformers import ElectraConfig, ElectraForPreTraining

    from discern.cli import main

    tasks, tok, _ = setup
    torch.manual_seed(0)
    disc = ElectraForPreTraining(ElectraConfig(vocab_size=len(tok), embedding_size=16, hidden_size=32,
                                               num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))
    folder = tmp_path / "electra-discriminator"
    disc.save_pretrained(folder)
    tok.save_pretrained(str(folder))
    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    assert main(["bam", "distill", "--preset", "tiny", "--set", f"encoder={folder}",
                 "--set", "student.max_steps=2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["dev"]) == {"spam", "sotu-year"}
    saved = json.loads((tmp_path / "runs" / "bam" / out["run"].split("/")[-1] / "model" / "heads.json").read_text())
    assert saved == {"format": 2, "head_input": "pooled", "heads": {"spam": 2, "sotu-year": 1}}
    heads = torch.load(tmp_path / "runs" / "bam" / out["run"].split("/")[-1] / "model" / "heads.pt")
    assert {"pooler.dense.weight", "pooler.dense.bias"} <= set(heads)  # ELECTRA has no pooler: ours is saved


def _capture_head_input(model, batch):
    seen = {}
    hook = model.heads["spam"].register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0].detach()))
    model.eval()
    outs = model(**batch)
    hook.remove()
    return seen["x"], outs


def _batch(tasks, tok):
    from discern.tasks import collate, encode_examples

    return collate(encode_examples(tok, tasks[0].train[:5], 48), tok.pad_token_id, torch.device("cpu"))


def test_heads_read_the_pooled_output_of_a_bert_encoder(setup):
    """BERT's pooled output, tanh(W h_[CLS] + b) from the encoder's own (pre-trained) pooler."""
    tasks, tok, conf = setup
    enc = _encoder(conf)
    model = MultiTaskModel(enc, {"spam": 2, "sotu-year": 1}, dropout=0.1)
    assert model.uses_encoder_pooler and model.pooler is None and model.head_input == "pooled"
    batch = _batch(tasks, tok)
    x, outs = _capture_head_input(model, batch)
    with torch.no_grad():
        out = enc(**batch)
        by_hand = torch.tanh(out.last_hidden_state[:, 0] @ enc.pooler.dense.weight.T + enc.pooler.dense.bias)
    assert torch.equal(x, out.pooler_output)
    assert torch.allclose(x, by_hand, atol=1e-6)
    assert not torch.allclose(x, out.last_hidden_state[:, 0], atol=1e-3)  # not the raw [CLS] vector
    head = model.heads["sotu-year"]
    assert torch.allclose(outs["sotu-year"], x @ head.weight.T + head.bias, atol=1e-6)
    assert model.unused_parameters() == []


def test_heads_read_a_pooler_of_their_own_on_an_encoder_without_one(setup):
    """An ELECTRA discriminator has no pooler: the student adds BERT's (dense + tanh over [CLS])."""
    from transformers import ElectraConfig, ElectraModel

    tasks, tok, _ = setup
    torch.manual_seed(0)
    enc = ElectraModel(ElectraConfig(vocab_size=len(tok), embedding_size=16, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64))
    model = MultiTaskModel(enc, {"spam": 2}, dropout=0.1, seed=3)
    assert not model.uses_encoder_pooler and isinstance(model.pooler.activation, torch.nn.Tanh)
    batch = _batch(tasks, tok)
    x, _ = _capture_head_input(model, batch)
    with torch.no_grad():
        h0 = enc(**batch).last_hidden_state[:, 0]
        by_hand = torch.tanh(h0 @ model.pooler.dense.weight.T + model.pooler.dense.bias)
    assert torch.allclose(x, by_hand, atol=1e-6)
    assert torch.equal(model.pooler.dense.bias, torch.zeros(32))
    # the pooler's initialisation comes from the seed
    again = MultiTaskModel(enc, {"spam": 2}, dropout=0.1, seed=3)
    other = MultiTaskModel(enc, {"spam": 2}, dropout=0.1, seed=4)
    assert torch.equal(again.pooler.dense.weight, model.pooler.dense.weight)
    assert not torch.equal(other.pooler.dense.weight, model.pooler.dense.weight)


def test_cls_head_input_reads_the_raw_first_token_and_leaves_the_pooler_out(setup):
    tasks, tok, conf = setup
    enc = _encoder(conf)
    model = MultiTaskModel(enc, {"spam": 2}, dropout=0.0, head_input="cls")
    batch = _batch(tasks, tok)
    x, _ = _capture_head_input(model, batch)
    with torch.no_grad():
        assert torch.equal(x, enc(**batch).last_hidden_state[:, 0])
    assert model.unused_parameters() == ["encoder.pooler.dense.weight", "encoder.pooler.dense.bias"]
    with pytest.raises(Exception, match="head_input 'mean'"):
        MultiTaskModel(enc, {"spam": 2}, head_input="mean")


def test_the_pooler_trains_at_depth_n_layers_plus_one(setup, monkeypatch):
    """Official layer-wise LR: heads decay^0, pooler decay^1, top layer decay^2, embeddings decay^(L+2)."""
    import discern.bam.student as st
    from discern.bam.student import student_lr_scales

    tasks, tok, conf = setup
    names = ["heads.spam.weight", "pooler.dense.weight", "encoder.pooler.dense.bias",
             "encoder.encoder.layer.1.output.dense.weight", "encoder.embeddings.word_embeddings.weight"]
    scales = student_lr_scales(names, 2, 0.5)
    assert scales == {"heads.spam.weight": 1.0, "pooler.dense.weight": 0.5, "encoder.pooler.dense.bias": 0.5,
                      "encoder.encoder.layer.1.output.dense.weight": 0.25,
                      "encoder.embeddings.word_embeddings.weight": 0.0625}
    groups = {}
    real_fit = st.fit

    def spy_fit(model, step_fn, batch_fn, tc, run, **kw):
        for g in kw["groups"]:
            for n in g["names"]:
                groups[n] = g["lr_scale"]
        return real_fit(model, step_fn, batch_fn, tc, run, **kw)

    monkeypatch.setattr(st, "fit", spy_fit)
    model, _ = train_student(_encoder(conf), tok, tasks, StudentConfig(batch_size=8, max_steps=1, max_length=48))
    assert groups["encoder.pooler.dense.weight"] == pytest.approx(0.9) and groups["heads.spam.weight"] == 1.0
    assert model.encoder.pooler.dense.weight.requires_grad


def test_saved_students_load_and_predict_the_same(setup, tmp_path):
    """Round trip of the pooled head (BERT's pooler in the encoder folder, or our own in heads.pt),
    and a student saved in the first format (heads on the raw [CLS] vector) still loads as such."""
    import json

    from transformers import ElectraConfig, ElectraModel

    from discern.bam.student import load_student, save_student

    tasks, tok, conf = setup
    batch = _batch(tasks, tok)
    torch.manual_seed(1)
    electra = ElectraModel(ElectraConfig(vocab_size=len(tok), embedding_size=16, hidden_size=32,
                                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))
    for name, enc in (("bert", _encoder(conf)), ("electra", electra)):
        model = MultiTaskModel(enc, {"spam": 2, "sotu-year": 1}, seed=2).eval()
        with torch.no_grad():
            model.heads["spam"].bias.fill_(0.25)
            if model.pooler is not None:
                model.pooler.dense.bias.fill_(-0.5)
        save_student(model, tok, tmp_path / name)
        meta = json.loads((tmp_path / name / "heads.json").read_text())
        assert meta == {"format": 2, "head_input": "pooled", "heads": {"spam": 2, "sotu-year": 1}}
        back, _ = load_student(tmp_path / name)
        back.eval()
        assert back.uses_encoder_pooler == model.uses_encoder_pooler
        with torch.no_grad():
            a, b = model(**batch), back(**batch)
        for t in a:
            assert torch.allclose(a[t], b[t], atol=1e-5), (name, t)

    # the first format: heads.json = {task: outputs}, heads.pt = the heads only, heads on h_[CLS]
    old = MultiTaskModel(_encoder(conf), {"spam": 2}, head_input="cls", seed=9).eval()
    save_student(old, tok, tmp_path / "old")
    (tmp_path / "old" / "heads.json").write_text(json.dumps({"spam": 2}))
    back, _ = load_student(tmp_path / "old")
    assert back.head_input == "cls"
    with torch.no_grad():
        assert torch.allclose(old(**batch)["spam"], back.eval()(**batch)["spam"], atol=1e-5)
    torch.save({}, tmp_path / "old" / "heads.pt")
    with pytest.raises(Exception, match="heads.pt: does not match heads.json"):
        load_student(tmp_path / "old")
