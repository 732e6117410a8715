"""The re-ranking evaluation that the command line and the reproduction share (paper Table 3).

* :func:`held_out_sentences`: the test sentences, from novels held out of all training text and
  within pocketsphinx's dictionary;
* :func:`build_nbest`: their n-best lists from espeak-ng speech decoded by pocketsphinx (cached
  across runs by content hash), plus the LibriVox recordings of ``pocketsphinx-testdata``;
* :func:`score_all`: every distinct hypothesis scored once by a ``Scorer``, with throughput and
  the number of transformer passes it took.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from discern.core import progress, runs_root
from discern.data.pretraining import austen_documents

from .config import Config
from .nbest import Recognizer, Utterance, generate_nbest, librivox_utterances, select_sentences, write_nbest


def held_out_sentences(cfg: Config) -> list[tuple[str, str]]:
    """(id, text) of the test sentences: from the held-out novels, in pocketsphinx's dictionary."""
    from discern.data import corpora

    keep = set(cfg.data.held_out_novels)
    if keep:
        others = tuple(n.id for n in corpora.austen() if n.id not in keep)
        sentences = [s for d in austen_documents(exclude=others) for s in d]
        prefix = "-".join(sorted(keep))[:24]
    else:  # tiny preset: a few Brown sentences (not a held-out set; tests only)
        from discern.data.pretraining import corpus_documents
        sentences = [s for d in corpus_documents(["brown"])[-20:] for s in d]
        prefix = "brown"
    n = cfg.nbest
    chosen = select_sentences(sentences, n.utterances, seed=cfg.seed, min_words=n.min_words, max_words=n.max_words)
    return [(f"{prefix}-{i:04d}", s) for i, s in enumerate(chosen)]


def nbest_cache(cfg: Config, items: list[tuple[str, str]]) -> Path:
    """Where the espeak-ng lists of ``items`` are kept: keyed by sentences, voices, rates, noise
    levels, list size and seed, so a change of any of them decodes afresh."""
    n = cfg.nbest
    key = json.dumps({"items": items, "voices": n.voices, "rates": n.rates, "snrs": n.snrs, "n": n.n,
                      "seed": cfg.seed}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return runs_root() / "electric" / "nbest-cache" / f"espeak-{digest}.jsonl"


def build_nbest(cfg: Config, items: list[tuple[str, str]], out: Path) -> list[Utterance]:
    """Decode the held-out sentences (cached across runs by content hash) and the LibriVox set."""
    n = cfg.nbest
    cache = nbest_cache(cfg, items)
    cache.parent.mkdir(parents=True, exist_ok=True)
    snrs = [None if not s else float(s) for s in n.snrs]
    utts = generate_nbest(items, n.voices, n.rates, snrs, n=n.n, seed=cfg.seed, out_path=cache,
                          workers=n.workers)
    if n.librivox:
        rec = Recognizer()
        for uid, ref, audio in progress(librivox_utterances(), desc="n-best librivox"):
            hyps = rec.decode(audio, n=n.n)
            utts.append(Utterance(uid, ref, hyps, {"source": "librivox", "audio_seconds": len(audio) / 16000}))
    write_nbest(out, utts)
    return utts


def score_all(scorer, utterances: list[Utterance]) -> dict:
    """Score every distinct hypothesis once; returns per-utterance score lists and throughput."""
    texts = sorted({h.text for u in utterances for h in u.hypotheses})
    chunk = 256
    values: list[float] = []
    t0 = time.perf_counter()
    for s in progress(range(0, len(texts), chunk), desc=f"score {getattr(scorer, 'name', '')}"):
        values += scorer.score(texts[s:s + chunk])
    seconds = time.perf_counter() - t0
    table = dict(zip(texts, values))
    return {
        "scores": [[table[h.text] for h in u.hypotheses] for u in utterances],
        "sentences": len(texts), "seconds": seconds, "sentences_per_second": len(texts) / max(seconds, 1e-9),
        "passes": int(sum(scorer.passes(t) for t in texts)),
    }
