import numpy as np
import pytest

from discern.attention.clustering import head_distances
from discern.attention.extract import Example
from discern.attention.syntax import Sentence, predictions, read_conllu, relation_accuracy
from discern.core import DataError


def _ex(maps):
    T = maps.shape[-1]
    return Example(["w"] * (T - 2), ["[CLS]"] + ["w"] * (T - 2) + ["[SEP]"], [None] + list(range(T - 2)) + [None],
                   maps.astype(np.float16))


def test_js_distances_symmetric_zero_diagonal_and_match_the_formula():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 3, 5, 5))
    maps /= maps.sum(-1, keepdims=True)
    ex = _ex(maps)
    D = head_distances([ex, ex], chunk=4)
    assert D.shape == (6, 6)
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0) and np.all(D >= 0)
    # one pair by hand: heads (0, 1) and (1, 2), summed over 5 rows and both copies of the sentence
    p = 0.999 * ex.maps.astype(np.float64)[0, 1] + 0.001 / 5
    q = 0.999 * ex.maps.astype(np.float64)[1, 2] + 0.001 / 5
    m = (p + q) / 2
    js = 0.5 * (p * np.log(p / m)).sum(-1) + 0.5 * (q * np.log(q / m)).sum(-1)
    assert D[1, 5] == pytest.approx(2 * js.sum(), rel=1e-9)
    # identical heads are at distance 0, and JS is bounded by log 2 per row
    same = _ex(np.repeat(maps[:1, :1], 2, axis=1))
    assert head_distances([same])[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert D.max() <= 2 * 5 * np.log(2)


def _parse_map(heads, W, L=1, H=2):
    """Word maps (L, H, W+2, W+2) where head 0 of layer 0 attends from each word to its gold head, and
    head 1 to the next word."""
    m = np.full((L, H, W + 2, W + 2), 1e-3)
    for i, h in enumerate(heads):
        m[0, 0, i + 1, h if h > 0 else 0] = 1.0  # column h = word h (1-based) since [CLS] is column 0
        m[0, 1, i + 1, min(i + 2, W)] = 1.0
    return m


def test_relation_accuracy_on_a_constructed_attention_tensor():
    s = Sentence(["the", "cat", "sat", "down"], [2, 3, 0, 3], ["det", "nsubj", "root", "advmod"],
                 ["DET", "NOUN", "VERB", "ADV"])
    m = _parse_map(s.heads, 4)
    d2h, h2d = predictions(m)
    assert d2h[0, 0].tolist()[:2] == [2, 3]
    res = relation_accuracy([s], [m])
    assert set(res) == {"det", "nsubj", "advmod"}  # root is skipped
    for rel in res:
        assert res[rel]["dep_to_head"][0, 0] == 1.0
        assert res[rel]["best"] == ("dep->head", 0, 0, 1.0)
    assert res["det"]["dep_to_head"][0, 1] == 1.0  # "the" -> next word "cat" is also its head
    assert res["nsubj"]["dep_to_head"][0, 1] == 1.0 and res["advmod"]["dep_to_head"][0, 1] == 0.0
    assert res["det"]["offset"] == (1, 1.0) and res["advmod"]["offset"] == (-1, 1.0)


def test_conllu_reader_and_errors(tmp_path):
    good = tmp_path / "a.conllu"
    good.write_text("# text = I'm here\n1-2\tI'm\t_\t_\t_\t_\t_\t_\t_\t_\n1\tI\tI\tPRON\t_\t_\t3\tnsubj\t_\t_\n"
                    "2\t'm\tbe\tAUX\t_\t_\t3\tcop\t_\t_\n3\there\there\tADV\t_\t_\t0\troot\t_\t_\n"
                    "3.1\tx\tx\tX\t_\t_\t_\t_\t_\t_\n\n"
                    "1\tOk\tok\tINTJ\t_\t_\t0\troot\t_\t_\n2\tJane's\tx\tPROPN\t_\t_\t1\tnmod:poss\t_\t_\n")
    s = read_conllu(good)
    assert [x.words for x in s] == [["I", "'m", "here"], ["Ok", "Jane's"]]
    assert s[0].heads == [3, 3, 0] and s[1].relations == ["root", "nmod"]
    bad = tmp_path / "b.conllu"
    bad.write_text("1\tI\tI\tPRON\t_\t_\t2\tnsubj\t_\t_\n2\tgo\tgo\tVERB\t_\t_\tx\troot\t_\t_\n")
    with pytest.raises(DataError, match=r"b\.conllu:2: ID and HEAD must be integers"):
        read_conllu(bad)
    bad.write_text("1\tI\tI\tPRON\t_\t_\t2\tnsubj\t_\n")
    with pytest.raises(DataError, match=r"b\.conllu:1: expected 10 tab-separated columns, got 9"):
        read_conllu(bad)
    bad.write_text("1\tI\tI\tPRON\t_\t_\t5\tnsubj\t_\t_\n\n")
    with pytest.raises(DataError, match=r"b\.conllu:2: word 1 has head 5 beyond"):
        read_conllu(bad)


def test_reads_the_registry_ud_ewt_dev():
    from discern.data import registry

    folder = registry.path("ud-english-ewt")
    s = read_conllu(next(folder.glob("*dev.conllu")))
    assert len(s) == 2001 and s[0].words[:3] == ["From", "the", "AP"]


def test_mds_map_preserves_the_distances_of_points_on_a_line():
    from discern.attention.clustering import mds_2d

    x = np.array([0.0, 1.0, 3.0, 7.0])
    D = np.abs(x[:, None] - x[None])
    y = mds_2d(D, seed=0)
    got = np.linalg.norm(y[:, None] - y[None], axis=-1)
    assert np.allclose(got, D, atol=1e-2)  # SMACOF stops at a relative tolerance


def test_cli_analyze_writes_a_self_contained_page(tmp_path, capsys):
    """End to end on the real MiniLM and 30 gold UD English-EWT dev sentences."""
    import json

    from discern.cli import main

    out = tmp_path / "out"
    assert main(["attention", "analyze", "--model", "minilm", "--treebank", "ud-ewt-dev", "--out", str(out),
                 "--max-sentences", "30", "--gap-examples", "10", "--probe-train", "10", "--probe-eval", "10"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["layers"] == 6 and res["heads"] == 12 and 20 <= res["sentences"] <= 30
    assert np.array(res["head_distances"]).shape == (72, 72) and np.array(res["mds"]).shape == (72, 2)
    assert res["special_tokens"] == {"cls": "[CLS]", "sep": "[SEP]"}
    assert res["coref"]["examples"] <= 10 and res["probes"]["train"] == 10
    page = (out / "index.html").read_text()
    assert page.count("<table") == 4 and page.count("data:image/png;base64,") == 3
    assert "<td>cls</td><td>[CLS]</td>" in page and "entropy (nats)" in page
    assert all(0 <= r["accuracy"] <= 100 for r in res["syntax"])
    assert list((out / "cache").glob("attn-*.npz"))


def test_reproduce_tiny_decides_every_claim_by_its_named_test(tiny_result):
    import json

    from discern.core.results import Result
    from discern.metrics.stats import holm

    res = json.loads((tiny_result / "results.json").read_text())
    result = Result.from_dict(res)  # the results file follows the contract
    assert result.paper == "attention" and len(result.claims) == 5
    sep, syntax, coref, probe1, probe2 = result.claims
    assert res["layers"] == 6 and res["heads"] == 12
    assert res["middle_layers"]["layers"] == [3, 5]  # the paper's 6-10 of 12, scaled to MiniLM's 6
    # [SEP]: the estimate is the mean over sentences of the middle layers' layer-mean attention to [SEP]
    by_layer = res["middle_layers"]["sep_by_layer"]
    assert res["middle_layers"]["sep"]["estimate"] == pytest.approx(np.mean(by_layer[2:5]), abs=1e-9)
    lo, hi = sep.ci
    assert lo <= res["middle_layers"]["sep"]["estimate"] <= hi
    assert sep.verdict == ("held" if lo > 0.5 else "not held" if hi < 0.5 else "inconclusive")
    assert "[CLS]" in sep.ours and "bootstrap" in sep.test and "0.5" in sep.test
    # syntax: Holm over the relations' McNemar p-values; held iff the 3rd smallest adjusted p < 0.05
    rows = res["syntax"]
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p_value"] for r in rows]))
    adj = sorted(r["p_holm"] for r in rows)
    if len(adj) >= 3:
        assert syntax.p_value == pytest.approx(adj[2])
        assert syntax.verdict == ("held" if adj[2] < 0.05 else "inconclusive")
    else:
        assert syntax.p_value is None and syntax.verdict == "inconclusive"
    assert "McNemar" in syntax.test and "Holm" in syntax.test
    for r in rows:  # accuracies and discordant counts agree with each other
        n = r["count"]
        assert r["accuracy"] - r["baseline"] == pytest.approx(100 * (r["head_only"] - r["offset_only"]) / n)
    assert "McNemar" in coref.test and coref.p_value is not None
    assert coref.verdict in ("held", "not held", "inconclusive")
    for c in (probe1, probe2):
        assert "paired bootstrap" in c.test and c.ci[0] <= c.ci[1]
        assert c.verdict == ("held" if c.ci[0] > 0 else "not held" if c.ci[1] < 0 else "inconclusive")
    pr = res["probe"]
    assert pr["vectors"]["used"] == "glove" and 0 <= pr["vectors"]["oov_rate"] < 0.2  # the paper's GloVe probe
    assert "GloVe 6B 50d" in probe1.ours and "GloVe 6B 50d" in probe2.ours
    assert pr["attn+emb - attn_only"]["mean"] == pytest.approx(pr["attn+emb"] - pr["attn_only"])
    assert pr["attn_only - random_init"]["mean"] == pytest.approx(pr["attn_only"] - pr["random_init"])
    assert (tiny_result / "plots" / "token_types.png").is_file()


def test_bench_naive_and_batched_analyses_agree():
    from discern.attention.bench import bench

    out = bench(quick=True)
    assert out["details"]["max_abs_difference_cls_attention"] < 1e-3  # float16 maps vs float32 loops
    assert out["details"]["sentences"] == 16


def test_spacy_silver_parses_and_analyze_on_any_text(tmp_path):
    import json

    from discern.attention.analyze import analyze
    from discern.attention.syntax import silver_parse
    from discern.data.models import model_path

    (s,) = silver_parse(["The cat sat on the mat."])
    assert s.words == ["The", "cat", "sat", "on", "the", "mat", "."]
    assert s.heads == [2, 3, 0, 3, 6, 4, 3] and s.relations[:3] == ["det", "nsubj", "root"]
    text = tmp_path / "story.txt"
    text.write_text("The old man walked to the river. He saw a small boat there.\n\n"
                    "She gave her brother the book. They read it together every evening.\n")
    res = analyze(model_path("minilm"), None, tmp_path / "out", text=text, min_count=1, gap_examples=0,
                  probe_train=0)
    assert res["sentences"] == 4 and "silver" in res["treebank"]
    rels = {r["relation"]: r for r in res["syntax"]}
    assert rels["nsubj"]["count"] == 4  # man, He, She, They
    assert {"det", "prep", "pobj"} <= set(rels)
    assert res["coref"] is None and res["probes"] is None  # both skipped
    assert json.loads((tmp_path / "out" / "results.json").read_text())["layers"] == 6
