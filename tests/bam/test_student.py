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
    model_dir = tmp_path / "runs" / "bam" / out["run"].split("/")[-1] / "model"
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["model_type"] == "discern_bam_student" and saved["encoder_config"]["model_type"] == "electra"
    assert (saved["head_input"], saved["pooler"], saved["heads"]) == ("pooled", "own", {"spam": 2, "sotu-year": 1})
    from safetensors.torch import load_file

    weights = load_file(model_dir / "model.safetensors")
    assert {"pooler.dense.weight", "pooler.dense.bias"} <= set(weights)  # ELECTRA has no pooler: ours is saved


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


def _save_old_layout(model, tok, folder, first_format=False):
    """A student as ``save_student`` wrote it before it became a transformers model: ``encoder/`` (the
    encoder's folder), ``heads.pt`` (heads and any pooler of its own) and ``heads.json``."""
    import json

    model.encoder.save_pretrained(folder / "encoder")
    tok.save_pretrained(str(folder / "encoder"))
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith(("heads.", "pooler."))},
               folder / "heads.pt")
    heads = {t: h.out_features for t, h in model.heads.items()}
    meta = heads if first_format else {"format": 2, "head_input": model.head_input, "heads": heads}
    (folder / "heads.json").write_text(json.dumps(meta))


def _electra(tok):
    from transformers import ElectraConfig, ElectraModel

    torch.manual_seed(1)
    return ElectraModel(ElectraConfig(vocab_size=len(tok), embedding_size=16, hidden_size=32,
                                      num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))


def test_saved_students_load_and_predict_the_same(setup, tmp_path):
    """Round trip of the pooled head (BERT's pooler in the encoder, or the student's own), and students
    saved in the earlier layouts (format 2, and the first format with heads on the raw [CLS] vector)
    still load as such."""
    from discern.bam.student import load_student, save_student

    tasks, tok, conf = setup
    batch = _batch(tasks, tok)
    for name, enc in (("bert", _encoder(conf)), ("electra", _electra(tok))):
        model = MultiTaskModel(enc, {"spam": 2, "sotu-year": 1}, seed=2).eval()
        with torch.no_grad():
            model.heads["spam"].bias.fill_(0.25)
            if model.pooler is not None:
                model.pooler.dense.bias.fill_(-0.5)
        for layout in ("new", "old"):
            folder = tmp_path / f"{name}-{layout}"
            if layout == "new":
                save_student(model, tok, folder)
            else:
                _save_old_layout(model, tok, folder)
            back, _ = load_student(folder)
            back.eval()
            assert back.uses_encoder_pooler == model.uses_encoder_pooler and back.head_input == "pooled"
            with torch.no_grad():
                a, b = model(**batch), back(**batch)
            for t in a:
                assert torch.allclose(a[t], b[t], atol=1e-5), (name, layout, t)

    # the first format: heads.json = {task: outputs}, heads.pt = the heads only, heads on h_[CLS]
    old = MultiTaskModel(_encoder(conf), {"spam": 2}, head_input="cls", seed=9).eval()
    _save_old_layout(old, tok, tmp_path / "old", first_format=True)
    back, _ = load_student(tmp_path / "old")
    assert back.head_input == "cls"
    with torch.no_grad():
        assert torch.allclose(old(**batch)["spam"], back.eval()(**batch)["spam"], atol=1e-5)
    torch.save({}, tmp_path / "old" / "heads.pt")
    with pytest.raises(Exception, match="heads.pt: does not match heads.json"):
        load_student(tmp_path / "old")


@pytest.mark.parametrize("kind", ["bert", "electra"])
def test_a_saved_student_loads_with_from_pretrained_and_auto_model(setup, tmp_path, kind):
    """save_pretrained writes one folder (config.json + model.safetensors + tokenizer) that
    MultiTaskStudent.from_pretrained and, after ``import discern.bam``, AutoModel.from_pretrained load,
    giving identical outputs for every task."""
    import discern.bam  # noqa: F401  (registers the student with AutoConfig / AutoModel)
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from discern.bam.student import MultiTaskStudent, MultiTaskStudentConfig, save_student

    tasks, tok, conf = setup
    enc = _encoder(conf) if kind == "bert" else _electra(tok)
    model = MultiTaskModel(enc, {"spam": 2, "sotu-year": 1}, seed=4).eval()
    assert isinstance(model, MultiTaskStudent)
    save_student(model, tok, tmp_path / "student")
    assert (tmp_path / "student" / "model.safetensors").is_file()
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "student"), MultiTaskStudentConfig)
    batch = _batch(tasks, tok)
    with torch.no_grad():
        ref = model(**batch)
    for loaded in (MultiTaskStudent.from_pretrained(tmp_path / "student"),
                   AutoModel.from_pretrained(tmp_path / "student")):
        assert type(loaded) is MultiTaskStudent and not loaded.training
        assert set(loaded.heads) == {"spam", "sotu-year"} and loaded.head_input == "pooled"
        assert (loaded.pooler is None) == (kind == "bert") == loaded.uses_encoder_pooler
        with torch.no_grad():
            got = loaded(**batch)
        assert set(got) == set(ref) and all(torch.equal(got[t], ref[t]) for t in ref), kind
    assert AutoTokenizer.from_pretrained(tmp_path / "student")("spam")["input_ids"] == tok("spam")["input_ids"]
    # an old-layout folder loads through from_pretrained too
    _save_old_layout(model, tok, tmp_path / "old")
    old = MultiTaskStudent.from_pretrained(tmp_path / "old").eval()
    with torch.no_grad():
        assert all(torch.equal(old(**batch)[t], ref[t]) for t in ref)


def test_wrapping_an_encoder_keeps_its_weights_and_attention_kernel(setup):
    """MultiTaskModel(encoder, ...) shares the encoder's config and leaves its weights and kernel alone."""
    import copy

    from transformers import BertModel

    tasks, tok, conf = setup
    enc = BertModel._from_config(copy.deepcopy(conf), attn_implementation="eager")
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    model = MultiTaskModel(enc, {"spam": 2})
    assert enc.config._attn_implementation == "eager" and model.config.encoder_config is enc.config
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


def test_importing_discern_bam_stays_light_and_registers_the_student_once_transformers_loads(setup, tmp_path):
    """In a fresh interpreter: ``import discern.bam`` imports neither torch nor transformers, and a later
    ``AutoModel.from_pretrained`` of a student folder gives a MultiTaskStudent."""
    import subprocess
    import sys

    from discern.bam.student import save_student

    tasks, tok, conf = setup
    save_student(MultiTaskModel(_encoder(conf), {"spam": 2}, seed=1), tok, tmp_path / "student")
    code = ("import sys, discern.bam\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
            "from transformers import AutoModel\n"
            f"print(type(AutoModel.from_pretrained({str(tmp_path / 'student')!r})).__name__)\n")
    out = subprocess.run([sys.executable, "-W", "error::UserWarning:discern.core.lazy", "-c", code],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "MultiTaskStudent"]
