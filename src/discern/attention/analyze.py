"""``discern attention analyze``: the full analysis of one encoder (surface behaviour, head
clustering, syntax on one treebank, coreference on GAP, the attention probes), written as
``results.json``, figures and one self-contained HTML page (figures inlined)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from discern.core import DataError, atomic_write_json, atomic_write_text

from .clustering import head_distances, mds_2d
from .extract import extract_cached, load_encoder, word_level
from .surface import entropies, middle_layers, special_tokens, token_type_per_example, uniform_share
from .syntax import read_conllu, relation_accuracy


def treebank_path(name: str) -> Path:
    """``ud-ewt-dev`` (the data registry's UD English-EWT dev) or a .conllu file."""
    if name in ("ud-ewt-dev", "ud-english-ewt"):
        from discern.data import registry

        files = sorted(registry.path("ud-english-ewt").glob("*dev.conllu"))
        if not files:
            raise DataError("ud-english-ewt has no *dev.conllu file; run: discern data fetch ud-english-ewt")
        return files[0]
    p = Path(name)
    if not p.is_file():
        raise DataError(f"treebank {name!r}: not 'ud-ewt-dev' and no such file")
    return p


def analyze(model_dir: str | Path, treebank: str | None, out: str | Path, max_sentences: int = 500,
            max_length: int = 128, mode: str = "mean", cache_dir: str | Path | None = None,
            text: str | Path | None = None, min_count: int = 20, gap_examples: int = 300, probe_train: int = 600,
            probe_eval: int = 300, vectors: str = "glove", seed: int = 0, device=None, dtype=None) -> dict:
    """Analyse ``model_dir`` (a model folder, or a packaged name: ``minilm``, ``mpnet-base``) on a
    treebank (gold trees) or, with ``text``, on spaCy's silver parses of a UTF-8 text file.

    The full analysis: surface behaviour (sections 3.1-3.3), head clustering (section 6), heads as
    dependency parsers (section 4.2), coreference heads on ``gap_examples`` GAP passages (section 4.3;
    0 skips it) and the attention probes (section 5; ``probe_train`` 0 skips them): attention only,
    attention + word vectors (``vectors``: GloVe 6B 50d or the model's input embeddings) and
    random-init attention + the same vectors, trained on the first ``min(probe_train, N/2)`` analysed
    sentences and scored by UAS on the next ``probe_eval``.  The model runs on ``device`` in ``dtype``
    (None: the CPU, float32); the maps are read in float32."""
    import time

    from discern.core import DiscernError, derive_seed

    from .extract import complete, resolve_model
    from .probe import VECTORS

    t_start = time.perf_counter()
    out = Path(out)
    if mode not in ("mean", "first"):
        raise DiscernError(f"mode must be 'mean' or 'first', got {mode!r}")
    if vectors not in VECTORS:
        raise DiscernError(f"vectors must be one of {', '.join(VECTORS)}, got {vectors!r}")
    if min(max_sentences, gap_examples, probe_train, probe_eval) < 0:
        raise DiscernError("sentence and example counts must not be negative")
    # the input is read and checked first: a bad file fails before a model loads or anything is written
    if text is not None:
        from .syntax import silver_parse

        tp = Path(text)
        if not tp.is_file():
            raise DataError(f"{tp}: no such text file")
        try:
            paragraphs = [p for p in tp.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        except UnicodeDecodeError as e:
            raise DataError(f"{tp}: not UTF-8 text (byte {e.start})") from None
        sents = silver_parse(paragraphs)[:max_sentences]
        treebank = f"spaCy silver parses of {tp.name}"
    else:
        path = treebank_path(treebank)
        sents = [s for s in read_conllu(path) if 3 <= len(s.words) <= 40][:max_sentences]
        if not sents:
            raise DataError(f"{path}: no sentence of 3 to 40 words to analyse")
    model_dir = resolve_model(model_dir)
    model, tok = load_encoder(model_dir, device, dtype)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache_dir or out / "cache"
    examples = extract_cached(model_dir, [s.words for s in sents], cache,
                              max_length=max_length, model=model, tokenizer=tok)
    keep = [(s, e) for s, e in zip(sents, examples) if complete(e, len(s.words))]  # not truncated
    if not keep:
        raise DataError(f"no sentence fits {max_length} pieces with one special token before and after it")
    sents = [s for s, _ in keep]
    examples = [e for _, e in keep]
    names = special_tokens(examples)
    per_sent = token_type_per_example(examples)
    surf = {k: v.mean(0) for k, v in per_sent.items()}
    ent, cls_ent = entropies(examples)
    D = head_distances(examples[:200])
    xy = mds_2d(D)
    maps = [word_level(e.maps, e.word_ids, mode) for e in examples]
    rel = relation_accuracy(sents, maps, min_count=min_count)
    L, H = ent.shape
    first, last = middle_layers(L)
    table = sorted(({"relation": r, "count": v["count"], "direction": v["best"][0],
                     "head": f"{v['best'][1] + 1}-{v['best'][2] + 1}", "accuracy": 100 * v["best"][3],
                     "baseline": 100 * v["offset"][1], "offset": v["offset"][0]} for r, v in rel.items()),
                   key=lambda x: -x["count"])
    summary = {"special_tokens": names,
               "cls_by_layer": surf["cls"].mean(1).tolist(), "sep_by_layer": surf["sep"].mean(1).tolist(),
               "middle_layers": [first + 1, last + 1],
               "middle_cls": float(per_sent["cls"][:, first:last + 1].mean()),
               "middle_sep": float(per_sent["sep"][:, first:last + 1].mean()),
               "uniform_sep_share": float(uniform_share(examples, "sep").mean()),
               "max_head": {k: _top_head(surf[k]) for k in ("cls", "sep", "punct", "prev", "next")},
               "sep_sep": float(surf["sep_sep"].mean()), "last_layer_cls_entropy": float(cls_ent[-1].mean())}
    word_ids = [e.word_ids for e in examples]
    del examples, keep
    coref = _coref(model_dir, model, tok, cache, gap_examples, mode) if gap_examples else None
    probes = None
    if probe_train and probe_eval and len(sents) >= 2:
        probes = _probes(model, tok, sents, maps, word_ids, probe_train, probe_eval, vectors, mode,
                         derive_seed(seed, "random-init"), seed)
    result = {
        "model": str(model_dir), "treebank": str(treebank), "sentences": len(sents), "layers": L, "heads": H,
        "word_level_mode": mode, "special_tokens": names, "summary": summary,
        "surface": {k: v.tolist() for k, v in surf.items()}, "entropy": ent.tolist(), "cls_entropy": cls_ent.tolist(),
        "head_distances": D.tolist(), "mds": xy.tolist(), "syntax": table, "coref": coref, "probes": probes,
        "seconds": time.perf_counter() - t_start,
    }
    figs = _figures(surf, ent, xy, L, H, names)
    for name, png in figs.items():
        (out / f"{name}.png").write_bytes(png)
    atomic_write_json(out / "results.json", result)
    atomic_write_text(out / "index.html", _html(result, figs))
    return result


def _top_head(values: np.ndarray) -> dict:
    layer, head = np.unravel_index(int(values.argmax()), values.shape)
    return {"head": f"{layer + 1}-{head + 1}", "value": float(values.max())}


def _coref(model_dir, model, tok, cache, n: int, mode: str) -> dict:
    """Section 4.3 on GAP development passages: the best head over all of them (as the paper
    reports it) and, for an honest estimate, a head chosen on the first half and scored on the
    second, beside the nearest-candidate and string-match baselines."""
    from discern.data import registry

    from .coref import baseline_correct, head_accuracy, head_correct, pronoun_rows, read_gap
    from .extract import complete

    gap = read_gap(registry.path("gap-coreference") / "gap-development.tsv", max_words=90)[:n]
    gex = extract_cached(model_dir, [g.words for g in gap], cache, max_length=256, model=model, tokenizer=tok)
    gp = [(g, e) for g, e in zip(gap, gex) if complete(e, len(g.words))]
    del gex
    gap = [g for g, _ in gp]
    if len(gap) < 2:
        return {"examples": len(gap), "note": "too few GAP passages fit"}
    rows = pronoun_rows(gap, (word_level(e.maps, e.word_ids, mode) for _, e in gp))
    del gp
    acc = head_accuracy(gap, rows)
    bl, bh = (int(v) for v in np.unravel_index(int(acc.argmax()), acc.shape))
    base = baseline_correct(gap)
    half = len(gap) // 2
    fit = head_accuracy(gap[:half], rows[:half])
    cl, ch = (int(v) for v in np.unravel_index(int(fit.argmax()), fit.shape))
    held = head_correct(gap[half:], rows[half:], cl, ch)
    return {"examples": len(gap), "head": f"{bl + 1}-{bh + 1}", "accuracy": 100 * float(acc.max()),
            **{k: 100 * float(v.mean()) for k, v in base.items()},
            "held_out": {"head": f"{cl + 1}-{ch + 1}", "fit_examples": half, "examples": len(gap) - half,
                         "accuracy": 100 * float(held.mean()),
                         **{k: 100 * float(v[half:].mean()) for k, v in base.items()}}}


def _probes(model, tok, sents, maps, word_ids, n_train, n_eval, vectors, mode, init_seed: int, seed: int) -> dict:
    """Section 5 (Table 3): attention only, attention + word vectors, random-init attention + word vectors."""
    import torch
    from transformers import AutoModel

    from .extract import extract
    from .probe import probe_vectors, train_probe, uas

    n_tr = min(n_train, len(sents) // 2)
    n_ev = min(n_eval, len(sents) - n_tr)
    tr, te = slice(0, n_tr), slice(n_tr, n_tr + n_ev)
    used = sents[: n_tr + n_ev]
    vecs, info = probe_vectors(vectors, [s.words for s in used], model, tok,
                               word_ids[: n_tr + n_ev])
    attn = uas(train_probe(sents[tr], maps[tr], seed=seed), sents[te], maps[te])
    attn_vec = uas(train_probe(sents[tr], maps[tr], vecs[tr], seed=seed), sents[te], maps[te], vecs[te])
    torch.manual_seed(init_seed)
    rnd = AutoModel.from_config(model.config, attn_implementation="eager").eval()
    ref = next(model.parameters())
    rnd.to(device=ref.device, dtype=ref.dtype)  # where and as the analysed model runs
    rmaps = [word_level(e.maps, e.word_ids, mode) for e in extract(rnd, tok, [s.words for s in used])]
    del rnd
    rnd_vec = uas(train_probe(sents[tr], rmaps[tr], vecs[tr], seed=seed), sents[te], rmaps[te], vecs[te])
    return {"train": n_tr, "eval": n_ev, "attn_only": attn, "attn+vectors": attn_vec,
            "random_init_attn+vectors": rnd_vec, "vectors": info}


def _figures(surf: dict, ent: np.ndarray, xy: np.ndarray, L: int, H: int,
             names: dict | None = None) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def png(fig) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return buf.getvalue()

    figs = {}
    names = names or {"cls": "[CLS]", "sep": "[SEP]"}
    # paper Figure 2 style: attention to [CLS], [SEP] (the model's own names) and punctuation per layer
    fig, ax = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for a, key, title in zip(ax, ("cls", "sep", "punct"), (names["cls"], names["sep"], ". or ,")):
        for layer in range(L):
            a.scatter([layer + 1] * H, surf[key][layer], s=10, alpha=0.7)
        a.plot(range(1, L + 1), surf[key].mean(1), color="k", lw=1)
        a.set_title(f"attention to {title}")
        a.set_xlabel("layer")
    ax[0].set_ylabel("avg. attention")
    fig.tight_layout()
    figs["token_types"] = png(fig)
    # paper Figure 4 style: entropies per layer
    fig, a = plt.subplots(figsize=(5, 3))
    for layer in range(L):
        a.scatter([layer + 1] * H, ent[layer], s=10, alpha=0.7)
    a.set_xlabel("layer")
    a.set_ylabel("avg. attention entropy (nats)")
    fig.tight_layout()
    figs["entropy"] = png(fig)
    # paper Figure 6 style: MDS map of the heads, coloured by behaviour
    flat = {k: v.reshape(-1) for k, v in surf.items()}
    colour = np.array(["lightgrey"] * (L * H), dtype=object)
    colour[ent.reshape(-1) > 3.8] = "tab:orange"
    colour[(flat["next"] > 0.5) | (flat["prev"] > 0.5)] = "tab:green"
    colour[flat["cls"] > 0.6] = "tab:red"
    colour[flat["sep"] > 0.6] = "tab:blue"
    colour[flat["punct"] > 0.6] = "tab:purple"
    fig, a = plt.subplots(figsize=(5, 5))
    a.scatter(xy[:, 0], xy[:, 1], c=list(colour), s=40)
    for i, (x, y) in enumerate(xy):
        a.annotate(f"{i // H + 1}-{i % H + 1}", (x, y), fontsize=6)
    a.set_title(f"heads (MDS of JS distances); red {names['cls']}, blue {names['sep']}, purple punct, "
                "green next/prev, orange broad", fontsize=7)
    fig.tight_layout()
    figs["head_map"] = png(fig)
    return figs


def _html(result: dict, figs: dict[str, bytes]) -> str:
    rows = "".join(f"<tr><td>{html.escape(r['relation'])}</td><td>{r['count']}</td><td>{r['head']}</td>"
                   f"<td>{r['direction']}</td><td>{r['accuracy']:.1f}</td><td>{r['baseline']:.1f} ({r['offset']:+d})"
                   f"</td></tr>" for r in result["syntax"])
    H = result["heads"]
    names = result.get("special_tokens", {"cls": "[CLS]", "sep": "[SEP]"})
    surf_rows = ""
    for key, values in result["surface"].items():
        flat = np.array(values).reshape(-1)
        top = np.argsort(-flat)[:3]
        heads = ", ".join(f"{i // H + 1}-{i % H + 1} ({flat[i]:.2f})" for i in top)
        token = {"cls": names["cls"], "sep": names["sep"], "sep_sep": f"{names['sep']} to {names['sep']}",
                 "rest_sep": f"others to {names['sep']}"}.get(key, "")
        surf_rows += (f"<tr><td>{key}</td><td>{html.escape(token)}</td><td>{flat.mean():.3f}</td>"
                      f"<td>{heads}</td></tr>")
    ent = np.array(result["entropy"])
    surf_rows += (f"<tr><td>entropy (nats)</td><td></td><td>{ent.mean():.3f}</td><td>broadest: "
                  + ", ".join(f"{i // H + 1}-{i % H + 1} ({ent.reshape(-1)[i]:.2f})"
                              for i in np.argsort(-ent.reshape(-1))[:3]) + "</td></tr>")
    imgs = "".join(f"<h3>{name}</h3><img src='data:image/png;base64,{base64.b64encode(b).decode()}'>"
                   for name, b in figs.items())
    extra = ""
    c = result.get("coref")
    if c and "head" in c:
        ho = c["held_out"]
        extra += ("<h2>Coreference on GAP (section 4.3): the pronoun's attention to the candidates' head words</h2>"
                  "<table border=1 cellpadding=3><tr><th></th><th>examples</th><th>best head</th><th>accuracy</th>"
                  "<th>nearest</th><th>string match</th></tr>"
                  f"<tr><td>head chosen on all</td><td>{c['examples']}</td><td>{c['head']}</td>"
                  f"<td>{c['accuracy']:.1f}</td><td>{c['nearest']:.1f}</td><td>{c['string_match']:.1f}</td></tr>"
                  f"<tr><td>chosen on {ho['fit_examples']}, scored on the others</td><td>{ho['examples']}</td>"
                  f"<td>{ho['head']}</td><td>{ho['accuracy']:.1f}</td><td>{ho['nearest']:.1f}</td>"
                  f"<td>{ho['string_match']:.1f}</td></tr></table>")
    p = result.get("probes")
    if p:
        v = p["vectors"]
        label = html.escape(v["label"]) + (f", OOV {100 * v['oov_rate']:.1f}%" if v["used"] == "glove" else "")
        if v.get("note"):
            label += " (" + html.escape(v["note"]) + ")"
        extra += (f"<h2>Attention probes (section 5): UAS, {p['train']} train / {p['eval']} eval sentences</h2>"
                  "<table border=1 cellpadding=3><tr><th>probe</th><th>UAS</th></tr>"
                  f"<tr><td>attention only</td><td>{p['attn_only']:.1f}</td></tr>"
                  f"<tr><td>attention + {label}</td><td>{p['attn+vectors']:.1f}</td></tr>"
                  f"<tr><td>random-init attention + the same vectors</td><td>{p['random_init_attn+vectors']:.1f}"
                  "</td></tr></table>")
    return (f"<!doctype html><meta charset='utf-8'><title>attention analysis</title>"
            f"<h1>What does {html.escape(Path(result['model']).name)} look at?</h1>"
            f"<p>{result['sentences']} sentences of {html.escape(result['treebank'])}; {result['layers']} layers x "
            f"{result['heads']} heads; word-level maps: {result['word_level_mode']}; special tokens "
            f"{html.escape(names['cls'])} and {html.escape(names['sep'])}.</p>"
            f"<h2>Surface behaviour (mean over heads; the three highest heads, layer-head)</h2>"
            f"<table border=1 cellpadding=3><tr><th>attention to</th><th>token</th><th>mean</th><th>top heads</th></tr>"
            f"{surf_rows}</table>"
            f"<h2>Heads as dependency parsers (Table 1 layout; heads are layer-head, 1-based)</h2>"
            f"<table border=1 cellpadding=3><tr><th>relation</th><th>count</th><th>best head</th><th>direction</th>"
            f"<th>accuracy</th><th>best offset baseline</th></tr>{rows}</table>{extra}{imgs}"
            f"<pre>{html.escape(json.dumps({k: result[k] for k in ('model', 'treebank', 'sentences')}))}</pre>")
