"""Hostile files for every reader of a file the ``discern`` command line reads.

Table driven: each entry of ``FORMATS`` is a small valid sample written here, the reader that takes it,
and (where a command reads it) the command line.  From the sample, a deterministic list of mutations is
made with a seeded :class:`random.Random` (byte-level: empty, binary, bad UTF-8, BOM, CRLF, truncation, a
line duplicated or dropped, a huge line, NUL bytes, HTML and spreadsheet-formula text, a folder, a missing
file; structure-aware: every JSON value replaced by NaN / inf / 1e999 / -1 / 2**64 / a 400- or 5000-digit
integer / "abc" / null / [] / {} / a few MB string, strings and numbers swapped, keys dropped and added,
100,000 nested brackets; every delimited cell replaced likewise, columns dropped and added).

For every mutation the reader either returns (the input was valid after all) or raises a
:class:`~discern.core.errors.DiscernError` whose message is one short line naming the file.  Any other
exception (ValueError, KeyError, UnicodeDecodeError, RecursionError, OverflowError, csv.Error, ...) is a
bug.  For a few failing mutations per command, ``discern.cli.main`` runs in-process: exit status 2, one
``error: ...`` line on stderr, no traceback, and no file or folder written anywhere.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from discern.core.errors import DiscernError

SEED = 20240611
HUGE = 3_000_000  # characters on one line / in one value
MAX_MESSAGE = 1000  # characters: one readable line, never a dump of the input

DIR = "<a folder>"  # mutation results that are not bytes
MISSING = "<missing>"
SENTINEL = "\u2603HOSTILE\u2603"


# --------------------------------------------------------------------------- valid samples

CONLLU = ("# sent_id = 1\n# text = The cat sleeps here\n"
          "1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n"
          "2\tcat\tcat\tNOUN\t_\t_\t3\tnsubj\t_\t_\n"
          "3\tsleeps\tsleep\tVERB\t_\t_\t0\troot\t_\t_\n"
          "4\there\there\tADV\t_\t_\t3\tadvmod\t_\t_\n"
          "\n"
          "# sent_id = 2\n"
          "1-2\tI'm\t_\t_\t_\t_\t_\t_\t_\t_\n"
          "1\tI\tI\tPRON\t_\t_\t3\tnsubj\t_\t_\n"
          "2\t'm\tbe\tAUX\t_\t_\t3\tcop\t_\t_\n"
          "3\tfine\tfine\tADJ\t_\t_\t0\troot\t_\t_\n"
          "3.1\tx\tx\tX\t_\t_\t_\t_\t_\t_\n"
          "4\ttoday\ttoday\tNOUN\t_\t_\t3\tobl:tmod\t_\t_\n\n")

TWO_WORDS = "1\tOk\tok\tINTJ\t_\t_\t0\troot\t_\t_\n2\tthen\tthen\tADV\t_\t_\t1\tadvmod\t_\t_\n\n"

_GAP_TEXT = "Anna Smith met Bob. Later she left, and Bob stayed."
GAP = ("ID\tText\tPronoun\tPronoun-offset\tA\tA-offset\tA-coref\tB\tB-offset\tB-coref\tURL\n"
       f"d-1\t{_GAP_TEXT}\tshe\t{_GAP_TEXT.index('she')}\tAnna Smith\t0\tTRUE\tBob\t15\tFALSE\thttp://a\n"
       f"d-2\t{_GAP_TEXT}\tshe\t{_GAP_TEXT.index('she')}\tAnna Smith\t0\tFALSE\tBob\t15\tTRUE\thttp://b\n")

NBEST = "".join(json.dumps(u) + "\n" for u in [
    {"id": "u1", "reference": "he might have been made amiable",
     "hypotheses": [{"text": "he might have been made the amiable", "score": -3.46, "acoustic": -893.6, "lm": -52.7},
                    {"text": "he might have been made amiable", "score": -3.47, "acoustic": None, "lm": None}],
     "meta": {"source": "librivox", "noise_snr_db": None}},
    {"id": "u2", "reference": "café", "hypotheses": [{"text": "cafe", "score": -0.5}], "meta": {}},
])

MLM_SCORING = json.dumps({
    "2961-961-0001": {"ref": "then the old man said",
                      "hyp_1": {"score": -3.5, "text": " then the old man said"},
                      "hyp_2": {"score": -7.25, "text": " then the old men said"}},
    "1272-128104-0000": {"ref": "mister quilter is the apostle",
                         "hyp_1": {"score": -1.234, "text": " mister quilter is the apostle"}},
}, indent=1)


def _scenario() -> str:
    from discern.nureality.scenarios import SCENARIO_DIR

    return (SCENARIO_DIR / "baseline.json").read_text(encoding="utf-8")


TRIALS_CSV = ("study,participant,trial,block,scenario,attempts,decision_time_s,cross,likert_0,likert_1,complete\n"
              "s,P1,0,0,baseline,1,5.0,true,4,5,true\n"
              "s,P1,1,0,early_eased,1,4.5,true,5,6,true\n"
              "s,P2,0,0,baseline,1,4.0,true,3,4,true\n"
              "s,P2,1,0,early_eased,1,3.2,true,6,6,true\n"
              "s,P2,2,0,no_yield,1,,false,1,2,false\n")

TRIALS_JSON = json.dumps([
    {"participant": "P1", "scenario": "baseline", "decision_time_s": 5.0, "cross": True, "likert": {"0": 4},
     "complete": True, "study": "s"},
    {"participant": 2, "scenario": "early_eased", "decision_time_s": 4.5, "cross": True, "likert": [5, 6]},
    {"participant": "P2", "scenario": "no_yield", "decision_time_s": None, "cross": False, "complete": False},
], indent=1)

PSYCHOPHYSICS = ("subj,session,trial,rt,object_response,category,condition,imagename\n"
                 "model-a,1,1,NaN,dog,dog,0,0001_edg_dnn_0_dog_00_dog1.png\n"
                 "model-a,1,2,NaN,cat,bird,0,0002_edg_dnn_0_bird_00_bird3.png\n"
                 "model-a,1,3,NaN,oven,oven,0,0003_edg_dnn_0_oven_00_oven7.png\n")

CONFIG = json.dumps({"model": {"layers": 2, "dropout": 0.1, "objective": "electra", "tie_embeddings": True},
                     "data": {"corpora": ["brown"], "max_documents": 5, "tokenizer": "train"},
                     "train": {"steps": 3, "lr": 0.001, "schedule": "electra", "batch_size": 4},
                     "seed": 1}, indent=1)

TASK_JSON = json.dumps({"kind": "classification", "labels": ["neg", "pos"], "metrics": ["accuracy", "f1"],
                        "primary": "accuracy", "description": "toy"}, indent=1)
TASK_REG_JSON = json.dumps({"kind": "regression", "scale": {"min": 1900, "max": 2000}})
TASK_TRAIN = "".join(json.dumps(r) + "\n" for r in [
    {"id": "t1", "text": "good movie", "label": "pos"},
    {"id": "t2", "text": "bad film", "text_b": "awful plot", "label": "neg"},
    {"id": 3, "text": "great acting", "label": "pos"},
])
TASK_REG_TRAIN = "".join(json.dumps(r) + "\n" for r in [
    {"id": "r1", "text": "in the year", "label": 0.25}, {"id": "r2", "text": "later on", "label": 1}])
TASK_DEV = json.dumps({"id": "d1", "text": "nice day", "label": "pos"}) + "\n"
TASK_REG_DEV = json.dumps({"id": "rd", "text": "a day", "label": 0.5}) + "\n"

MEDQA = "".join(json.dumps(r) + "\n" for r in [
    {"question": "A 23-year-old woman ...?", "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
     "answer_idx": "C", "meta_info": "step1"},
    {"question": "Which drug?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "A"},
])

PUBMEDQA = json.dumps({
    "21645374": {"QUESTION": "Do mitochondria play a role?", "CONTEXTS": ["Programmed cell death.", "Results."],
                 "final_decision": "yes", "LONG_ANSWER": "Yes."},
    "16418930": {"QUESTION": "Is it safe?", "CONTEXTS": ["Background."], "final_decision": "maybe"},
}, indent=1)

MMLU = ("What is the embryological origin of the hyoid bone?,The first pharyngeal arch,The first and second,"
        "The second pharyngeal arch,The second and third pharyngeal arches,D\n"
        "Which nerve?,vagus,facial,trigeminal,hypoglossal,A\n"
        "\"A question, with a comma\",one,two,three,four,B\n")

QUESTIONS_TXT = "What is a good diet for diabetes?\n\nHow long does flu last?\n"
QUESTIONS_JSONL = "".join(json.dumps(r) + "\n" for r in [
    {"question": "Can I take ibuprofen with aspirin?", "reference": "Ask a pharmacist.", "source": "medicationqa"},
    {"question": "Why do I cough at night?", "answer": "Several causes."},
    {"question": "Is coffee bad?"},
])
ANSWERS_JSONL = "".join(json.dumps(r) + "\n" for r in [
    {"question": "Is coffee bad?", "answer": "In moderation it is fine.", "model": "m", "reference": "No."},
    {"question": "Why cough?", "answer": "Reflux, asthma.", "model": "m", "meta": {"line": 2}},
])

TEACHER = json.dumps({"task": "spam", "kind": "classification",
                      "outputs": {"a": [0.1, 0.9], "b": [2.0, -1.0], "c": [-0.5, 0.5]}})
TEACHER_REG = json.dumps({"task": "year", "kind": "regression", "outputs": {"x": [0.25], "y": 0.5}})


# --------------------------------------------------------------------------- the readers


def _read_conllu(p):
    from discern.attention.syntax import read_conllu
    return read_conllu(p)


def _read_gap(p):
    from discern.attention.coref import read_gap
    return read_gap(p)


def _read_nbest(p):
    from discern.electric.nbest import read_nbest
    return read_nbest(p)


def _read_mlm(p):
    from discern.electric.nbest import read_mlm_scoring
    return read_mlm_scoring(p)


def _read_scenario(p):
    from discern.nureality.scenarios import load_scenario
    return load_scenario(p)


def _read_trials(p):
    from discern.nureality.analysis import read_trials
    return read_trials(p)


def _analyze_trials(trials):
    from discern.nureality.analysis import analyze
    return analyze(trials, resamples=20)


def _read_decisions(p):
    from discern.psychophysics.metrics import read_trials
    return read_trials([p])


def _read_config(p):
    from discern.core.config import build_config, load_config_file
    from discern.electra.config import PRESETS
    load_config_file(p)
    return build_config(PRESETS, "tiny", p, [])


def _read_task(p):
    from discern.tasks.suite import load_task_dir
    return load_task_dir(p.parent)


def _read_medqa(p):
    from discern.medqa.data import medqa
    return medqa("test", root=p.parent)


def _read_pubmedqa(p):
    from discern.medqa.data import pubmedqa
    return pubmedqa(root=p.parent, file=p.name)


def _read_mmlu(p):
    from discern.medqa.data import mmlu
    return mmlu("anatomy", "val", root=p.parent)


def _read_questions(p):
    from discern.medqa.longform import read_questions
    return read_questions(p)


def _read_answers(p):
    from discern.medqa.longform import read_answers
    return read_answers(p)


def _read_teacher(p):
    from discern.bam.teachers import load_teacher
    return load_teacher(p)


def _json_set(text: str, path: tuple, raw: str) -> bytes:
    """The JSON ``text`` with the value at ``path`` replaced by the raw JSON text ``raw``."""
    return _with_raw(json.loads(text), path, raw).encode()


def _line_set(text: str, line: int, path: tuple, raw: str) -> bytes:
    lines = text.splitlines()
    lines[line] = _with_raw(json.loads(lines[line]), path, raw)
    return ("\n".join(lines) + "\n").encode()


BIG = "1" + "0" * 400  # an integer JSON reads, beyond the float range: float() raises OverflowError


# --------------------------------------------------------------------------- the commands

def _cli_conllu(p, work):
    return ["attention", "analyze", "--model", str(work / "model"), "--treebank", str(p), "--out", str(work / "out")]


def _cli_rerank(p, work):
    return ["electric", "rerank", "--nbest", str(p), "--scorer", f"mlm:{work / 'model'}", "--bootstrap", "10",
            "--out", str(work / "report.json")]


def _cli_scenario(p, work):
    return ["nureality", "scenarios", "validate", str(p)]


def _cli_trials(p, work):
    return ["nureality", "analyze", str(p), "--out", str(work / "out")]


def _cli_decisions(p, work):
    return ["psychophysics", "evaluate", "--decisions", str(p), "--humans", "none", "--out", str(work / "out.json")]


def _cli_config(p, work):
    return ["electra", "pretrain", "--preset", "tiny", "--config", str(p)]


def _cli_task(p, work):
    return ["tasks", "finetune", "--task", str(p.parent), "--model", str(work / "model")]


def _cli_questions(p, work):
    return ["medqa", "answer", "--questions", str(p), "--backend", "http://127.0.0.1:9/v1",
            "--out", str(work / "answers.jsonl")]


@dataclass
class Format:
    name: str
    path: str  # where the mutated file lives, relative to the test's folder
    kind: str  # json | jsonl | csv | tsv | conllu | txt
    valid: str | Callable[[], str]
    read: Callable[[Path], Any]
    others: dict[str, str] = field(default_factory=dict)  # further (valid) files beside it
    cli: Callable[[Path, Path], list[str]] | None = None
    cli_mutations: tuple[str, ...] = ()  # mutations that must fail; run through the command line
    extra: dict[str, Callable[[str], bytes]] = field(default_factory=dict)  # hand-picked mutations
    names: tuple[str, ...] = ()  # besides the file's own name, names a message may give instead
    then: Callable[[Any], Any] | None = None  # what the command does next with what was read

    def text(self) -> str:
        return self.valid() if callable(self.valid) else self.valid


_TASK_NAMES = ("task.json", "train.jsonl", "dev.jsonl")  # a task folder's error may name any of its files

FORMATS = [
    Format("conllu", "ud/sample.conllu", "conllu", CONLLU, _read_conllu, cli=_cli_conllu,
           cli_mutations=("binary", "invalid-utf8", "head-5000-digits", "negative-head", "missing"),
           extra={"negative-head": lambda t: t.replace("\t2\tdet\t", "\t-1\tdet\t").encode(),
                  "head-400-digits": lambda t: t.replace("\t2\tdet\t", f"\t{BIG}\tdet\t").encode(),
                  "head-5000-digits": lambda t: t.replace("\t2\tdet\t", f"\t{'9' * 5000}\tdet\t").encode(),
                  "id-unicode-digit": lambda t: t.replace("4\there\t", "\u0664\there\t").encode(),
                  "two-words": lambda t: TWO_WORDS.encode()}),
    Format("gap", "gap/gap-development.tsv", "tsv", GAP, _read_gap,
           extra={"offset-bigint": lambda t: t.replace("\t15\t", f"\t{BIG}\t", 1).encode(),
                  "offset-negative": lambda t: t.replace("\t15\t", "\t-40\t", 1).encode()}),
    Format("nbest", "lists/nbest.jsonl", "jsonl", NBEST, _read_nbest, cli=_cli_rerank,
           cli_mutations=("binary", "deep-nesting", "score-bigint-400", "dir", "truncated-1"),
           extra={"score-bigint-400": lambda t: _line_set(t, 0, ("hypotheses", 0, "score"), BIG),
                  "lm-bigint-400": lambda t: _line_set(t, 0, ("hypotheses", 0, "lm"), BIG)}),
    Format("mlm-scoring", "lists/dev-clean.am.json", "json", MLM_SCORING, _read_mlm, cli=_cli_rerank,
           cli_mutations=("deep-nesting", "value-bigint-5000-0", "dir", "top-list", "score-bigint-400"),
           extra={"score-bigint-400": lambda t: _json_set(t, ("2961-961-0001", "hyp_1", "score"), BIG),
                  "hyp-number-5000-digits": lambda t: t.replace('"hyp_2"', '"hyp_' + "2" * 5000 + '"').encode(),
                  "hyp-arabic-digit": lambda t: t.replace('"hyp_2"', '"hyp_\u0662"').encode()}),
    Format("scenario", "scenarios/baseline.json", "json", _scenario, _read_scenario, cli=_cli_scenario,
           cli_mutations=("binary", "v0-bigint-400", "value-bigint-5000-0", "deep-nesting", "newline-key", "missing"),
           extra={"v0-bigint-400": lambda t: _json_set(t, ("v0_mps",), BIG),
                  "pitch-bigint-400": lambda t: _json_set(t, ("braking", "pitch_deg"), BIG),
                  "provenance-newline-key": lambda t: _json_set(t, ("provenance", "x\ny"), '"confirmed: x"')}),
    Format("trials-csv", "study/trials.csv", "csv", TRIALS_CSV, _read_trials, cli=_cli_trials, then=_analyze_trials,
           cli_mutations=("binary", "cell-huge", "time-nan", "add-cell-in-row", "header-only", "dir"),
           extra={"time-nan": lambda t: t.replace(",5.0,", ",nan,").encode(),
                  "time-inf": lambda t: t.replace(",5.0,", ",inf,").encode(),
                  "likert-9": lambda t: t.replace(",true,4,5,", ",true,9,5,").encode(),
                  "no-baseline": lambda t: t.replace("baseline", "other").encode()}),
    Format("trials-json", "study/trials.json", "json", TRIALS_JSON, _read_trials, cli=_cli_trials,
           then=_analyze_trials,
           cli_mutations=("time-bigint-400", "value-nan-1", "deep-nesting", "top-object", "top-list"),
           extra={"time-bigint-400": lambda t: _json_set(t, (0, "decision_time_s"), BIG),
                  "likert-bigint-400": lambda t: _json_set(t, (0, "likert", "0"), BIG)}),
    Format("decisions", "raw-data/edge_model-a_session-1.csv", "csv", PSYCHOPHYSICS, _read_decisions,
           cli=_cli_decisions, cli_mutations=("binary", "empty", "drop-cell-in-row", "add-cell-in-row", "cell-huge")),
    Format("config", "cfg/electra.json", "json", CONFIG, _read_config, cli=_cli_config,
           cli_mutations=("value-abc-0", "lr-bigint-400", "deep-nesting", "extra-key-0", "newline-key", "binary"),
           extra={"lr-bigint-400": lambda t: _json_set(t, ("train", "lr"), BIG),
                  "dropout-bigint-400": lambda t: _json_set(t, ("model", "dropout"), BIG),
                  "steps-1e999": lambda t: _json_set(t, ("train", "steps"), "1e999"),
                  "deep-sections": lambda t: json.dumps({"model": json.loads('{"a": ' * 900 + "1" + "}" * 900)})
                  .encode()}),
    Format("task.json", "mytask/task.json", "json", TASK_JSON, _read_task, names=_TASK_NAMES,
           others={"mytask/train.jsonl": TASK_TRAIN, "mytask/dev.jsonl": TASK_DEV}, cli=_cli_task,
           cli_mutations=("binary", "metrics-number", "top-list", "missing"),
           extra={"metrics-number": lambda t: _json_set(t, ("metrics",), "5"),
                  "metrics-nested": lambda t: _json_set(t, ("metrics",), '[["accuracy"]]'),
                  "name-newline": lambda t: _json_set(t, ("name",), '"a\\nb"')}),
    Format("task.json-regression", "regtask/task.json", "json", TASK_REG_JSON, _read_task, names=_TASK_NAMES,
           others={"regtask/train.jsonl": TASK_REG_TRAIN, "regtask/dev.jsonl": TASK_REG_DEV},
           extra={"scale-text": lambda t: _json_set(t, ("scale", "min"), '"abc"')}),
    Format("task-split", "mytask/train.jsonl", "jsonl", TASK_TRAIN, _read_task, names=_TASK_NAMES,
           others={"mytask/task.json": TASK_JSON, "mytask/dev.jsonl": TASK_DEV}, cli=_cli_task,
           cli_mutations=("invalid-utf8", "deep-nesting", "dup-line-0", "empty"),
           extra={"id-newline": lambda t: _line_set(t, 0, ("id",), '"a\\nb"') + _line_set(t, 0, ("id",), '"a\\nb"')}),
    Format("task-split-regression", "regtask/train.jsonl", "jsonl", TASK_REG_TRAIN, _read_task, names=_TASK_NAMES,
           others={"regtask/task.json": TASK_REG_JSON, "regtask/dev.jsonl": TASK_REG_DEV},
           extra={"label-bigint-400": lambda t: _line_set(t, 0, ("label",), BIG)}),
    Format("medqa", "medqa/phrases_no_exclude_test.jsonl", "jsonl", MEDQA, _read_medqa),
    Format("pubmedqa", "pubmedqa/pqal_dev.json", "json", PUBMEDQA, _read_pubmedqa,
           extra={"decision-list": lambda t: _json_set(t, ("21645374", "final_decision"), '["yes"]'),
                  "pmid-newline": lambda t: t.replace('"16418930"', '"1641\\n8930"').encode()}),
    Format("mmlu", "mmlu/anatomy_val.csv", "csv", MMLU, _read_mmlu),
    Format("questions-txt", "q/questions.txt", "txt", QUESTIONS_TXT, _read_questions, cli=_cli_questions,
           cli_mutations=("binary", "whitespace", "dir", "missing")),
    Format("questions-jsonl", "q/questions.jsonl", "jsonl", QUESTIONS_JSONL, _read_questions, cli=_cli_questions,
           cli_mutations=("deep-nesting", "value-bigint-5000-0", "line-not-object", "dir")),
    Format("answers", "q/answers.jsonl", "jsonl", ANSWERS_JSONL, _read_answers),
    Format("teacher", "teachers/spam.json", "json", TEACHER, _read_teacher,
           extra={"logit-bigint-400": lambda t: _json_set(t, ("outputs", "a", 0), BIG),
                  "logit-nan": lambda t: _json_set(t, ("outputs", "a", 0), "NaN"),
                  "ragged": lambda t: _json_set(t, ("outputs", "b"), "[1.0]")}),
    Format("teacher-regression", "teachers/year.json", "json", TEACHER_REG, _read_teacher),
]
BY_NAME = {f.name: f for f in FORMATS}


# --------------------------------------------------------------------------- mutations

def _insert(data: bytes, offset: int, piece: bytes) -> bytes:
    return data[:offset] + piece + data[offset:]


def _byte_mutations(rng: random.Random, text: str) -> list[tuple[str, Callable[[str], Any]]]:
    data_len = len(text.encode("utf-8"))
    mid = rng.randrange(data_len // 4, 3 * data_len // 4)
    cuts = sorted(rng.sample(range(1, data_len), 3))
    nul_at = sorted(rng.sample(range(data_len), 3))
    n_lines = len(text.splitlines())
    dup, drop, huge_at = rng.randrange(n_lines), rng.randrange(n_lines), rng.randrange(n_lines)
    binary = bytes(rng.randrange(256) for _ in range(4096))
    word = rng.choice(sorted(set(re.findall(r"[A-Za-z]{3,}", text))))

    def lines(t):
        return t.splitlines(keepends=True)

    def enc(t):
        return t.encode("utf-8")

    out = [
        ("empty", lambda t: b""),
        ("whitespace", lambda t: b"  \n\t\n \r\n   "),
        ("binary", lambda t: binary),
        ("invalid-utf8", lambda t: _insert(enc(t), mid, b"\xff\xfe\xc3\x28")),
        ("latin-1", lambda t: (t + "caf\xe9\n").encode("latin-1", "replace")),
        ("bom", lambda t: b"\xef\xbb\xbf" + enc(t)),
        ("crlf", lambda t: enc(t).replace(b"\n", b"\r\n")),
        ("cr-only", lambda t: enc(t).replace(b"\n", b"\r")),
        ("nul-bytes", lambda t: _insert(_insert(_insert(enc(t), nul_at[2], b"\0"), nul_at[1], b"\0"),
                                        nul_at[0], b"\0")),
        ("dup-line", lambda t: enc("".join(lines(t)[:dup + 1] + lines(t)[dup:]))),
        ("drop-line", lambda t: enc("".join(lines(t)[:drop] + lines(t)[drop + 1:]))),
        ("huge-line", lambda t: enc("".join(lines(t)[:huge_at] + ["x" * HUGE + "\n"] + lines(t)[huge_at:]))),
        ("html", lambda t: enc(t.replace(word, "<script>alert('x')</script>", 1))),
        ("formula", lambda t: enc(t.replace(word, '=HYPERLINK("http://evil.example/","click")', 1))),
        ("dir", lambda t: DIR),
        ("missing", lambda t: MISSING),
    ]
    for i, c in enumerate(cuts):
        out.append((f"truncated-{i}", lambda t, c=c: enc(t)[:c]))
    return out


HOSTILE_JSON = {  # raw JSON text of a hostile value
    "nan": "NaN", "inf": "Infinity", "-inf": "-Infinity", "1e999": "1e999", "neg": "-1", "zero": "0",
    "2**64": str(2 ** 64), "bigint-400": "1" + "0" * 400, "bigint-5000": "9" * 5000, "abc": '"abc"',
    "empty-str": '""', "null": "null", "true": "true", "list": "[]", "object": "{}", "float": "0.5",
    "html": json.dumps("<script>alert('x')</script>"), "formula": json.dumps('=HYPERLINK("http://evil/","x")'),
    "huge": None,  # a string of HUGE characters, made when used
    "deep": "[" * 100_000 + "]" * 100_000,
    "deep900": "[" * 900 + "]" * 900,  # parses, but code that recurses over it may not
}


def _raw(label: str) -> str:
    return '"' + "x" * HUGE + '"' if label == "huge" else HOSTILE_JSON[label]


def _slots(obj, path=()):
    """Paths of every value below the top level."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield path + (k,)
        yield from _slots(v, path + (k,))


def _dicts(obj, path=()):
    if isinstance(obj, dict):
        yield path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _dicts(v, path + (k,))


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def _with_raw(obj, path, raw: str) -> str:
    """``obj`` as JSON text with the value at ``path`` replaced by the raw JSON text ``raw``."""
    obj = copy.deepcopy(obj)
    _get(obj, path[:-1])[path[-1]] = SENTINEL
    return json.dumps(obj, ensure_ascii=False).replace(json.dumps(SENTINEL, ensure_ascii=False), raw, 1)


def _swapped(v) -> str:
    """A value of another JSON type: strings become numbers, numbers strings, and so on."""
    if isinstance(v, bool):
        return json.dumps(str(v).lower())
    if isinstance(v, (int, float)):
        return json.dumps(str(v))
    if isinstance(v, str):
        return "12345"
    if v is None:
        return "0"
    return json.dumps("abc")


def _json_mutations(rng: random.Random, obj) -> list[tuple[str, Callable[[], str]]]:
    """(name, make the mutated JSON text) for one parsed JSON value."""
    slots = list(_slots(obj))
    out: list[tuple[str, Callable[[], str]]] = []
    for label in HOSTILE_JSON:
        for i, path in enumerate(rng.sample(slots, min(2, len(slots)))):
            out.append((f"value-{label}-{i}", lambda path=path, label=label: _with_raw(obj, path, _raw(label))))
    for i, path in enumerate(slots):
        out.append((f"swap-type-{i}", lambda path=path: _with_raw(obj, path, _swapped(_get(obj, path)))))
    dicts = [p for p in _dicts(obj) if _get(obj, p)]
    for i, path in enumerate(rng.sample(dicts, min(3, len(dicts)))):
        key = rng.choice(sorted(_get(obj, path)))

        def drop(path=path, key=key):
            o = copy.deepcopy(obj)
            del _get(o, path)[key]
            return json.dumps(o)

        def extra(path=path):
            o = copy.deepcopy(obj)
            _get(o, path)["unexpected_key"] = 1
            return json.dumps(o)

        out += [(f"drop-key-{i}", drop), (f"extra-key-{i}", extra)]
    if dicts:
        path = rng.choice(dicts)

        def newline_key(path=path):
            o = copy.deepcopy(obj)
            _get(o, path)["bad\nkey\r" + "k" * 5000] = 1
            return json.dumps(o)

        out.append(("newline-key", newline_key))
    for label, raw in (("top-list", "[]"), ("top-object", "{}"), ("top-string", '"x"'), ("top-number", "1"),
                       ("top-null", "null"), ("top-list-of-self", None)):
        out.append((label, lambda raw=raw: raw if raw is not None else json.dumps([obj])))
    out.append(("deep-nesting", lambda: "[" * 100_000 + "]" * 100_000))
    out.append(("deep-objects", lambda: '{"a": ' * 100_000 + "1" + "}" * 100_000))
    out.append(("duplicate-key", lambda: json.dumps(obj)[:-1] + ', "a": 1, "a": 2}'
                if isinstance(obj, dict) else json.dumps(obj)))
    return out


def _structure_mutations(rng: random.Random, fmt: Format, text: str) -> list[tuple[str, Callable[[str], Any]]]:
    enc = str.encode
    if fmt.kind == "json":
        obj = json.loads(text)
        return [(n, lambda t, m=m: enc(m())) for n, m in _json_mutations(rng, obj)]
    if fmt.kind == "jsonl":
        lines = text.splitlines()
        k = rng.randrange(len(lines))
        obj = json.loads(lines[k])

        def put(line: str) -> bytes:
            return enc("\n".join(lines[:k] + [line] + lines[k + 1:]) + "\n")

        out = [(n, lambda t, m=m: put(m())) for n, m in _json_mutations(rng, obj) if not n.startswith("top-")]
        out += [("line-not-object", lambda t: put("[1, 2]")), ("line-string", lambda t: put('"x"')),
                ("line-null", lambda t: put("null")), ("line-garbage", lambda t: put("{not json"))]
        for i in range(2):
            j = rng.randrange(len(lines))
            out.append((f"dup-line-{i}", lambda t, j=j: enc("\n".join(lines[:j + 1] + lines[j:]) + "\n")))
        return out
    if fmt.kind in ("csv", "tsv", "conllu"):
        sep = "," if fmt.kind == "csv" else "\t"
        lines = text.splitlines()
        header = 1 if fmt.kind in ("csv", "tsv") and fmt.name != "mmlu" else 0
        rows = [i for i, line in enumerate(lines) if i >= header and line and not line.startswith("#")
                and '"' not in line]

        def cells(i):
            return lines[i].split(sep)

        def put(i: int, new: list[str]) -> bytes:
            return enc("\n".join(lines[:i] + [sep.join(new)] + lines[i + 1:]) + "\n")

        def replace(i, j, value):
            c = cells(i)
            c[j] = value() if callable(value) else value
            return put(i, c)

        hostile = {"nan": "NaN", "inf": "inf", "-inf": "-inf", "1e999": "1e999", "neg": "-1", "2**64": str(2 ** 64),
                   "bigint": "1" + "0" * 400, "abc": "abc", "empty": "", "space": " ", "html": "<script>x</script>",
                   "formula": '=HYPERLINK("http://evil/","x")', "quote": '"unbalanced', "nul": "\0",
                   "huge": lambda: "x" * HUGE, "unicode": "\u202e\ufeff\u2028"}
        out = []
        for label, value in hostile.items():
            for n in range(2):
                i = rng.choice(rows)
                j = rng.randrange(len(cells(i)))
                out.append((f"cell-{label}" + ("" if n == 0 else f"-{n}"),
                            lambda t, i=i, j=j, value=value: replace(i, j, value)))
        ncols = max(len(cells(i)) for i in rows)
        for j in range(ncols):  # every column once: numbers become text and text becomes numbers
            i = rng.choice([r for r in rows if len(cells(r)) > j])
            v = cells(i)[j]
            swap = "abc" if v.replace(".", "", 1).replace("-", "", 1).isdigit() else "12345"
            out.append((f"col{j}-to-{'text' if swap == 'abc' else 'number'}",
                        lambda t, i=i, j=j, swap=swap: replace(i, j, swap)))
        i = rng.choice(rows)
        out.append(("drop-cell-in-row", lambda t, i=i: put(i, cells(i)[:-1])))
        out.append(("add-cell-in-row", lambda t, i=i: put(i, cells(i) + ["extra"])))
        j = rng.randrange(ncols)
        out.append(("drop-column", lambda t, j=j: enc("\n".join(
            sep.join(c[:j] + c[j + 1:]) for c in (line.split(sep) for line in lines)) + "\n")))
        if header:
            out.append(("header-only", lambda t: enc(lines[0] + "\n")))
            out.append(("no-header", lambda t: enc("\n".join(lines[1:]) + "\n")))
            out.append(("header-dup-column", lambda t: enc("\n".join(
                [lines[0] + sep + lines[0].split(sep)[0]] + [line + sep + "x" for line in lines[1:]]) + "\n")))
        return out
    return []


def mutations(fmt: Format) -> list[tuple[str, Callable[[str], Any]]]:
    rng = random.Random(f"{SEED}/{fmt.name}")
    text = fmt.text()
    out = _byte_mutations(rng, text) + _structure_mutations(rng, fmt, text) + list(fmt.extra.items())
    names = [n for n, _ in out]
    assert len(names) == len(set(names)), fmt.name
    return out


_MUTATIONS: dict[str, dict[str, Callable[[str], Any]]] = {}


def _mutation(fmt: Format, name: str):
    if fmt.name not in _MUTATIONS:
        _MUTATIONS[fmt.name] = dict(mutations(fmt))
    return _MUTATIONS[fmt.name][name]


CASES = [pytest.param(f.name, n, id=f"{f.name}/{n}") for f in FORMATS for n, _ in mutations(f)]
CLI_CASES = [pytest.param(f.name, n, id=f"{f.name}/{n}") for f in FORMATS for n in f.cli_mutations]


# --------------------------------------------------------------------------- running

@pytest.fixture
def work(tmp_path):
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)  # a few MB per case: do not keep them


def _write(fmt: Format, work: Path, name: str | None) -> Path:
    for rel, text in fmt.others.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text, encoding="utf-8")
    path = work / fmt.path
    path.parent.mkdir(parents=True, exist_ok=True)
    data = fmt.text().encode("utf-8") if name is None else _mutation(fmt, name)(fmt.text())
    if data is DIR:
        path.mkdir()
        (path / "inside.txt").write_text("a folder, not a file\n")
    elif data is not MISSING:
        path.write_bytes(data)
    return path


def _check_message(msg: str, names: tuple[str, ...] = ()) -> None:
    assert "\n" not in msg and "\r" not in msg, f"message is not one line: {msg[:300]!r}"
    assert not names or any(n in msg for n in names), f"message does not name {names[0]}: {msg[:300]!r}"
    assert len(msg) <= MAX_MESSAGE, f"message of {len(msg)} characters: {msg[:300]!r}..."
    assert "Traceback" not in msg


def _read(fmt: Format, path: Path) -> DiscernError | None:
    """Run the reader: None when it returns, the DiscernError it raised (checked), else the test fails.
    ``fmt.then`` (what the command does next) runs on what was read: it too may only raise a one-line
    DiscernError."""
    try:
        result = fmt.read(path)
    except DiscernError as e:
        _check_message(str(e), (path.name, *fmt.names))
        return e
    except Exception as e:  # noqa: BLE001 - any other exception is the bug this test hunts
        pytest.fail(f"{fmt.name}: {type(e).__name__} escaped the reader: {str(e)[:300]}")
    if fmt.then is not None:
        try:
            fmt.then(result)
        except DiscernError as e:
            _check_message(str(e))
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{fmt.name}: {type(e).__name__} escaped after reading: {str(e)[:300]}")
    return None


@pytest.mark.parametrize("fmt", [f.name for f in FORMATS])
def test_valid_sample_reads(fmt, work):
    f = BY_NAME[fmt]
    assert _read(f, _write(f, work, None)) is None


@pytest.mark.parametrize("fmt, mutation", CASES)
def test_hostile_file_returns_or_raises_one_line_naming_the_file(fmt, mutation, work):
    f = BY_NAME[fmt]
    _read(f, _write(f, work, mutation))


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("fmt, mutation", CLI_CASES)
def test_command_fails_fast_with_one_error_line_and_writes_nothing(fmt, mutation, work, capsys, monkeypatch):
    from discern.cli import main

    f = BY_NAME[fmt]
    path = _write(f, work, mutation)
    assert _read(f, path) is not None, f"{fmt}/{mutation} is valid input: choose a failing mutation"
    (work / "model").mkdir()  # an empty model folder: never loaded, the input fails first
    monkeypatch.chdir(work)
    monkeypatch.setenv("DISCERN_RUNS", str(work / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    before = _tree(work)
    capsys.readouterr()
    rc = main(f.cli(path, work))
    out, err = capsys.readouterr()
    assert rc == 2, (rc, err[-500:])
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err[:500]
    assert "Traceback" not in out + err
    assert path.name in err
    assert _tree(work) == before, f"the command wrote {sorted(_tree(work) - before)}"


def test_every_command_line_format_has_cli_cases():
    assert all(f.cli_mutations for f in FORMATS if f.cli is not None)
    for f in FORMATS:
        assert set(f.cli_mutations) <= {n for n, _ in mutations(f)}, f.name
    assert {f.name for f in FORMATS} >= {"conllu", "gap", "nbest", "mlm-scoring", "scenario", "trials-csv",
                                         "trials-json", "decisions", "config", "task.json", "task-split",
                                         "medqa", "pubmedqa", "mmlu", "questions-txt", "questions-jsonl",
                                         "answers", "teacher"}


def test_mutations_are_deterministic():
    for f in FORMATS[:3]:
        a = [(n, m(f.text())) for n, m in mutations(f) if n not in ("huge-line", "cell-huge", "value-huge-0",
                                                                       "value-huge-1")]
        b = [(n, m(f.text())) for n, m in mutations(f) if n not in ("huge-line", "cell-huge", "value-huge-0",
                                                                       "value-huge-1")]
        assert a == b


def test_attention_analyze_without_a_usable_sentence_fails_before_loading_a_model(work, capsys, monkeypatch):
    """A valid treebank whose sentences are all outside 3..40 words: nothing to analyse, said before the
    (slow) encoder loads and before --out is made."""
    from discern.cli import main

    tb = work / "two.conllu"
    tb.write_text(TWO_WORDS, encoding="utf-8")
    assert len(_read_conllu(tb)) == 1
    monkeypatch.chdir(work)
    before = _tree(work)
    assert main(["attention", "analyze", "--model", str(work / "no-model"), "--treebank", str(tb),
                 "--out", str(work / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tb}: no sentence of 3 to 40 words to analyse\n"
    assert _tree(work) == before
