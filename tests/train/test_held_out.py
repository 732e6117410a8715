import torch

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
