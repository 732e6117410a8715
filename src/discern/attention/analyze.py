"""``discern attention analyze``: surface behaviour, head clustering and syntax on one treebank,
written as ``results.json``, figures and one self-contained HTML page (figures inlined)."""

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
from .surface import entropies, token_type_attention
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
            text: str | Path | None = None, min_count: int = 20) -> dict:
    """Analyse ``model_dir`` on a treebank (gold trees) or, with ``text``, on spaCy's silver
    parses of a UTF-8 text file."""
    out = Path(out)
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
    model, tok = load_encoder(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples = extract_cached(model_dir, [s.words for s in sents], cache_dir or out / "cache",
                              max_length=max_length, model=model, tokenizer=tok)
    keep = [(s, e) for s, e in zip(sents, examples) if sum(1 for w in e.word_ids if w is None) == 2
            and len({w for w in e.word_ids if w is not None}) == len(s.words)]  # not truncated
    sents = [s for s, _ in keep]
    examples = [e for _, e in keep]
    surf = token_type_attention(examples)
    ent, cls_ent = entropies(examples)
    D = head_distances(examples[:200])
    xy = mds_2d(D)
    maps = [word_level(e.maps, e.word_ids, mode) for e in examples]
    rel = relation_accuracy(sents, maps, min_count=min_count)
    L, H = ent.shape
    table = sorted(({"relation": r, "count": v["count"], "direction": v["best"][0],
                     "head": f"{v['best'][1] + 1}-{v['best'][2] + 1}", "accuracy": 100 * v["best"][3],
                     "baseline": 100 * v["offset"][1], "offset": v["offset"][0]} for r, v in rel.items()),
                   key=lambda x: -x["count"])
    result = {
        "model": str(model_dir), "treebank": str(treebank), "sentences": len(sents), "layers": L, "heads": H,
        "word_level_mode": mode,
        "surface": {k: v.tolist() for k, v in surf.items()}, "entropy": ent.tolist(), "cls_entropy": cls_ent.tolist(),
        "head_distances": D.tolist(), "mds": xy.tolist(), "syntax": table,
    }
    figs = _figures(surf, ent, xy, L, H)
    for name, png in figs.items():
        (out / f"{name}.png").write_bytes(png)
    atomic_write_json(out / "results.json", result)
    atomic_write_text(out / "index.html", _html(result, figs))
    return result


def _figures(surf: dict, ent: np.ndarray, xy: np.ndarray, L: int, H: int) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def png(fig) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        return buf.getvalue()

    figs = {}
    # paper Figure 2 style: attention to [CLS], [SEP] and punctuation per layer (dots = heads)
    fig, ax = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for a, key, title in zip(ax, ("cls", "sep", "punct"), ("[CLS]", "[SEP]", ". or ,")):
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
    a.set_title("heads (MDS of JS distances); red [CLS], blue [SEP], purple punct, green next/prev, orange broad",
                fontsize=7)
    fig.tight_layout()
    figs["head_map"] = png(fig)
    return figs


def _html(result: dict, figs: dict[str, bytes]) -> str:
    rows = "".join(f"<tr><td>{html.escape(r['relation'])}</td><td>{r['count']}</td><td>{r['head']}</td>"
                   f"<td>{r['direction']}</td><td>{r['accuracy']:.1f}</td><td>{r['baseline']:.1f} ({r['offset']:+d})"
                   f"</td></tr>" for r in result["syntax"])
    H = result["heads"]
    surf_rows = ""
    for key, values in result["surface"].items():
        flat = np.array(values).reshape(-1)
        top = np.argsort(-flat)[:3]
        heads = ", ".join(f"{i // H + 1}-{i % H + 1} ({flat[i]:.2f})" for i in top)
        surf_rows += f"<tr><td>{key}</td><td>{flat.mean():.3f}</td><td>{heads}</td></tr>"
    ent = np.array(result["entropy"])
    surf_rows += (f"<tr><td>entropy (nats)</td><td>{ent.mean():.3f}</td><td>broadest: "
                  + ", ".join(f"{i // H + 1}-{i % H + 1} ({ent.reshape(-1)[i]:.2f})"
                              for i in np.argsort(-ent.reshape(-1))[:3]) + "</td></tr>")
    imgs = "".join(f"<h3>{name}</h3><img src='data:image/png;base64,{base64.b64encode(b).decode()}'>"
                   for name, b in figs.items())
    return (f"<!doctype html><meta charset='utf-8'><title>attention analysis</title>"
            f"<h1>What does {html.escape(Path(result['model']).name)} look at?</h1>"
            f"<p>{result['sentences']} sentences of {html.escape(result['treebank'])}; {result['layers']} layers x "
            f"{result['heads']} heads; word-level maps: {result['word_level_mode']}.</p>"
            f"<h2>Surface behaviour (mean over heads; the three highest heads, layer-head)</h2>"
            f"<table border=1 cellpadding=3><tr><th>attention to</th><th>mean</th><th>top heads</th></tr>{surf_rows}"
            f"</table>"
            f"<h2>Heads as dependency parsers (Table 1 layout; heads are layer-head, 1-based)</h2>"
            f"<table border=1 cellpadding=3><tr><th>relation</th><th>count</th><th>best head</th><th>direction</th>"
            f"<th>accuracy</th><th>best offset baseline</th></tr>{rows}</table>{imgs}"
            f"<pre>{html.escape(json.dumps({k: result[k] for k in ('model', 'treebank', 'sentences')}))}</pre>")
