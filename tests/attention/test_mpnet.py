"""MPNet-base (all-mpnet-base-v2: <s> / </s>, relative position buckets, no token_type_ids) and the
GloVe-based probe, on a few sentences.  The model is loaded once per session (conftest.py)."""

import json

import numpy as np
import pytest

from discern.attention.extract import complete, extract, word_level
from discern.attention.surface import _positions, special_tokens, token_type_per_example

SENTS = [["The", "unbelievably", "long", "word", "appears", "here", "."],
         ["Jane's", "brother", "gave", "her", "the", "book", ",", "then", "left", "."],
         ["It", "works", "."]]


@pytest.fixture(scope="module")
def mpnet_examples(mpnet):
    model, tok = mpnet
    return extract(model, tok, SENTS)


def test_mpnet_gives_12_by_12_heads_and_word_level_rows_sum_to_one(mpnet_examples):
    for words, ex in zip(SENTS, mpnet_examples):
        assert ex.maps.shape[:2] == (12, 12)
        assert complete(ex, len(words))  # <s> words </s>, nothing truncated
        w = word_level(ex.maps, ex.word_ids)  # (12, 12, W+2, W+2) over <s>, the words, </s>
        assert w.shape == (12, 12, len(words) + 2, len(words) + 2)
        assert np.allclose(w.sum(-1), 1.0, atol=3e-3)
    # split words are grouped by word ids: "unbelievably" is several pieces, one word-level unit
    ex = mpnet_examples[0]
    assert sum(1 for t in ex.word_ids if t == 1) > 1
    assert ex.tokens[0] == "<s>" and ex.tokens[-1] == "</s>"
    assert "[CLS]" not in ex.tokens and "[SEP]" not in ex.tokens


def test_special_token_statistics_use_the_tokenizers_own_names(mpnet_examples):
    assert special_tokens(mpnet_examples) == {"cls": "<s>", "sep": "</s>"}
    for ex in mpnet_examples:
        assert (ex.cls_token, ex.sep_token) == ("<s>", "</s>")
        T = len(ex.tokens)
        cls, sep, punct = _positions(ex)
        assert cls == [0] and sep == [T - 1]
        assert [ex.tokens[t] for t in punct] == [w for w in ex.words if w in (".", ",")]
    per = token_type_per_example(mpnet_examples)
    a = mpnet_examples[1].maps.astype(np.float32)
    assert per["cls"][1] == pytest.approx(a[..., 0].mean(-1), abs=1e-6)  # attention to <s>
    assert per["sep"][1] == pytest.approx(a[..., -1].mean(-1), abs=1e-6)  # attention to </s>
    assert per["sep_sep"][1] == pytest.approx(a[..., -1, -1], abs=1e-6)


def test_glove_row_of_the_and_oov_counting(glove):
    from discern.attention.glove import Glove

    assert glove.vectors.shape == (400000, 50) and glove.dim == 50
    assert glove.row("the") == 0 and glove.row("The") == 0  # lower-cased lookup
    g = Glove(glove.vectors, glove.index)  # fresh counters
    v = g.lookup(["The", "cat", "qqzxwvkj-not-a-word"])
    assert np.array_equal(v[0], np.asarray(glove.vectors[0]))
    assert np.array_equal(v[1], np.asarray(glove.vectors[glove.row("cat")])) and np.abs(v[1]).sum() > 0
    assert not v[2].any()  # OOV: the zero vector
    assert (g.words, g.oov) == (3, 1) and g.oov_rate == pytest.approx(1 / 3)
    assert g.stats()["oov"] == 1 and g.stats()["vocabulary"] == len(glove.index)


def test_glove_folder_errors_are_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from discern.attention.glove import load_glove
    from discern.core import DataError

    with pytest.raises(DataError, match="no glove_6B_50d_emb.npy"):
        load_glove(tmp_path)
    np.save(tmp_path / "glove_6B_50d_emb.npy", np.ones((3, 4), dtype=np.float32))
    pq.write_table(pa.table({"word": ["a", "b", "c"]}), tmp_path / "glove_6B_index.parquet")
    with pytest.raises(DataError, match="no column 'index'"):
        load_glove(tmp_path)
    pq.write_table(pa.table({"index": ["a", "b"]}), tmp_path / "glove_6B_index.parquet")
    with pytest.raises(DataError, match=r"shape \(3, 4\) does not match the 2 words"):
        load_glove(tmp_path)
    pq.write_table(pa.table({"index": ["The", "b", "c"]}), tmp_path / "glove_6B_index.parquet")
    g = load_glove(tmp_path)
    assert g.row("the") == 0 and g.lookup(["THE"]).tolist() == [[1.0] * 4]


@pytest.fixture(scope="module")
def ud_slice(mpnet):
    """12 short UD English-EWT dev sentences with their MPNet word-level maps."""
    from discern.attention.analyze import treebank_path
    from discern.attention.syntax import read_conllu

    model, tok = mpnet
    sents = [s for s in read_conllu(treebank_path("ud-ewt-dev")) if 4 <= len(s.words) <= 12][:12]
    ex = extract(model, tok, [s.words for s in sents])
    assert all(complete(e, len(s.words)) for s, e in zip(sents, ex))
    return sents, [word_level(e.maps, e.word_ids) for e in ex], [e.word_ids for e in ex]


def test_probe_with_glove_vectors_runs_on_a_tiny_slice(mpnet, ud_slice):
    from discern.attention.probe import probe_vectors, train_probe, uas, uas_counts

    model, tok = mpnet
    sents, maps, word_ids = ud_slice
    vecs, info = probe_vectors("glove", [s.words for s in sents], model, tok, word_ids)
    assert info["used"] == "glove" and info["label"] == "GloVe 6B 50d" and "note" not in info
    assert info["words"] == sum(len(s.words) for s in sents) and 0 <= info["oov_rate"] < 0.2
    assert [v.shape for v in vecs] == [(len(s.words), 50) for s in sents]
    probe = train_probe(sents[:8], maps[:8], vecs[:8], seed=0)
    assert probe.emb_dim == 50 and probe.pair_w.out_features == 144  # one weight per layer-head map
    score = uas(probe, sents[8:], maps[8:], vecs[8:])
    right, scored = uas_counts(probe, sents[8:], maps[8:], vecs[8:])
    assert 0.0 <= score <= 100.0 and score == pytest.approx(100 * right.sum() / scored.sum())
    mvecs, minfo = probe_vectors("model", [s.words for s in sents], model, tok, word_ids)
    assert minfo["used"] == "model" and mvecs[0].shape == (len(sents[0].words), 768)


def test_glove_missing_falls_back_to_the_model_embeddings_and_says_so(mpnet, ud_slice, monkeypatch):
    import discern.attention.glove as glove_mod
    from discern.attention.probe import probe_vectors
    from discern.core import DataError, DiscernError

    def missing():
        raise DataError("model 'glove-6b-50d' is not installed; run: discern data fetch glove-6b-50d")

    monkeypatch.setattr(glove_mod, "glove_dir", missing)
    model, tok = mpnet
    sents, _, word_ids = ud_slice
    with pytest.warns(UserWarning, match="GloVe unavailable"):
        vecs, info = probe_vectors("glove", [s.words for s in sents[:2]], model, tok, word_ids[:2])
    assert info["requested"] == "glove" and info["used"] == "model" and "discern data fetch" in info["note"]
    assert vecs[0].shape[-1] == 768
    with pytest.raises(DiscernError, match="one of glove, model"):
        probe_vectors("fasttext", [["a"]])


def test_cli_analyze_mpnet_base_on_a_tiny_slice(mpnet, tmp_path, capsys, monkeypatch):
    """``--model mpnet-base`` through the CLI: every part of the analysis on 12 sentences and 6 GAP passages."""
    import discern.attention.analyze as an
    from discern.cli import main

    calls = []
    monkeypatch.setattr(an, "load_encoder", lambda d, *rest: calls.append(d) or mpnet)  # the session's model
    out = tmp_path / "out"
    assert main(["attention", "analyze", "--model", "mpnet-base", "--out", str(out), "--max-sentences", "12",
                 "--gap-examples", "6", "--probe-train", "6", "--probe-eval", "6"]) == 0
    assert calls and (calls[0] / "config.json").is_file()
    printed = json.loads(capsys.readouterr().out)
    assert printed["special_tokens"] == {"cls": "<s>", "sep": "</s>"}
    res = json.loads((out / "results.json").read_text())
    assert res["layers"] == 12 and res["heads"] == 12 and 10 <= res["sentences"] <= 12
    assert np.array(res["head_distances"]).shape == (144, 144)
    assert res["summary"]["middle_layers"] == [6, 10]  # the paper's layers 6-10 of BERT-base's 12
    assert res["coref"]["examples"] <= 6 and 0 <= res["coref"]["accuracy"] <= 100
    p = res["probes"]
    assert (p["train"], p["eval"]) == (6, 6) and p["vectors"]["used"] == "glove"
    assert all(0 <= p[k] <= 100 for k in ("attn_only", "attn+vectors", "random_init_attn+vectors"))
    page = (out / "index.html").read_text()
    assert "&lt;s&gt;" in page and "&lt;/s&gt;" in page and "[CLS]" not in page
    assert page.count("<table") == 4 and page.count("data:image/png;base64,") == 3


@pytest.mark.parametrize("case", ["unknown-name", "no-config"])
def test_bad_model_is_a_one_line_error(case, tmp_path, capsys):
    from discern.cli import main

    if case == "unknown-name":
        model, expect = "bert-huge", "error: unknown model 'bert-huge': not one of minilm, mpnet-base"
    else:
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "vocab.txt").write_text("[PAD]\n")
        model, expect = str(tmp_path / "m"), f"error: {tmp_path / 'm'}: no config.json"
    assert main(["attention", "analyze", "--model", model, "--out", str(tmp_path / "out"),
                 "--max-sentences", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expect) and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_config_rejects_unknown_vectors():
    from discern.attention.config import Config
    from discern.core.errors import ConfigError

    assert Config().vectors == "glove" and Config(vectors="model").vectors == "model"
    with pytest.raises(ConfigError, match="'vectors' must be 'glove' or 'model'"):
        Config(vectors="word2vec")


def test_cli_sizes_come_from_a_preset_then_the_flags():
    from discern.attention.cli import DEFAULTS, sizes
    from discern.cli import build_parser

    def parse(*extra):
        return sizes(build_parser().parse_args(["attention", "analyze", "--out", "x", *extra]))

    assert parse() == DEFAULTS
    assert parse("--preset", "quick") == {"max_sentences": 1000, "gap_examples": 400, "probe_train": 600,
                                          "probe_eval": 400}
    assert parse("--preset", "quick", "--max-sentences", "12", "--gap-examples", "0")["max_sentences"] == 12
    assert parse("--preset", "tiny", "--gap-examples", "0")["gap_examples"] == 0
