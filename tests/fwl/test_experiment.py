import json
import math

from discern.core import Run
from discern.data.corpora import wikitext2_valid
from discern.fwl.experiment import run, tiny, wikitext_articles


def test_wikitext2_valid_has_60_articles():
    arts = wikitext_articles(wikitext2_valid())
    assert len(arts) == 60
    assert arts[0].startswith("= Homarus gammarus =")
    assert sum(a.count("\n") for a in arts) <= wikitext2_valid().count("\n") + 60


def test_tiny_reproduction_end_to_end_and_resume(tmp_path):
    cfg = tiny()
    r = Run.create("fwl", "tiny", cfg, root=tmp_path)
    res = run(cfg, r)
    rows = {(t["corpus"], t["method"]): t for t in res["table"]}
    assert set(rows) == {(c, m) for c in ("wikitext", "moby_dick") for m in ("base", "+FWL", "dynamic eval")}
    for t in rows.values():
        assert t["tokens"] == cfg.eval_tokens and math.isfinite(t["perplexity"])
    # dynamic evaluation = a scoring forward pass + the adaptation's forward and backward (2x): 4x the FLOPs
    assert abs(rows["wikitext", "dynamic eval"]["compute_vs_base"] - 4.0) < 1e-9
    assert rows["wikitext", "+FWL"]["compute_vs_base"] > 1.0
    assert [c["claim"] for c in res["claims"]][:2] == ["FWL lowers perplexity over the base model",
                                                      "at far less extra compute than dynamic evaluation"]
    assert res["dynamic_lr"]["lr"] in cfg.dynamic_lrs
    assert (r.path / "fwl" / "model" / "fwl.json").is_file() and (r.path / "base" / "model").is_dir()
    assert not (r.path / "fwl" / "checkpoints" / "last.pt").exists()  # the optimiser state is not kept
    # a rerun on the same folder loads the trained models instead of training again; with the WikiText
    # scores deleted, the reloaded models must give the same perplexities
    (r.path / "eval_wikitext.json").unlink()
    again = run(cfg, Run.open(r.path))
    for a, b in zip(again["table"], res["table"]):
        assert math.isclose(a["perplexity"], b["perplexity"], rel_tol=1e-6), (a, b)
    assert json.loads((r.path / "fwl" / "train.json").read_text())["steps"] == cfg.steps
