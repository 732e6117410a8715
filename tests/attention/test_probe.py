import numpy as np
import pytest
import torch

from discern.attention.probe import AttentionProbe, train_probe, uas
from discern.attention.syntax import Sentence


def _data(n, seed=0, W=6):
    """Random trees; map 0 attends from each word to its gold head ([CLS] column for the root), map 1 is noise."""
    rng = np.random.default_rng(seed)
    sents, maps = [], []
    for _ in range(n):
        root = int(rng.integers(1, W + 1))
        heads = [0 if i == root else int(rng.choice([j for j in range(1, W + 1) if j != i])) for i in range(1, W + 1)]
        rels = ["punct" if i == W else "dep" for i in range(1, W + 1)]
        m = rng.random((1, 2, W + 2, W + 2)) * 0.1
        for i, h in enumerate(heads):
            m[0, 0, i + 1, h] += 1.0  # column h: word h (1-based), or [CLS] (0) for the root
        m /= m.sum(-1, keepdims=True)
        sents.append(Sentence([f"w{i}" for i in range(W)], heads, rels, ["X"] * W))
        maps.append(m)
    return sents, maps


def test_probe_learns_a_head_that_encodes_the_parse():
    sents, maps = _data(300)
    probe = train_probe(sents[:200], maps[:200], lr=0.05)
    assert uas(probe, sents[200:], maps[200:]) >= 95.0
    # control: the same maps paired with other sentences' trees carry no information
    shuffled = maps[1:] + maps[:1]
    control = train_probe(sents[:200], shuffled[:200], lr=0.05)
    assert uas(control, sents[200:], shuffled[200:]) < 40.0


def test_scores_shape_root_column_and_no_self_attachment():
    sents, maps = _data(1, W=4)
    probe = AttentionProbe(2, emb_dim=3)
    s = probe(torch.from_numpy(maps[0].reshape(2, 6, 6).astype(np.float32)), torch.zeros(4, 3))
    assert s.shape == (4, 5)
    assert all(s[j, j + 1] < -1e8 for j in range(4))  # column j+1 is word j itself


def test_uas_ignores_punctuation():
    s = Sentence(["a", "b", "."], [2, 0, 2], ["dep", "root", "punct"], ["X"] * 3)

    class Fixed(torch.nn.Module):
        emb_dim = 0

        def forward(self, m, e=None):
            out = torch.full((3, 4), -1.0)
            out[0, 2] = out[1, 0] = 1.0  # right for words 1 and 2
            out[2, 1] = 1.0  # wrong for the punctuation
            return out

    assert uas(Fixed(), [s], [np.zeros((1, 1, 5, 5))]) == pytest.approx(100.0)
