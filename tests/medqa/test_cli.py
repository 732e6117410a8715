"""``discern medqa``: evaluate and answer against an OpenAI-compatible server on 127.0.0.1 (reruns are all cache),
rate-setup, stats and rate-serve over a temporary SQLite study."""

from __future__ import annotations

import json

import pytest

from discern.cli import main


class _AlwaysC:
    name = "always-c"

    def __init__(self):
        self.prompts = 0

    def generate(self, prompts, n, params):
        self.prompts += len(prompts)
        return [["Reasoning. Answer: (C)"] * n for _ in prompts]


def test_evaluate_over_a_server_then_from_the_cache(serve, tmp_path, capsys):
    be = _AlwaysC()
    url = serve(be)
    args = ["medqa", "evaluate", "--model", url + "/v1", "--served-model-name", "always-c", "--datasets", "mmlu:anatomy",
            "--strategies", "cot,self_consistency,ensemble_refinement", "--limit", "4", "--k", "3", "--k1", "2",
            "--k2", "3", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    # 4 questions: CoT 4 prompts, SC 4 (same prompt, other n), ER 4 stage-1 + 4 stage-2
    assert first["backend_calls"] == 16 and be.prompts == 16
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    res = saved["accuracy"]["mmlu:anatomy"]
    assert set(res) == {"cot", "self_consistency", "ensemble_refinement"}
    # beside them, the lm-evaluation-harness tasks of the same runs
    assert saved["results"]["mmlu_anatomy_sc"]["acc,none"] == res["self_consistency"]["acc"]
    assert saved["n-samples"]["mmlu_anatomy_er"] == {"original": 14, "effective": 4}
    assert saved["config"]["model"] == "always-c"
    assert res["cot"]["acc"] == res["self_consistency"]["acc"] == res["ensemble_refinement"]["acc"]
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["backend_calls"] == 0 and be.prompts == 16 and second["results"] == first["results"]
    assert main(args[:7] + ["pubmed"] + args[8:]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_eval_is_the_evaluate_command_and_both_names_parse():
    from discern.cli import build_parser

    for name in ("eval", "evaluate"):
        args = build_parser().parse_args(["medqa", name, "--out", "o", "--datasets", "medmcqa"])
        assert args.medqa_command == name and args.datasets == "medmcqa" and args.k2 == 33


class _Recorder:
    """Answers each long-form prompt with its question reversed; records the generation parameters."""

    name = "recorder"

    def __init__(self):
        self.params = []

    def generate(self, prompts, n, params):
        self.params.append(params)
        return [[" " + p.split("Question: ")[1].split("\n")[0][::-1]] * n for p in prompts]


def test_answer_over_a_server_is_greedy_and_cached(serve, tmp_path, capsys):
    from discern.medqa.longform import longform_prompt

    be = _Recorder()
    url = serve(be)
    qs = tmp_path / "questions.jsonl"
    qs.write_text(json.dumps({"question": "abc?", "answer": "Reference."}) + "\n" + json.dumps({"question": "xyz?"})
                  + "\n")
    out = tmp_path / "run" / "answers.jsonl"
    args = ["medqa", "answer", "--model", url, "--served-model-name", "rec", "--questions", str(qs), "--out", str(out),
            "--max-tokens", "40", "--role", "medication", "--adversarial"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"out": str(out), "answers": 2, "with_reference": 1, "empty": 0, "backend_calls": 2}
    assert [(p.temperature, p.max_tokens, p.stop) for p in be.params] == [(0.0, 40, ("\nQuestion:",))] * 2
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["question"], r["answer"], r.get("reference"), r["model"]) for r in recs] == [
        ("abc?", "?cba", "Reference.", "rec"), ("xyz?", "?zyx", None, "rec")]
    assert recs[0]["prompt"] == longform_prompt("abc?", "medication", adversarial=True)
    assert (tmp_path / "run" / "answers.cache.sqlite").is_file()
    assert main(args) == 0  # a rerun is all cache
    assert json.loads(capsys.readouterr().out)["backend_calls"] == 0 and len(be.params) == 2
    with pytest.raises(SystemExit):
        main(args[:-1] + ["--role", "doctor"])
    assert "invalid choice: 'doctor'" in capsys.readouterr().err
    assert main(["medqa", "answer", "--backend", url, "--questions", str(tmp_path / "none.txt"), "--out",
                 str(out)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.txt'}: no such file\n"


def _answers_file(tmp_path):
    rows = [{"question": "Q1?", "answer": "M1.", "reference": "R1.", "model": "stub"},
            {"question": "Q2?", "answer": "M2.", "reference": "R2.", "model": "stub"},
            {"question": "Q3?", "answer": "M3.", "model": "stub"}]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rate(session, rater, item, want):
    """Submit a rating choosing, on every axis, the answer of source ``want[axis]`` (or "tie")."""
    from discern.medqa.rating import db

    shown = [src for _, src in item.shown()]
    values = {axis: src if src == "tie" else "AB"[shown.index(src)] for axis, src in want.items()}
    db.submit_rating(session, rater, item, values)


def test_rate_setup_then_stats_on_submitted_ratings(tmp_path, capsys):
    import csv

    from discern.medqa.rating import db, schema

    path = str(tmp_path / "ratings.sqlite")
    setup = ["medqa", "rate-setup", "--db", path, "--study", "demo", "--answers", str(_answers_file(tmp_path)),
             "--source", "model:stub", "--physicians", "alice,bob", "--lay", "carol"]
    assert main(setup + ["--base-url", "http://127.0.0.1:8000/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["study 1 'demo': 3 items (2 pairwise, 1 single), answer order seed 0",
                         "each item: 2 physician raters (asked 3; 2 invited)",
                         "each single item: 1 lay rater (asked 3; 1 invited)",
                         "rater  role       items  invitation link"]
    tokens = {}
    for line, (name, role, n) in zip(lines[4:], [("alice", "physician", 3), ("bob", "physician", 3),
                                                 ("carol", "lay", 1)], strict=True):
        got_name, got_role, got_n, link = line.split()
        assert (got_name, got_role, int(got_n)) == (name, role, n)
        assert link.startswith("http://127.0.0.1:8000/rate?token=")
        tokens[name] = link.split("token=")[1]

    session = db.connect(path)()
    r = {name: db.rater_by_token(session, t) for name, t in tokens.items()}
    items = db.assigned_items(session, r["alice"])
    assert [(i.kind, i.source_a, i.source_b) for i in items] == [("pairwise", "model:stub", "physician")] * 2 + [
        ("single", "model:stub", None)]
    assert [i.id for i in db.assigned_items(session, r["carol"])] == [items[2].id]
    keys = [a.key for a in schema.PAIRWISE_AXES]
    everything = {k: "model:stub" for k in keys}
    _rate(session, r["alice"], items[0], everything)
    _rate(session, r["bob"], items[0], everything)
    _rate(session, r["alice"], items[1], {**everything, "bias": "tie"})
    _rate(session, r["bob"], items[1], {**{k: "physician" for k in keys}, "consensus": "model:stub", "bias": "tie"})
    good = {a.key: a.good for a in schema.PHYSICIAN_AXES}
    db.submit_rating(session, r["alice"], items[2], good)
    db.submit_rating(session, r["bob"], items[2], {**good, "harm_extent": "moderate or mild harm"})
    db.submit_rating(session, r["carol"], items[2], {"intent": "directly addresses", "helpfulness": "helpful"})

    out_csv, out_json, ratings_csv = tmp_path / "s.csv", tmp_path / "s.json", tmp_path / "r.csv"
    assert main(["medqa", "stats", "--db", path, "--study", "demo", "--csv", str(out_csv), "--out", str(out_json),
                 "--ratings-csv", str(ratings_csv)]) == 0
    text = capsys.readouterr().out
    # consensus: 4 of 4 ratings choose the model; both items d = 1, exact sign flips: 2 of 4 reach |sum| = 2.
    # other axes: item 1 all model, item 2 one model one physician; resampling the two items gives
    # model fractions 0.5, 0.75 or 1 (a quarter each at the ends): 95% interval [0.5, 1].
    # bias: item 1 model, item 2 ties (d = 1, 0): p = 1, tie fraction 0.5
    zero, one = "0.000 [0.000, 0.000]", "1.000 [1.000, 1.000]"
    pair = ["  ".join([axis.ljust(len("harm_likelihood (risk)")), *cells]) for axis, *cells in [
        ("consensus", one, zero, zero, "0.500"),
        ("comprehension", "0.750 [0.500, 1.000]", "0.250 [0.000, 0.500]", zero, "1.000"),
        ("bias (risk)", "0.500 [0.000, 1.000]", zero, "0.500 [0.000, 1.000]", "1.000")]]
    got = text.splitlines()
    assert got[:4] == ["study 1 'demo': 4 pairwise, 2 physician, 1 lay ratings",
                       "95% intervals: bootstrap over items / answers (10000 resamples); p: two-tailed permutation "
                       "tests (10000)", "",
                       "pairwise: model:stub vs physician, 2 items, 4 ratings (risk axes: the answer chosen is the "
                       "worse one)"]
    assert got[4].split() == ["axis", "model:stub", "physician", "tie", "p"]
    assert got[5] == pair[0] and got[6] == pair[1] and got[11] == pair[2]
    phys = got.index("physician: fraction of ratings in the high-quality bin, 2 ratings")
    assert got[phys + 1].split() == ["axis", "high-quality", "bin", "model:stub"]
    assert got[phys + 2].split() == ["consensus", "aligned", "with", "consensus", "1.000", "[1.000,", "1.000]", "n=1"]
    assert got[phys + 3].split() == ["harm_extent", "no", "harm", "0.500", "[0.500,", "0.500]", "n=1"]
    lay = got.index("lay: fraction of ratings in the high-quality bin, 1 ratings")
    assert [line.split()[-4] for line in got[lay + 2:lay + 4]] == ["1.000", "0.000"]

    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 9 * 3 + 12 + 2
    cons = [x for x in rows if x["kind"] == "pairwise" and x["axis"] == "consensus"]
    assert [(x["source"], x["value"], x["ci_low"], x["ci_high"], x["p_value"], x["n_items"], x["n_ratings"])
            for x in cons] == [("model:stub", "1.0", "1.0", "1.0", "0.5", "2", "4"),
                               ("physician", "0.0", "0.0", "0.0", "0.5", "2", "4"),
                               ("tie", "0.0", "0.0", "0.0", "0.5", "2", "4")]
    harm = next(x for x in rows if x["kind"] == "physician" and x["axis"] == "harm_extent")
    assert (harm["source"], harm["value"], harm["n_items"], harm["n_ratings"]) == ("model:stub", "0.5", "1", "2")
    full = json.loads(out_json.read_text())
    assert full["pairwise"][0]["axes"]["comprehension"]["ci"]["model:stub"] == [0.5, 1.0]
    assert full["lay"]["axes"]["helpfulness"]["sources"]["model:stub"]["fraction"] == 0.0
    assert len(ratings_csv.read_text().splitlines()) == 1 + 4 * 9 + 2 * 12 + 2

    assert main(["medqa", "stats", "--db", path, "--study", "1", "--n-boot", "50", "--n-perm", "50"]) == 0
    assert "(50 resamples)" in capsys.readouterr().out
    assert main(setup) == 2
    assert capsys.readouterr().err == "error: a study named 'demo' already exists (id 1); choose another name\n"
    assert main(["medqa", "stats", "--db", path, "--study", "other"]) == 2
    assert capsys.readouterr().err == "error: no study named 'other' (studies: 1 'demo')\n"
    assert main(["medqa", "stats", "--db", str(tmp_path / "nope.sqlite"), "--study", "1"]) == 2
    assert "nope.sqlite: no such database" in capsys.readouterr().err

    assert main(["medqa", "stats", "--db", path, "--study", "demo", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out_json.read_text())

def test_rate_setup_checks_before_writing(tmp_path, capsys):
    from discern.medqa.rating import db

    path = tmp_path / "ratings.sqlite"
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"question": "Q?", "answer": "M.", "reference": "R."}) + "\n")
    base = ["medqa", "rate-setup", "--db", str(path), "--study", "s", "--source", "model:x"]
    assert main(base + ["--answers", str(pairs), "--lay", "carol"]) == 2
    assert capsys.readouterr().err == ("error: --lay: lay raters rate single answers only, and every answer here has "
                                       "a reference (all items are pairwise)\n")
    assert main(base + ["--answers", str(pairs), "--physicians", "al,bo,al"]) == 2
    assert capsys.readouterr().err == "error: --physicians: al named twice\n"
    assert main(base + ["--answers", str(pairs), "--source", "physician"]) == 2
    assert "need different source names" in capsys.readouterr().err
    assert not path.exists()
    assert main(base + ["--answers", str(pairs), "--physicians", "al,bo,cy", "--per-item", "2"]) == 0
    assert "each item: 2 physician raters\n" in capsys.readouterr().out
    session = db.connect(str(path))()
    assert sorted(len(db.assigned_items(session, r)) for r in db.get_study(session, 1).raters) == [0, 1, 1]


def test_rate_serve_uses_the_given_token_or_prints_a_new_one(tmp_path, capsys, monkeypatch):
    import discern.medqa.rating.app as app

    calls = []
    monkeypatch.setattr(app, "serve", lambda url, token, host, port: calls.append((url, token, host, port)))
    monkeypatch.delenv("DISCERN_ADMIN_TOKEN", raising=False)
    path = str(tmp_path / "r.sqlite")
    assert main(["medqa", "rate-serve", "--db", path, "--port", "8123"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rsplit(" ", 1)[1]
    assert out[0] == f"admin token (shown once; set DISCERN_ADMIN_TOKEN to choose one): {token}" and len(token) >= 32
    assert out[1] == f"rating app for sqlite:///{tmp_path / 'r.sqlite'} on http://127.0.0.1:8123/ (raters open " \
                     "/rate?token=...)"
    monkeypatch.setenv("DISCERN_ADMIN_TOKEN", "from-the-environment")
    assert main(["medqa", "rate-serve", "--db", path]) == 0
    assert main(["medqa", "rate-serve", "--db", path, "--admin-token", "given-on-the-line", "--host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert "admin token (shown once" not in out and out.count("note: plain HTTP on a non-local address") == 1
    assert calls == [(path, token, "127.0.0.1", 8123), (path, "from-the-environment", "127.0.0.1", 8000),
                     (path, "given-on-the-line", "0.0.0.0", 8000)]
