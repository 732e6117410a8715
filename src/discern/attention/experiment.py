"""Reproduction of "What Does BERT Look At?" on a real pretrained encoder (MiniLM-L6 by default;
``model=mpnet-base`` runs MPNet-base, 12 x 12 heads like BERT-base, or give any encoder folder).

Claims, each decided by a named test (paper sections 3-5; BERT-base numbers beside ours):

1. [SEP] in the middle layers (section 3.2): per sentence, the layer-mean attention to [SEP] of the
   middle layers (1-based L/2 ... 5L/6, the paper's 6-10 of 12), averaged over those layers; a BCa
   bootstrap interval over sentences against the paper's "over half" (0.5).  [CLS] is reported
   beside it with its own interval, and the share [SEP] would get under uniform attention.
2. Syntax heads (section 4.2): per relation, the head and the offset baseline are chosen on one half
   of the treebank and compared on the other half's dependencies by an exact one-sided McNemar
   test; Holm's correction over relations; held when at least ``min_relations`` relations pass.
3. Coreference (section 4.3): the GAP head chosen on one half against string matching on the other
   half, exact McNemar test on the paired examples.
4. Probes (section 5, Table 3): for each adjacent pair of attention + word vectors > attention only >
   random-init attention + word vectors, a paired bootstrap over the evaluation sentences of the UAS
   difference.  Word vectors: GloVe 6B 50d (``vectors="glove"``, the paper's GloVe) or the model's
   input embeddings (``vectors="model"``).

[CLS] and [SEP] are the paper's names; for a model whose tokenizer names them differently (MPNet:
<s> and </s>) the same positions are measured and the results name the model's tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from discern.core import Run, config_to_dict, derive_seed
from discern.core.results import Claim, Result
from discern.metrics.stats import verdict_from_interval

from .config import PRESETS, Config, quick, tiny  # noqa: F401  (the old home of the configs)

PAPER = {
    "sep_middle_layers": "over 50% of BERT-base's attention in layers 6-10 goes to [SEP] (section 3.2, Figure 2)",
    "syntax": {"dobj": (86.8, 40.0), "det": (94.3, 51.7), "pobj": (76.3, 34.6), "poss": (80.5, 47.7)},
    "coref": {"best_head": 65.1, "string_match": 52, "nearest": 27},
    "probe": {"attn+glove": 77, "attn_only": 61, "random_init_attn+glove": 30},
}

def _model_dir(name: str) -> Path:
    from .extract import resolve_model

    return resolve_model(name)


def _named(paper_name: str, ours: str) -> str:
    """``[SEP]``, or ``[SEP] (</s>)`` where the model's tokenizer calls it something else."""
    return paper_name if ours == paper_name else f"{paper_name} ({ours})"


def _ordinal(k: int) -> str:
    suffix = "th" if k % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def run(cfg: Config, run: Run) -> Result:
    import torch
    from transformers import AutoModel

    from discern.data import registry
    from discern.metrics.stats import bootstrap_ci, holm, mcnemar

    from .analyze import treebank_path
    from .coref import baseline_correct, head_accuracy, head_correct, pronoun_rows, read_gap
    from .extract import complete, extract, extract_cached, load_encoder, word_level
    from .probe import probe_vectors, train_probe, uas_counts, uas_difference
    from .surface import entropies, middle_layers, special_tokens, token_type_per_example, uniform_share
    from .syntax import dependency_outcomes, read_conllu, relation_accuracy

    alpha = 1 - cfg.level
    pct = int(round(cfg.level * 100))
    mdir = _model_dir(cfg.model)
    model, tok = load_encoder(mdir)
    cache = run.path / "cache"
    sents = [s for s in read_conllu(treebank_path(cfg.treebank)) if 3 <= len(s.words) <= 40][:cfg.max_sentences]
    ex = extract_cached(mdir, [s.words for s in sents], cache, model=model, tokenizer=tok)
    pairs = [(s, e) for s, e in zip(sents, ex) if complete(e, len(s.words))]
    sents, ex = [p[0] for p in pairs], [p[1] for p in pairs]
    names = special_tokens(ex)
    CLS, SEP = _named("[CLS]", names["cls"]), _named("[SEP]", names["sep"])
    maps = [word_level(e.maps, e.word_ids, cfg.mode) for e in ex]
    L, H = ex[0].maps.shape[:2]

    # 1. surface behaviour; [SEP] in the middle layers, per sentence, with an interval over sentences
    per_sent = token_type_per_example(ex)  # {selector: (N, L, H)}
    surf = {k: v.mean(0) for k, v in per_sent.items()}
    ent, cls_ent = entropies(ex)
    first, last = middle_layers(L)
    mid = slice(first, last + 1)
    sep_mid = per_sent["sep"][:, mid].mean((1, 2))  # (N,): layer means over heads, averaged over the span
    cls_mid = per_sent["cls"][:, mid].mean((1, 2))
    sep_ci = bootstrap_ci(sep_mid, n_resamples=cfg.n_boot, level=cfg.level, seed=derive_seed(cfg.seed, "sep"))
    cls_ci = bootstrap_ci(cls_mid, n_resamples=cfg.n_boot, level=cfg.level, seed=derive_seed(cfg.seed, "cls"))
    uniform = float(uniform_share(ex, "sep").mean())
    layers_txt = f"{first + 1}-{last + 1}" if last > first else f"{first + 1}"

    # 2. syntax: head and offset chosen on the first half, compared on the second (paired McNemar)
    half = len(sents) // 2
    fit_rel = relation_accuracy(sents[:half], maps[:half], min_count=cfg.min_count)
    test_rel = relation_accuracy(sents[half:], maps[half:], min_count=cfg.min_count)
    syntax = []
    for rel in sorted(set(fit_rel) & set(test_rel), key=lambda r: -test_rel[r]["count"]):
        direction, layer, head, _ = fit_rel[rel]["best"]
        off = fit_rel[rel]["offset"][0]
        hc, oc = dependency_outcomes(sents[half:], maps[half:], rel, direction, layer, head, off)
        m = mcnemar(hc, oc, alternative="greater")
        syntax.append({"relation": rel, "count": int(hc.size), "head": f"{layer + 1}-{head + 1}",
                       "direction": direction, "accuracy": 100 * float(hc.mean()),
                       "baseline": 100 * float(oc.mean()), "offset": off, "head_only": m["a_only"],
                       "offset_only": m["b_only"], "p_value": m["p_value"]})
    for r, adj in zip(syntax, holm([r["p_value"] for r in syntax])):
        r["p_holm"] = adj
    passed = sorted((r for r in syntax if r["p_holm"] < alpha), key=lambda r: r["p_holm"])
    k = cfg.min_relations
    p_syntax = sorted(r["p_holm"] for r in syntax)[k - 1] if len(syntax) >= k else None

    # 3. coreference on GAP: head chosen on one half, McNemar against string match on the other
    gap = read_gap(registry.path("gap-coreference") / "gap-development.tsv", max_words=90)[:cfg.gap_examples]
    gex = extract_cached(mdir, [g.words for g in gap], cache, max_length=256, model=model, tokenizer=tok)
    gp = [(g, e) for g, e in zip(gap, gex) if complete(e, len(g.words))]
    del gex
    gap = [g for g, _ in gp]
    gmaps = pronoun_rows(gap, (word_level(e.maps, e.word_ids, cfg.mode) for _, e in gp))  # (L, H, W+2) each
    del gp
    gh = len(gap) // 2
    acc_fit = head_accuracy(gap[:gh], gmaps[:gh])
    cl, ch = (int(v) for v in np.unravel_index(int(acc_fit.argmax()), acc_fit.shape))
    coref_hit = head_correct(gap[gh:], gmaps[gh:], cl, ch)
    base_hit = baseline_correct(gap[gh:])
    coref_acc = 100 * float(coref_hit.mean())
    coref_base = {k2: 100 * float(v.mean()) for k2, v in base_hit.items()}
    coref_up = mcnemar(coref_hit, base_hit["string_match"], alternative="greater")
    coref_down = mcnemar(coref_hit, base_hit["string_match"], alternative="less")

    # 4. probes: attention only, attention + word vectors (GloVe or the model's input embeddings),
    # random-init attention + the same vectors
    n_tr = min(cfg.probe_train, len(sents) // 2)
    tr, te = slice(0, n_tr), slice(n_tr, n_tr + cfg.probe_eval)
    emb, vec_info = probe_vectors(cfg.vectors, [s.words for s in sents[: n_tr + cfg.probe_eval]], model, tok,
                                  [e.word_ids for e in ex[: n_tr + cfg.probe_eval]])
    vec = vec_info["label"] + (" (GloVe not installed)" if vec_info.get("note") else "")
    r_attn, scored = uas_counts(train_probe(sents[tr], maps[tr], seed=cfg.seed), sents[te], maps[te])
    r_emb, _ = uas_counts(train_probe(sents[tr], maps[tr], emb[tr], seed=cfg.seed), sents[te], maps[te], emb[te])
    torch.manual_seed(derive_seed(cfg.seed, "random-init"))
    rnd = AutoModel.from_config(model.config, attn_implementation="eager").eval()
    rex = extract(rnd, tok, [s.words for s in sents[: n_tr + cfg.probe_eval]])
    del rnd
    rmaps = [word_level(e.maps, e.word_ids, cfg.mode) for e in rex]
    r_rnd, _ = uas_counts(train_probe(sents[tr], rmaps[tr], emb[tr], seed=cfg.seed), sents[te], rmaps[te], emb[te])
    total = max(1, int(scored.sum()))
    p_attn, p_emb, p_rnd = (100.0 * float(r.sum()) / total for r in (r_attn, r_emb, r_rnd))
    emb_vs_attn = uas_difference(r_emb, r_attn, scored, cfg.n_boot, cfg.level, derive_seed(cfg.seed, "probe-1"))
    attn_vs_rnd = uas_difference(r_attn, r_rnd, scored, cfg.n_boot, cfg.level, derive_seed(cfg.seed, "probe-2"))

    n_eval = len(sents[te])
    claims = [
        Claim(statement="a substantial amount of BERT's attention focuses on [SEP]: over half of the attention "
                        "in the middle layers (6-10) goes to it",
              paper=PAPER["sep_middle_layers"],
              ours=f"layer-mean attention to {SEP} in layers {layers_txt} of {L}: {sep_ci['estimate']:.3f} "
                   f"[{sep_ci['ci'][0]:.3f}, {sep_ci['ci'][1]:.3f}] over {len(ex)} sentences (uniform attention "
                   f"would give it {uniform:.3f}); to {CLS} beside it: {cls_ci['estimate']:.3f} "
                   f"[{cls_ci['ci'][0]:.3f}, {cls_ci['ci'][1]:.3f}]",
              test=f"{sep_ci['test']} of the per-sentence mean over layers {layers_txt} and their heads of the "
                   f"attention to {SEP}, against the paper's threshold {cfg.sep_threshold}: held if the interval "
                   "lies above it, not held if below",
              ci=tuple(sep_ci["ci"]), level=cfg.level,
              verdict=verdict_from_interval(*sep_ci["ci"], cfg.sep_threshold)),
        Claim(statement="certain attention heads correspond well to linguistic notions of syntax: heads attend to "
                        "the direct objects of verbs, determiners of nouns, objects of prepositions ... with "
                        "remarkably high accuracy",
              paper="best head vs best offset baseline (WSJ, Stanford Dependencies): " + ", ".join(
                  f"{r} {a} vs {b}" for r, (a, b) in PAPER["syntax"].items()),
              ours=f"{len(passed)} of {len(syntax)} relations beat their offset baseline (head and offset chosen "
                   f"on the other half of {len(sents)} sentences): " + (", ".join(
                       f"{r['relation']} {r['head']} {r['accuracy']:.1f} vs {r['baseline']:.1f} "
                       f"(p_Holm = {r['p_holm']:.2g})" for r in passed[:6]) or "none"),
              test=f"exact one-sided McNemar test per relation (head vs offset on the same held-out "
                   f"dependencies), Holm-adjusted over {len(syntax)} relations; held if at least {k} relations "
                   f"have p_Holm < {alpha:.2g} (p_value: the {_ordinal(k)} smallest p_Holm)",
              p_value=p_syntax, level=cfg.level,
              verdict="held" if p_syntax is not None and p_syntax < alpha else "inconclusive"),
        Claim(statement="certain attention heads correspond well to coreference: a head attends to coreferent "
                        "mentions with high accuracy, well above the string-matching baseline",
              paper=f"head 5-4 {PAPER['coref']['best_head']} vs head-word match {PAPER['coref']['string_match']}, "
                    f"nearest {PAPER['coref']['nearest']} (CoNLL-2012, Table 2)",
              ours=f"head {cl + 1}-{ch + 1} (chosen on {gh} GAP examples) {coref_acc:.1f} vs string match "
                   f"{coref_base['string_match']:.1f}, nearest {coref_base['nearest']:.1f} on {len(gap) - gh} "
                   f"other examples ({coref_up['a_only']} vs {coref_up['b_only']} discordant)",
              test=f"{coref_up['test']}; not held if the reverse one-sided test has p < {alpha:.2g} "
                   f"(p = {coref_down['p_value']:.2g})",
              p_value=coref_up["p_value"], level=cfg.level,
              verdict="held" if coref_up["p_value"] < alpha else
              "not held" if coref_down["p_value"] < alpha else "inconclusive"),
        Claim(statement="substantial syntactic information is captured in BERT's attention: the attention + GloVe "
                        "probe beats the attention-only probe",
              paper=f"UAS {PAPER['probe']['attn+glove']} vs {PAPER['probe']['attn_only']} (PTB dev, Table 3)",
              ours=f"UAS {p_emb:.1f} (attention + {vec}) vs {p_attn:.1f} (attention only): "
                   f"{emb_vs_attn['mean']:+.1f} [{emb_vs_attn['ci'][0]:+.1f}, {emb_vs_attn['ci'][1]:+.1f}] points; "
                   f"{n_tr} train / {n_eval} eval sentences"
                   + (f"; GloVe OOV rate {100 * vec_info['oov_rate']:.1f}%" if vec_info["used"] == "glove" else ""),
              test=emb_vs_attn["test"] + "; held if the interval lies above 0, not held if below",
              ci=tuple(emb_vs_attn["ci"]), p_value=emb_vs_attn["p_value"], level=cfg.level,
              verdict=verdict_from_interval(*emb_vs_attn["ci"], 0.0)),
        Claim(statement="substantial syntactic information is captured in BERT's attention: the probe on BERT's "
                        "attention beats one on a randomly initialised model's attention",
              paper=f"UAS {PAPER['probe']['attn_only']} (attention only) vs "
                    f"{PAPER['probe']['random_init_attn+glove']} (random-init attention + GloVe), Table 3",
              ours=f"UAS {p_attn:.1f} (attention only) vs {p_rnd:.1f} (random-init attention + {vec}): "
                   f"{attn_vs_rnd['mean']:+.1f} [{attn_vs_rnd['ci'][0]:+.1f}, "
                   f"{attn_vs_rnd['ci'][1]:+.1f}] points",
              test=attn_vs_rnd["test"] + "; held if the interval lies above 0, not held if below",
              ci=tuple(attn_vs_rnd["ci"]), p_value=attn_vs_rnd["p_value"], level=cfg.level,
              verdict=verdict_from_interval(*attn_vs_rnd["ci"], 0.0)),
    ]
    table = [{"relation": r["relation"], "count": r["count"], "head": r["head"], "direction": r["direction"],
              "accuracy": r["accuracy"], "baseline": r["baseline"], "offset": r["offset"], "p_holm": r["p_holm"]}
             for r in syntax]
    result = Result(
        paper="attention", title="What does BERT look at? (on " + Path(str(mdir)).name + ")",
        claims=claims, plots=_plots(run, surf, ent, L, H, names), table=table,
        details={"preset_config": config_to_dict(cfg), "layers": L, "heads": H, "sentences": len(sents),
                 "surface": {k2: v.tolist() for k2, v in surf.items()}, "entropy": ent.tolist(),
                 "cls_entropy": cls_ent.tolist(),
                 "special_tokens": names,
                 "middle_layers": {"layers": [first + 1, last + 1], "sep": sep_ci, "cls": cls_ci,
                                   "uniform_sep_share": uniform,
                                   "sep_by_layer": per_sent["sep"].mean((0, 2)).tolist(),
                                   "cls_by_layer": per_sent["cls"].mean((0, 2)).tolist()},
                 "syntax": syntax,
                 "coref": {"head": f"{cl + 1}-{ch + 1}", "accuracy": coref_acc, **coref_base,
                           "examples": len(gap) - gh, "mcnemar": coref_up},
                 "probe": {"attn+emb": p_emb, "attn_only": p_attn, "random_init": p_rnd, "eval_sentences": n_eval,
                           "vectors": vec_info,
                           "attn+emb - attn_only": emb_vs_attn, "attn_only - random_init": attn_vs_rnd},
                 "paper_numbers": PAPER})
    run.save_results(result.to_dict())
    return result


def _plots(run: Run, surf, ent, L: int, H: int, names: dict | None = None) -> list[str]:
    from .analyze import _figures

    run.plots.mkdir(parents=True, exist_ok=True)
    figs = _figures(surf, ent, np.zeros((L * H, 2)), L, H, names)
    out = []
    for name in ("token_types", "entropy"):
        p = run.plots / f"{name}.png"
        p.write_bytes(figs[name])
        out.append(str(p.relative_to(run.path)))
    return out
