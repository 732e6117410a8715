import math

import numpy as np
import pytest
import torch

from discern.bam.targets import classification_targets, distill_loss, regression_targets, teacher_lambda
from discern.bam.teachers import TeacherOutputs, align_teacher, load_teacher, save_teacher
from discern.bam.weighting import loss_weights, sampling_shares, task_multiples
from discern.core import DataError

# GLUE train sizes; MRPC and STS counted twice (double_unordered), as in the official weighting
GLUE = {"cola": 8551, "mnli": 392702, "mrpc": 2 * 3668, "qnli": 104743, "qqp": 363846, "sst": 67349,
        "sts": 2 * 5749, "rte": 2490}


def test_glue_multiples_and_loss_weights_match_the_official_table():
    assert task_multiples(GLUE) == {"cola": 3, "mnli": 1, "mrpc": 3, "qnli": 1, "qqp": 1, "sst": 2, "sts": 2,
                                    "rte": 4}
    w = loss_weights(GLUE)
    assert min(w.values()) == pytest.approx(0.77, abs=0.005) and max(w.values()) == pytest.approx(1.37, abs=0.005)
    # the expected weight over the mixed stream is 1, and weighted shares are exactly |D|^0.75
    m = task_multiples(GLUE)
    stream = {t: m[t] * s for t, s in GLUE.items()}
    n = sum(stream.values())
    assert sum(stream[t] / n * w[t] for t in GLUE) == pytest.approx(1.0)
    mass = {t: stream[t] * w[t] for t in GLUE}
    shares = sampling_shares(GLUE)
    for t in GLUE:
        assert mass[t] / sum(mass.values()) == pytest.approx(shares[t], rel=1e-9)
    assert shares["mnli"] / shares["rte"] == pytest.approx((392702 / 2490) ** 0.75)


def test_weights_without_multiples_follow_size_to_the_minus_quarter():
    sizes = {"a": 10_000, "b": 100}
    w = loss_weights(sizes, multiples=False)
    assert w["b"] / w["a"] == pytest.approx((10_000 / 100) ** 0.25)
    assert (10_000 * w["a"] + 100 * w["b"]) / 10_100 == pytest.approx(1.0)


def test_teacher_annealing_schedule():
    assert [teacher_lambda(s, 8) for s in (0, 2, 4, 8, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert teacher_lambda(3, 8, anneal=False) == 0.5


def test_targets_are_the_lambda_mixture():
    labels = torch.tensor([0, 2])
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    t = classification_targets(labels, logits, 0.25, 3)
    soft = torch.softmax(logits, -1)
    assert torch.allclose(t[0], 0.25 * torch.tensor([1.0, 0, 0]) + 0.75 * soft[0])
    assert torch.allclose(t[1], torch.tensor([0.25, 0.25, 0.5]))
    assert torch.allclose(t.sum(-1), torch.ones(2))
    r = regression_targets(torch.tensor([0.2, 1.0]), torch.tensor([0.6, 0.0]), 0.75)
    assert torch.allclose(r, torch.tensor([0.75 * 0.2 + 0.25 * 0.6, 0.75]))


def test_each_example_counts_only_for_its_own_task_and_padding_for_none():
    tasks, kinds = ["cls", "reg"], {"cls": "classification", "reg": "regression"}
    outputs = {"cls": torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]], requires_grad=True),
               "reg": torch.tensor([[0.5], [0.1], [9.0]], requires_grad=True)}
    task_ids = torch.tensor([0, 1, 2])  # example 2 is padding
    targets = {"cls": torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.5, 0.5]]), "reg": torch.tensor([0.0, 0.4, 0.0])}
    loss, _ = distill_loss(outputs, task_ids, tasks, kinds, targets, weights=torch.tensor([2.0, 1.0, 7.0]))
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    se1 = (0.1 - 0.4) ** 2
    assert loss.item() == pytest.approx((2.0 * ce0 + se1) / 2)
    loss.backward()
    # the classification head's output for example 1 (a regression example) gets no gradient, nor padding
    assert torch.equal(outputs["cls"].grad[1], torch.zeros(2)) and torch.equal(outputs["cls"].grad[2], torch.zeros(2))
    assert outputs["reg"].grad[0].item() == 0.0 and outputs["reg"].grad[2].item() == 0.0
    assert outputs["reg"].grad[1].item() != 0.0


def test_teacher_outputs_round_trip_and_id_mismatch_names_task_and_first_missing_id(tmp_path):
    t = TeacherOutputs("spam", "classification", {"a": [0.1, 0.9], "b": [2.0, -1.0]})
    save_teacher(tmp_path / "spam.json", t)
    back = load_teacher(tmp_path / "spam.json")
    assert back == t
    assert np.array_equal(align_teacher(back, "spam", ["b", "a"]), np.array([[2.0, -1.0], [0.1, 0.9]], dtype=np.float32))
    with pytest.raises(DataError, match=r"task 'spam': the teacher has no output for example id 'zz' \(2 of 3"):
        align_teacher(back, "spam", ["a", "zz", "yy"])
    with pytest.raises(DataError, match="not 'ham'"):
        align_teacher(back, "ham", ["a"])
    reg = TeacherOutputs("year", "regression", {"x": [0.25]})
    assert align_teacher(reg, "year", ["x"]).tolist() == [0.25]
    (tmp_path / "bad.json").write_text("{\"task\": 1}")
    with pytest.raises(DataError, match="bad.json: malformed teacher outputs"):
        load_teacher(tmp_path / "bad.json")
