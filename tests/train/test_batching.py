import torch

from discern.train import epoch_batch


def test_each_epoch_is_a_permutation_with_the_short_batch_filled_from_its_start():
    n, bs = 10, 4  # 3 steps per epoch, the last one has 2 fresh + 2 repeated examples
    epoch0 = [epoch_batch(n, bs, s, 0, 1, 0, 1, ("x",)) for s in range(3)]
    flat = torch.cat(epoch0)
    assert sorted(flat[:10].tolist()) == list(range(10))
    assert torch.equal(flat[10:], flat[:2])
    epoch1 = torch.cat([epoch_batch(n, bs, s, 0, 1, 0, 1, ("x",)) for s in range(3, 6)])
    assert sorted(epoch1[:10].tolist()) == list(range(10)) and not torch.equal(epoch1[:10], flat[:10])


def test_ranks_and_micro_batches_partition_the_global_batch():
    n, bs = 64, 16
    whole = epoch_batch(n, bs, 5, 0, 1, 0, 1, (1, "s"))
    parts = [epoch_batch(n, bs, 5, m, 2, r, 2, (1, "s")) for r in range(2) for m in range(2)]
    assert all(len(p) == 4 for p in parts)
    assert torch.equal(torch.cat(parts), whole)
