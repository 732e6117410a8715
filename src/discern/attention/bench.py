"""Benchmark: sentences/s and peak memory of the analysis (maps, word level, token-type
attention, entropies, head-as-parser accuracy) against a straightforward implementation that
runs the model on one sentence at a time and loops over layers, heads and tokens in Python.

Same model (MiniLM-L6), same UD English-EWT sentences, same process.  Peak memory is the
``tracemalloc`` peak of the analysis (numpy arrays are tracked; torch's own buffers are not).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np


def _naive(model, tok, sents) -> dict:
    """One sentence per forward pass; word-level maps, statistics and parser accuracy by loops."""
    import torch

    L = H = None
    cls_att = None
    hits = None
    n_deps = 0
    for s in sents:
        enc = tok([s.words], is_split_into_words=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            att = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                        output_attentions=True).attentions
        wid = enc.word_ids(0)
        T = len(wid)
        L, H = len(att), att[0].shape[1]
        if cls_att is None:
            cls_att = np.zeros((L, H))
            hits = np.zeros((L, H))
        units = []
        for t, w in enumerate(wid):
            if w is None or t == 0 or wid[t - 1] != w:
                units.append([t])
            else:
                units[-1].append(t)
        for layer in range(L):
            for head in range(H):
                a = att[layer][0, head].numpy()
                cls_att[layer, head] += sum(a[q, 0] for q in range(T)) / T
                W = len(units)
                wm = np.zeros((W, W))
                for i, ui in enumerate(units):
                    for j, uj in enumerate(units):
                        wm[i, j] = sum(sum(a[q, k] for k in uj) for q in ui) / len(ui)
                for i, (h, rel) in enumerate(zip(s.heads, s.relations)):
                    if h == 0 or rel == "punct":
                        continue
                    best, arg = -1.0, -1
                    for j in range(1, W - 1):
                        if j != i + 1 and wm[i + 1, j] > best:
                            best, arg = wm[i + 1, j], j
                    hits[layer, head] += arg == h
        n_deps += sum(1 for h, r in zip(s.heads, s.relations) if h != 0 and r != "punct")
    return {"cls": cls_att / len(sents), "acc": hits / max(1, n_deps)}


def _ours(model, tok, sents) -> dict:
    from .extract import extract, word_level
    from .surface import entropies, token_type_attention
    from .syntax import relation_accuracy

    ex = extract(model, tok, [s.words for s in sents])
    surf = token_type_attention(ex)
    entropies(ex)
    rel = relation_accuracy(sents, [word_level(e.maps, e.word_ids) for e in ex])
    return {"cls": surf["cls"], "relations": rel}


def bench(quick: bool = False) -> dict:
    from discern.data.models import model_path

    from .analyze import treebank_path
    from .extract import load_encoder
    from .syntax import read_conllu

    model, tok = load_encoder(model_path("minilm"))
    sents = [s for s in read_conllu(treebank_path("ud-ewt-dev")) if 5 <= len(s.words) <= 25][: 16 if quick else 64]
    res = {}
    for name, fn in (("ours", _ours), ("naive", _naive)):
        tracemalloc.start()
        t0 = time.perf_counter()
        out = fn(model, tok, sents)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        res[name] = (seconds, peak, out)
    agree = float(np.abs(res["ours"][2]["cls"] - res["naive"][2]["cls"]).max())
    return {
        "bench": "attention",
        "ratios": {"analysis_sentences_per_s_vs_naive": res["naive"][0] / res["ours"][0],
                   "peak_memory_ours_over_naive": res["ours"][1] / max(1, res["naive"][1])},
        "goals": {},
        "details": {"sentences": len(sents), "ours_sentences_per_s": len(sents) / res["ours"][0],
                    "naive_sentences_per_s": len(sents) / res["naive"][0],
                    "ours_peak_mb": res["ours"][1] / 2**20, "naive_peak_mb": res["naive"][1] / 2**20,
                    "max_abs_difference_cls_attention": agree},
    }
