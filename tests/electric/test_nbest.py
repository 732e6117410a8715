"""n-best lists: file formats, audio helpers, and real pocketsphinx / espeak-ng decoding."""

import json
import math

import numpy as np
import pytest

from discern.core import DataError, DiscernError
from discern.electric import nbest
from discern.electric.nbest import (SAMPLE_RATE, Hypothesis, Recognizer, Utterance, add_noise,
                                    clean_hypothesis, generate_nbest, librivox_utterances, nbest_wer,
                                    read_mlm_scoring, read_nbest, select_sentences, synthesize,
                                    write_nbest)
from discern.metrics import word_errors

def _librivox():
    return librivox_utterances()  # installed by `make setup` (discern data fetch)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer()


# ----------------------------------------------------------------------------- JSONL


def _utterances():
    return [
        Utterance("u1", "he might even have been made amiable himself",
                  [Hypothesis("he might even have been made the amiable himself", -3.4634, -893.6, -52.78),
                   Hypothesis("he might even have been made amiable himself", -3.4714)],
                  {"source": "librivox", "audio_seconds": 3.29, "noise_snr_db": None}),
        Utterance("u2 ünïcode", "café", [Hypothesis("", -1e-3)], {"nested": {"a": [1, 2]}}),
    ]


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "lists.jsonl"
    utts = _utterances()
    write_nbest(path, utts)
    assert read_nbest(path) == utts
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lists.jsonl"]  # no temporary left
    write_nbest(path, utts[:1])  # rewriting replaces the file
    assert read_nbest(path) == utts[:1]


GOOD = {"id": "x", "reference": "a b", "hypotheses": [{"text": "a b", "score": -1.0}], "meta": {}}


def _with(**changes):
    obj = json.loads(json.dumps(GOOD))
    for k, v in changes.items():
        if v is KeyError:
            del obj[k]
        else:
            obj[k] = v
    return json.dumps(obj)


@pytest.mark.parametrize("line, expected", [
    ('{"id": "x", "reference": ', "invalid JSON"),
    ("[1, 2]", "expected an object"),
    (_with(hypotheses=KeyError), "missing key 'hypotheses'"),
    (_with(meta=KeyError), "missing key 'meta'"),
    (_with(reference=3), "'reference' must be a str"),
    (_with(hypotheses={"text": "a"}), "'hypotheses' must be an list"),
    (_with(hypotheses=[]), "'hypotheses' is empty"),
    (_with(hypotheses=[{"text": "a"}]), "missing key 'score'"),
    (_with(hypotheses=[{"text": "a", "score": "-1"}]), "hypotheses[0].score: expected a finite number"),
    (_with(hypotheses=[{"text": "a", "score": True}]), "score: expected a finite number"),
    (_with(hypotheses=[{"text": "a", "score": -1, "lm": "x"}]), "lm: expected a finite number or null"),
    (_with(hypotheses=[{"text": 5, "score": -1}]), "text: expected a string"),
    (_with(hypotheses=[{"text": "a", "score": -1}, "b"]), "hypotheses[1]: expected an object"),
    (_with(extra=1), "unexpected key 'extra'"),
    (_with(id="first"), "utterance id 'first' already appeared on line 1"),
])
def test_read_nbest_malformed_third_line(tmp_path, line, expected):
    path = tmp_path / "bad.jsonl"
    first = _with(id="first")
    second = _with(id="second")
    path.write_text("\n".join([first, second, line]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_nbest(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:3: "), msg
    assert expected in msg
    assert "\n" not in msg


def test_read_nbest_missing_and_blank_lines(tmp_path):
    with pytest.raises(DataError, match="file is missing"):
        read_nbest(tmp_path / "nope.jsonl")
    path = tmp_path / "ok.jsonl"
    path.write_text(_with(id="a") + "\n\n" + _with(id="b") + "\n", encoding="utf-8")
    assert [u.id for u in read_nbest(path)] == ["a", "b"]


# ----------------------------------------------------------------------------- mlm-scoring format

MLM = {
    "2961-961-0001": {
        "ref": "then the old man said",
        "hyp_2": {"score": -7.25, "text": " then the old men said"},
        "hyp_1": {"score": -3.5, "text": " then the old man said"},
        "hyp_3": {"score": -9.0, "text": " than the old man set"},
    },
    "1272-128104-0000": {
        "hyp_1": {"score": -1.234, "text": " mister quilter is the apostle"},
        "ref": "mister quilter is the apostle",
    },
}


def test_read_mlm_scoring(tmp_path):
    path = tmp_path / "dev-clean.am.json"
    path.write_text(json.dumps(MLM, indent=1))
    utts = read_mlm_scoring(path)
    assert [u.id for u in utts] == ["1272-128104-0000", "2961-961-0001"]  # sorted, as mlm-scoring
    assert utts[0] == Utterance("1272-128104-0000", "mister quilter is the apostle",
                                [Hypothesis("mister quilter is the apostle", -1.234)],
                                {"source": "mlm-scoring", "file": "dev-clean.am.json"})
    assert [(h.text, h.score) for h in utts[1].hypotheses] == [
        ("then the old man said", -3.5), ("then the old men said", -7.25), ("than the old man set", -9.0)]
    assert nbest_wer(utts)["wer"] == 0.0


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["2961-961-0001"].pop("ref"),
     "utterance '2961-961-0001': 'ref' must be the reference string"),
    (lambda d: d["2961-961-0001"]["hyp_2"].pop("score"),
     "'hyp_2' must be an object with a finite number 'score'"),
    (lambda d: d["2961-961-0001"].update(hyp_2="then"), "'hyp_2' must be an object"),
    (lambda d: d["2961-961-0001"].pop("hyp_2"), "'hyp_2' is missing"),
    (lambda d: d.update({"x": [1, 2]}), "utterance 'x': expected an object with 'ref'"),
    (lambda d: d.update({"y": {"ref": "a"}}), "utterance 'y': no hypotheses"),
])
def test_read_mlm_scoring_malformed(tmp_path, mutate, expected):
    data = json.loads(json.dumps(MLM))
    mutate(data)
    path = tmp_path / "bad.am.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as e:
        read_mlm_scoring(path)
    assert str(e.value).startswith(str(path))
    assert expected in str(e.value)


def test_read_mlm_scoring_not_json_or_wrong_shape(tmp_path):
    path = tmp_path / "bad.am.json"
    path.write_text('{\n "a": {\n  "ref": "x",\n  }\n}')
    with pytest.raises(DataError, match=r"bad\.am\.json:4: invalid JSON"):
        read_mlm_scoring(path)
    path.write_text("[]")
    with pytest.raises(DataError, match="keyed by utterance id"):
        read_mlm_scoring(path)
    path.write_text('{"a": {"ref": "x", "hyp_1": {"score": 1, "text": "x"}}, "a": {}}')
    with pytest.raises(DataError, match="'a' appears twice"):
        read_mlm_scoring(path)


# ----------------------------------------------------------------------------- audio helpers

def _snr_db(clean, noisy):
    c = clean.astype(np.float64)
    return 10 * math.log10(np.mean(c ** 2) / np.mean((noisy.astype(np.float64) - c) ** 2))


@pytest.mark.parametrize("snr", [30.0, 20.0, 10.0, 0.0])
def test_add_noise_hits_requested_snr(snr):
    t = np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE
    x = (8000 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))).astype(np.int16)
    y = add_noise(x, snr, np.random.default_rng(0))
    assert y.dtype == np.int16 and y.shape == x.shape
    assert abs(_snr_db(x, y) - snr) < 0.1
    assert np.array_equal(y, add_noise(x, snr, np.random.default_rng(0)))  # seeded: reproducible


def test_add_noise_clean_and_clipping():
    x = np.array([100, -200, 32767, -32768] * 1000, dtype=np.int16)
    for clean in (None, math.inf):
        y = add_noise(x, clean, np.random.default_rng(0))
        assert np.array_equal(x, y) and y is not x
    y = add_noise(x, -10.0, np.random.default_rng(0))  # louder noise than signal: clipped
    assert y.dtype == np.int16 and y.max() == 32767 and y.min() == -32768
    with pytest.raises(ValueError, match="silent"):
        add_noise(np.zeros(100, np.int16), 10.0, np.random.default_rng(0))


def test_clean_hypothesis():
    assert clean_hypothesis("<s> hello [NOISE] read(2) the(3) world <sil> ++GARBAGE++ </s>") == \
        "hello read the world"
    assert clean_hypothesis("") == ""


def test_select_sentences():
    good = [
        "The old man walked slowly to the river.",
        "She said that it would rain again tomorrow!",
        "\u201cWe shall see,\u201d said the young woman quietly.",
        "They were not at all sure what to do next.",
    ]
    bad = [
        "In 1961 the city voted to build a new school.",  # digits
        "The zxqvbl walked slowly to the river today.",  # not in the dictionary
        "He ran home.",  # too short
        "and " * 21 + "so on.",  # too long
        "Mr. Smith walked slowly to the river today.",  # full stop inside: abbreviation
        "Prices rose by ten % in the first quarter.",  # a symbol espeak would read aloud
    ]
    pool = bad[:3] + good[:2] + bad[3:] + good[2:] + good[:1]  # and a duplicate
    picked = select_sentences(pool, 4, seed=0)
    assert sorted(picked) == sorted(good)
    assert select_sentences(pool, 4, seed=0) == picked
    assert select_sentences(pool, 2, seed=5) == select_sentences(pool, 2, seed=5)
    assert len(set(select_sentences(pool, 3, seed=1))) == 3
    assert select_sentences(pool, 1, seed=0, min_words=10, max_words=10) == [good[3]]
    with pytest.raises(ValueError, match="only 4 of"):
        select_sentences(pool, 5, seed=0)


def test_librivox_utterances():
    utts = _librivox()
    assert len(utts) == 5
    uid, ref, audio = utts[4]
    assert uid == "sense_and_sensibility_01_austen_64kb-0930"
    assert ref == "he might even have been made amiable himself"
    assert audio.dtype == np.int16 and audio.ndim == 1 and audio.size == 52640  # 3.29 s


# ----------------------------------------------------------------------------- real decoding

def test_decode_librivox_nbest(recognizer):
    uid, ref, audio = _librivox()[4]
    hyps = recognizer.decode(audio, n=10)
    texts = [h.text for h in hyps]
    assert len(texts) == 10 and len(set(texts)) == 10
    assert texts[0] == clean_hypothesis(recognizer.decoder.hyp().hypstr)
    assert all(h.score <= hyps[0].score for h in hyps)
    assert hyps[0].acoustic is not None and hyps[0].lm is not None
    assert all(h.acoustic is None and h.lm is None for h in hyps[1:])
    errors = [word_errors(ref, t)[0] for t in texts]
    # pocketsphinx inserts one word ("made the amiable"); the reference itself is in the list
    assert errors[0] == 1 and min(errors) == 0
    stats = nbest_wer([Utterance(uid, ref, hyps, {})])
    assert stats["oracle_wer"] <= stats["wer"]
    assert recognizer.decode(audio, n=10) == hyps  # no state carried between utterances


def test_synthesize_and_decode(recognizer):
    text = "The old man walked slowly to the river."
    audio = synthesize(text, voice="en-us", rate=175)
    assert audio.dtype == np.int16 and audio.ndim == 1
    seconds = audio.size / SAMPLE_RATE
    assert 1.2 < seconds < 4.5  # 8 words at 175 words per minute, plus pauses
    assert np.abs(audio).max() > 1000
    assert np.array_equal(audio, synthesize(text, voice="en-us", rate=175))
    assert synthesize(text, voice="en-us", rate=250).size < audio.size  # faster speech is shorter
    noisy = add_noise(audio, 30.0, np.random.default_rng(0))
    hyps = recognizer.decode(noisy, n=5)
    texts = [h.text for h in hyps]
    assert 1 <= len(hyps) <= 5 and len(set(texts)) == len(texts)
    assert all(t == clean_hypothesis(t) for t in texts)


def test_synthesize_errors(monkeypatch):
    with pytest.raises(DiscernError, match="espeak-ng -v nosuchvoice .* failed"):
        synthesize("hello there", voice="nosuchvoice")
    monkeypatch.setattr(nbest.shutil, "which", lambda name: None)
    with pytest.raises(DiscernError, match="apt-get install espeak-ng"):
        synthesize("hello there")


def test_generate_nbest_resumes(tmp_path, monkeypatch):
    items = [("a", "The old man walked slowly."), ("b", "She said it would rain."),
             ("c", "We shall see what happens.")]
    out = tmp_path / "espeak.jsonl"
    kw = dict(voices=["en-us", "en-us+f2"], rates=[170, 190], snrs=[None, 20.0], n=5, seed=3,
              out_path=out, progress=False)
    first = generate_nbest(items[:2], **kw)
    assert [u.id for u in first] == ["a", "b"]
    assert read_nbest(out) == first
    assert first[0].reference == "the old man walked slowly"
    m = first[0].meta
    assert m["source"] == "espeak-ng" and m["text"] == items[0][1] and m["noise_floor_snr_db"] == 40.0
    assert (m["voice"], m["rate"], m["noise_snr_db"]) != (first[1].meta["voice"], first[1].meta["rate"],
                                                          first[1].meta["noise_snr_db"])
    # two worker processes give the same lists in the same order
    assert generate_nbest(items[:2], **{**kw, "out_path": None, "workers": 2}) == first
    calls = []
    real = nbest._make_utterance
    monkeypatch.setattr(nbest, "_make_utterance", lambda rec, task: calls.append(task[0]) or real(rec, task))
    again = generate_nbest(items, **kw)
    assert calls == ["c"]  # a and b came from the file
    assert again[:2] == first and [u.id for u in again] == ["a", "b", "c"]
    assert read_nbest(out) == again
    # a file from another job is refused before any decoding
    write_nbest(out, [Utterance("zzz", "x", [Hypothesis("x", -1.0)], {})])
    with pytest.raises(DataError, match="'zzz' is not among this run's items"):
        generate_nbest(items, **kw)
