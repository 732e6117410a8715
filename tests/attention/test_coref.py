import numpy as np
import pytest

from discern.attention.coref import GapExample, baselines, head_accuracy, read_gap
from discern.core import DataError

HEADER = "ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL\n"


def test_read_gap_maps_offsets_to_words_and_keeps_single_answer_rows(tmp_path):
    text = "Anna Smith met Bob. Later she left, and Bob stayed."
    rows = [f"d-1\t{text}\tshe\t{text.index('she')}\tAnna Smith\t0\tTRUE\tBob\t15\tFALSE\tu\n",
            f"d-2\t{text}\tshe\t{text.index('she')}\tAnna Smith\t0\tTRUE\tBob\t15\tTRUE\tu\n"]  # both true: skipped
    f = tmp_path / "gap.tsv"
    f.write_text(HEADER + "".join(rows))
    (ex,) = read_gap(f)
    assert ex.words[:5] == ["Anna", "Smith", "met", "Bob", "."]
    assert ex.pronoun == 6 and ex.candidates == (1, 3) and ex.answer == 0
    f.write_text(HEADER + f"d-3\t{text}\tshe\tx\tAnna\t0\tTRUE\tBob\t15\tFALSE\tu\n")
    with pytest.raises(DataError, match=r"gap\.tsv:2: offsets must be integers"):
        read_gap(f)


def test_head_accuracy_and_baselines_on_constructed_maps():
    words = ["Anna", "met", "Anna", "'", "s", "friend", "Bob", "then", "she", "left"]
    ex = [GapExample("a", words, 8, (2, 6), 0), GapExample("b", words, 8, (2, 6), 1)]
    W = len(words) + 2
    m = np.full((1, 2, W, W), 0.01)
    m[0, 0, 9, 3] = 0.9  # head 0: the pronoun attends to word 2 (candidate A)
    m[0, 1, 9, 7] = 0.9  # head 1: to word 6 (candidate B)
    acc = head_accuracy(ex, [m, m])
    assert acc.tolist() == [[0.5, 0.5]]
    acc = head_accuracy(ex[:1], [m])
    assert acc.tolist() == [[1.0, 0.0]]
    b = baselines(ex)
    # nearest to the pronoun (index 8) is B (index 6); "Anna" occurs twice, "Bob" once -> string match picks A
    assert b == {"nearest": 0.5, "string_match": 0.5}
    assert baselines(ex[:1]) == {"nearest": 0.0, "string_match": 1.0}
