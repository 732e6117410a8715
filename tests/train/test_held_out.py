import pytest
import torch

from discern.core import ConfigError
from discern.train import held_out_batches


class Rows:
    """A stand-in pre-training set: example i is the tensor [i]."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def batch(self, idx):
        return {"input_ids": torch.as_tensor(idx).view(-1, 1)}


def test_training_batches_never_touch_the_held_out_examples():
    data = Rows(1000)
    batch_fn, eval_batches, n_eval = held_out_batches(data, 16, 1, seed=0, device=torch.device("cpu"))
    assert n_eval == 20  # 1000 // 50
    seen = torch.cat([batch_fn(step, 0, 0, 1)["input_ids"].view(-1) for step in range(200)])
    assert seen.min() >= n_eval and len(set(seen.tolist())) == 980  # every training example, no eval one
    evald = [(c, b["input_ids"].view(-1).tolist()) for c, b in eval_batches(8)]
    assert [c for c, _ in evald] == [8, 8, 4] and sum((x for _, x in evald), []) == list(range(20))


def test_a_given_number_of_examples_is_held_out():
    data = Rows(1000)
    batch_fn, eval_batches, n_eval = held_out_batches(data, 16, 1, seed=0, device=torch.device("cpu"), held_out=100)
    assert n_eval == 100
    assert sum((b["input_ids"].view(-1).tolist() for _, b in eval_batches(32)), []) == list(range(100))
    seen = torch.cat([batch_fn(step, 0, 0, 1)["input_ids"].view(-1) for step in range(200)])
    assert seen.min() >= 100 and len(set(seen.tolist())) == 900


@pytest.mark.parametrize("held_out", [-1, 501])
def test_a_held_out_set_beyond_half_the_data_is_refused(held_out):
    with pytest.raises(ConfigError, match=r"data.eval_examples=.*at most half of them \(500\)"):
        held_out_batches(Rows(1000), 16, 1, seed=0, device=torch.device("cpu"), held_out=held_out)


@pytest.mark.parametrize("n", [0, 2, 15])
def test_a_corpus_too_small_to_hold_out_and_train_on_is_a_one_line_error(n):
    from discern.core import DataError

    with pytest.raises(DataError) as e:
        held_out_batches(Rows(n), 16, 1, seed=0, device=torch.device("cpu"))
    assert str(e.value) == (f"this corpus makes {n} pre-training examples; it needs at least 16 (8 held out for "
                            "evaluation and as many to train on): give it more text")
    _, _, n_eval = held_out_batches(Rows(16), 16, 1, seed=0, device=torch.device("cpu"))
    assert n_eval == 8
