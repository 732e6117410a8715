import numpy as np

from discern.data.scenes import COLOURS, make_scenes


def test_scenes_are_deterministic_and_match_their_captions():
    a, sa = make_scenes(20, 32, seed=3)
    b, sb = make_scenes(20, 32, seed=3)
    assert np.array_equal(a, b) and [s.caption for s in sa] == [s.caption for s in sb]
    for img, s in zip(a, sa):
        assert s.shapes[0] != s.shapes[1] and s.colours[0] != s.colours[1]
        # the left half holds only the first colour, the right half only the second (plus black)
        for half, colour in ((img[:, :16], s.colours[0]), (img[:, 16:], s.colours[1])):
            pixels = {tuple(p) for p in half.reshape(-1, 3)} - {(0, 0, 0)}
            assert pixels == {COLOURS[colour]}
        i, j = (0, 1) if s.left_first else (1, 0)
        assert s.caption == f"a {s.colours[i]} {s.shapes[i]} and a {s.colours[j]} {s.shapes[j]}"
        assert s.swapped == f"a {s.colours[j]} {s.shapes[i]} and a {s.colours[i]} {s.shapes[j]}"
        assert sorted(s.caption.split()) == sorted(s.swapped.split()) and s.caption != s.swapped
    # captions name the left object first in some scenes and the right one first in others
    assert {s.left_first for s in sa} == {True, False}
    # each object covers a sizeable part of its half
    assert all((img[:, :16].sum(-1) > 0).sum() > 40 and (img[:, 16:].sum(-1) > 0).sum() > 40 for img in a)
