"""End to end on the tiny preset: n-best lists from real speech, Electric + MLM pre-training, re-ranking."""

import json

import numpy as np
import pytest
import scipy.stats
import torch

from discern.cli import main


@pytest.fixture(scope="module")
def tiny_run(tiny_reproduction):
    return tiny_reproduction("electric")


def test_reproduction_writes_the_wer_table_and_claim(tiny_run):
    res = json.loads((tiny_run / "results.json").read_text())
    rows = res["rerank"]["rows"]
    assert set(rows) == {"none", "oracle", "electric", "two-tower", "mlm-pll"}
    for name in ("none", "electric", "two-tower", "mlm-pll"):
        assert rows[name]["wer"] >= rows["oracle"]["wer"]
    grid = [round(0.05 * i, 2) for i in range(1, 21)]
    for name in ("electric", "two-tower", "mlm-pll"):
        assert rows[name]["lambda"] in grid
    assert rows["electric"]["passes_per_sentence"] == 1.0
    assert rows["mlm-pll"]["passes_per_sentence"] > 3  # one pass per token
    assert res["lists"]["librivox"] == 5 and res["lists"]["espeak"] == 4
    from discern.core import Result

    result = Result.from_dict(res)
    assert result.paper == "electric" and result.plots == ["plots/rerank_wer.png", "plots/nce_seeds.png"]
    assert {r["re-ranker"]: (r["test_wer"], [r["ci_low"], r["ci_high"]]) for r in result.table} == \
        {n: (row["wer"], row["ci95"]) for n, row in rows.items()}
    nce_claim, rerank_claim = res["claims"]
    assert rerank_claim["ci"] == rows["electric"]["ci95"]
    assert rerank_claim["p_value"] == pytest.approx(1.0 - rows["electric"]["p_better_than_none"])
    assert nce_claim["statement"].startswith("Electric's NCE training learns the data beyond its noise")
    plateau = res["pretraining"]["electric"]["plateau"]["nce"]
    assert plateau["nats_below_ci"][0] <= plateau["nats_below"] <= plateau["nats_below_ci"][1]
    assert plateau["nats_below"] == pytest.approx(plateau["reference"] - plateau["loss"])
    # claim 1 over the tiny preset's two pre-training seeds: a Student-t interval over their gaps
    seeds = res["pretraining"]["nce_over_seeds"]
    second = json.loads((tiny_run / "pretrain-electric-seed1.json").read_text())["plateau"]["nce"]
    gaps = [plateau["nats_below"], second["nats_below"]]
    assert seeds["seeds"] == [0, 1] and [r["nats_below"] for r in seeds["per_seed"]] == gaps
    half = scipy.stats.t.ppf(0.975, 1) * np.std(gaps, ddof=1) / np.sqrt(2)
    lo, hi = nce_claim["ci"]
    assert lo == pytest.approx(np.mean(gaps) - half, rel=1e-12) and hi == pytest.approx(np.mean(gaps) + half, rel=1e-12)
    assert nce_claim["verdict"] == ("held" if lo > 0 else "not held" if hi < 0 else "inconclusive")
    assert "over 2 pre-training seeds" in nce_claim["test"] and "mean over 2 seeds" in nce_claim["ours"]
    assert (tiny_run / "plots" / "nce_seeds.png").stat().st_size > 0
    # the second seed: its own weights, the first seed's tokenizer, another held-out split
    from safetensors.torch import load_file

    a = load_file(tiny_run / "pretrain-electric" / "model" / "energy" / "model.safetensors")
    b = load_file(tiny_run / "pretrain-electric-seed1" / "model" / "energy" / "model.safetensors")
    assert a.keys() == b.keys() and not all(torch.equal(a[k], b[k]) for k in a)
    vocab = [json.loads((tiny_run / d / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
             for d in ("pretrain-electric", "pretrain-electric-seed1")]
    assert vocab[0] == vocab[1] and len(vocab[0]) > 100
    assert json.loads((tiny_run / "pretrain-electric-seed1" / "config.json").read_text())["seed"] == 1
    # the no-context plateau: its gap is the reference minus the model's loss on the same positions
    token = res["pretraining"]["electric"]["plateau"]["token_only_energy"]
    assert 0 < token["positions_scored"] <= 1
    assert token["nats_below"] == pytest.approx(token["reference"] - token["loss"])
    assert "token-only energy" in nce_claim["ours"]
    assert rerank_claim["verdict"] in ("held", "not held", "inconclusive")
    if nce_claim["verdict"] != "held":  # a failed pre-training says nothing about re-ranking
        assert rerank_claim["verdict"] == "inconclusive" and "pre-training failed" in rerank_claim["ours"]
        assert f"(claim 1 {nce_claim['verdict']})" in rerank_claim["ours"]
    assert (tiny_run / "plots" / "rerank_wer.png").stat().st_size > 0
    assert (tiny_run / "pretrain-electric" / "model" / "energy" / "config.json").is_file()
    assert (tiny_run / "pretrain-mlm" / "model" / "mlm" / "config.json").is_file()


def test_test_sentences_are_never_trained_on(tiny_run):
    """The quick preset's test sentences come from a novel left out of the training documents, and
    the experiment drops any remaining exact match (the tiny preset's Brown sentences need it)."""
    from discern.electric.config import quick, tiny
    from discern.electric.evaluate import held_out_sentences
    from discern.electric.pretrain import drop_sentences, training_documents

    def key(s):
        return " ".join(s.lower().split())

    cfg = quick()
    cfg.nbest.utterances = 50
    test = {key(t) for _, t in held_out_sentences(cfg)}
    train = {key(s) for d in training_documents(cfg) for s in d}
    assert len(test) == 50 and not test & train
    small = tiny()
    items = {t for _, t in held_out_sentences(small)}
    docs = training_documents(small) + [sorted(items)]  # force an overlap
    kept = {key(s) for d in drop_sentences(docs, items) for s in d}
    assert not {key(t) for t in items} & kept


def test_resume_skips_finished_stages(tiny_run, monkeypatch):
    import discern.electric.experiment as exp

    before = json.loads((tiny_run / "results.json").read_text())["rerank"]["rows"]

    def no_training(*a, **k):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(exp, "pretrain", no_training)
    monkeypatch.setattr(exp, "build_nbest", no_training)
    monkeypatch.setenv("DISCERN_RUNS", str(tiny_run.parent.parent))
    assert main(["reproduce", "--only", "electric", "--preset", "tiny", "--resume", str(tiny_run)]) == 0
    after = json.loads((tiny_run / "results.json").read_text())["rerank"]["rows"]
    assert after == before


def test_cli_score_and_rerank(tiny_run, tmp_path, capsys):
    model = tiny_run / "pretrain-electric" / "model"
    assert main(["electric", "score", "--scorer", f"electric:{model}", "he said so", "the cat sat"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["sentence"] for x in lines] == ["he said so", "the cat sat"] and all(x["passes"] == 1 for x in lines)
    out = tmp_path / "report.json"
    assert main(["electric", "rerank", "--nbest", str(tiny_run / "nbest.jsonl"), "--scorer", f"electric:{model}",
                 "--scorer", f"two-tower:{model}", "--scorer", f"mlm:{tiny_run / 'pretrain-mlm' / 'model' / 'mlm'}",
                 "--bootstrap", "50", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "electric" in table and "oracle" in table
    rep = json.loads(out.read_text())
    assert set(rep["rows"]) == {"none", "oracle", "electric", "two-tower", "mlm"}


@pytest.mark.parametrize("args, message", [
    (["score", "--batch-size", "0", "he said so"], "--batch-size must be at least 1, got 0"),
    (["score", "--batch-size", "-3", "he said so"], "--batch-size must be at least 1, got -3"),
    (["rerank", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["rerank", "--lambdas", "0.1,2"], "--lambdas: each weight must be in [0, 1], got '2'"),
    (["rerank", "--lambdas", "0.1,nan"], "--lambdas: each weight must be in [0, 1], got 'nan'"),
    (["rerank", "--lambdas", "=1+1,<b>"], "--lambdas: '=1+1' is not a number (a comma-separated grid in [0, 1])"),
    (["rerank", "--dev-fraction", "1.5"], "--dev-fraction must be in (0, 1), got 1.5"),
    (["rerank", "--dev-fraction", "nan"], "--dev-fraction must be in (0, 1), got nan"),
    (["rerank", "--bootstrap", "0"], "--bootstrap must be at least 1, got 0"),
])
def test_cli_scoring_numbers_out_of_range_are_one_line_errors_before_any_model_loads(args, message, tmp_path,
                                                                                      capsys):
    cmd, *rest = args
    extra = ["--nbest", str(tmp_path / "absent.jsonl")] if cmd == "rerank" else []
    # the scorer's folder does not exist either: the number is refused before anything is read
    assert main(["electric", cmd, "--scorer", f"electric:{tmp_path / 'absent'}", *extra, *rest]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]


def test_cli_malformed_nbest_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    good = {"id": "u1", "reference": "a b", "hypotheses": [{"text": "a b", "score": -1.0}], "meta": {}}
    bad.write_text(json.dumps(good) + "\n" + "{not json\n")
    assert main(["electric", "rerank", "--nbest", str(bad), "--scorer", "causal:smollm2"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and err.startswith("error:")


def test_cli_nbest_writes_lists_with_wer(tmp_path, monkeypatch, capsys):
    from discern.electric.nbest import read_nbest

    monkeypatch.setenv("DISCERN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DISCERN_QUIET", "1")
    out = tmp_path / "lists.jsonl"
    assert main(["electric", "nbest", "--preset", "tiny", "--set", "nbest.utterances=2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    utts = read_nbest(out)
    assert summary["utterances"] == len(utts) == 2 + 5  # espeak-ng sentences + the LibriVox recordings
    assert summary["oracle_wer"] <= summary["wer"]
    assert all(len({h.text for h in u.hypotheses}) == len(u.hypotheses) for u in utts)
    assert {u.meta["source"] for u in utts} == {"espeak-ng", "librivox"}


@pytest.mark.parametrize("mlm_lr", [0.0, 7e-4])
def test_the_masked_lm_baseline_has_electrics_shape_data_and_steps_at_its_own_lr(mlm_lr, tmp_path, monkeypatch):
    """rerank.mlm_lr sets only the masked LM's peak LR (0 = Electric's); everything else follows Electric."""
    import discern.electra.pretrain as electra_pretrain
    from discern.electric.config import quick
    from discern.reproduce.electric import train_mlm

    seen = {}

    def fake_pretrain(cfg, run, resume=False, documents=None):
        seen.update(cfg=cfg, resume=resume, documents=documents)
        return {}

    monkeypatch.setattr(electra_pretrain, "pretrain", fake_pretrain)
    cfg = quick()
    cfg.seed = 5
    cfg.rerank.mlm_lr = mlm_lr
    docs = [["one sentence."]]
    train_mlm(cfg, docs, tmp_path / "tok", tmp_path / "mlm")
    ec = seen["cfg"]
    assert ec.model.objective == "mlm" and seen["documents"] is docs and seen["resume"] is False
    assert ec.train.lr == (mlm_lr or cfg.train.lr) and cfg.train.lr == 1e-3
    assert (ec.train.steps, ec.train.batch_size, ec.train.warmup_steps) == (8000, 32, 100)
    assert (ec.model.layers, ec.model.hidden, ec.model.heads, ec.model.ffn) == (2, 128, 2, 512)
    assert (ec.data.vocab_size, ec.data.seq_len, ec.data.tokenizer, ec.seed) == (2048, cfg.data.seq_len,
                                                                                 str(tmp_path / "tok"), 5)
    assert (tmp_path / "mlm" / "config.json").is_file()


def _stage(gap, lo, hi, prior=0.4166):
    return {"plateau": {"nce": {"nats_below": gap, "nats_below_ci": [lo, hi], "loss": prior - gap,
                                "reference": prior}}}


def test_claim_1_over_seeds_is_a_student_t_interval_of_the_seed_gaps():
    from discern.electric.experiment import nce_over_seeds

    gaps = [0.0080, 0.0137, 0.0047]
    out = nce_over_seeds({s: _stage(g, g - 0.003, g + 0.003) for s, g in zip((5, 6, 7), gaps)})
    half = scipy.stats.t.ppf(0.975, 2) * np.std(gaps, ddof=1) / np.sqrt(3)
    assert out["seeds"] == [5, 6, 7] and out["mean"] == pytest.approx(np.mean(gaps), abs=1e-15)
    assert out["ci"] == pytest.approx([np.mean(gaps) - half, np.mean(gaps) + half], abs=1e-15)
    # three runs each held by its own batches are not enough here: t(2) = 4.30 makes it inconclusive
    assert out["ci"][0] < 0 < out["ci"][1]
    assert [r["ci"] for r in out["per_seed"]] == [pytest.approx([g - 0.003, g + 0.003]) for g in gaps]
    assert "+0.0088 nats below" in out["ours"] and "over 3 pre-training seeds" in out["test"]
    # one seed: the run's own interval over its held-out batches, as before
    one = nce_over_seeds({0: _stage(0.0047, 0.0012, 0.0083)})
    assert one["ci"] == [0.0012, 0.0083] and one["mean"] == 0.0047 and "over held-out batches" in one["test"]
    # a seed without a finished evaluation leaves the claim undecided, never held
    missing = {0: _stage(0.01, 0.005, 0.015), 1: {"plateau": {"nce": {"nats_below": None}}}}
    assert all(np.isnan(nce_over_seeds(missing)["ci"]))
