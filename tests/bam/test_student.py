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
    assert saved == {"spam": 2, "sotu-year": 1}
