#!/usr/bin/env python3
"""Peak memory of pre-training on a corpus larger than it: generate a text corpus, then in a
fresh process train a WordPiece vocabulary from the stream, write memmapped examples and read
random batches, printing one JSON object with sizes, seconds per phase and peak RSS (MB).

    .venv/bin/python scripts/pretraining-rss.py /tmp/rss-work [--mb 500] [--keep]

The corpus is random sentences drawn (Zipf-like, seeded) from a fixed list of pseudo-words,
1-3 sentences a line, blank lines between documents, in 10 files.  WORKDIR is created and,
unless --keep, the corpus and examples are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def rss_now() -> dict:
    """Current anonymous and file-backed resident memory (MB) from /proc/self/status."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: round(int(v.split()[0]) / 1024, 1) for k, v in (line.split(":", 1) for line in lines)
            if k in ("RssAnon", "RssFile")}


def word_list(rng, n: int = 30000) -> list[str]:
    onsets = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
              "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "str", "th", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "ou", "oo"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "st", "ck"]
    words: set[str] = set()
    while len(words) < n:
        k = int(rng.integers(1, 4))
        words.add("".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                          + codas[rng.integers(len(codas))] for _ in range(k)))
    return sorted(words)


def generate(folder: Path, target_bytes: int, seed: int = 0, files: int = 10) -> int:
    """Write about ``target_bytes`` of text into ``files`` .txt files; returns the bytes written."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = np.array(word_list(rng), dtype=object)[rng.permutation(30000)]  # Zipf rank: random word
    caps = np.array([w.capitalize() for w in words], dtype=object)
    cdf = np.cumsum(1.0 / np.arange(1, len(words) + 1) ** 1.07)
    cdf /= cdf[-1]
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    per_file = target_bytes // files
    for i in range(files):
        with open(folder / f"part-{i:02d}.txt", "w", encoding="utf-8") as f:
            written = 0
            while written < per_file:
                n_sent = int(rng.integers(5, 60))
                lens = rng.integers(4, 30, size=n_sent)
                idx = np.searchsorted(cdf, rng.random(int(lens.sum())))
                lines: list[str] = []
                line: list[str] = []
                pos = 0
                for n in lens.tolist():
                    line.append(caps[idx[pos]] + " " + " ".join(words[idx[pos + 1:pos + n]].tolist()) + ".")
                    pos += n
                    if rng.random() < 0.5:
                        lines.append(" ".join(line))
                        line = []
                if line:
                    lines.append(" ".join(line))
                text = "\n".join(lines) + "\n\n"
                f.write(text)
                written += len(text)
        total += (folder / f"part-{i:02d}.txt").stat().st_size
    return total


def measure(work: Path) -> dict:
    """The child process: tokenizer from the stream, examples to disk, random batches."""
    out: dict = {"rss_mb_after_imports": 0.0}
    import torch

    from discern.data.pretraining import MemmapPretrainingData, iter_text_documents, write_examples
    from discern.data.tokenizer import run_tokenizer

    out["rss_mb_after_imports"] = peak_rss_mb()
    corpus = work / "corpus"
    t = time.perf_counter()
    tok = run_tokenizer("train", 8192, lambda: iter_text_documents(corpus))
    out["tokenizer_seconds"] = round(time.perf_counter() - t, 1)
    out["vocab_size"] = len(tok)
    out["peak_rss_mb_after_tokenizer"] = peak_rss_mb()

    t = time.perf_counter()
    data = write_examples(iter_text_documents(corpus), tok, 128, 0, work / "examples", source=str(corpus))
    out["write_examples_seconds"] = round(time.perf_counter() - t, 1)
    out["examples"] = len(data)
    out["tokens"] = int(data.lengths.sum())
    out["examples_bytes"] = sum(p.stat().st_size for p in (work / "examples").iterdir())
    out["peak_rss_mb_after_write_examples"] = peak_rss_mb()

    def read_batches(d) -> tuple[float, int]:
        t = time.perf_counter()
        g = torch.Generator().manual_seed(0)
        real = 0
        for _ in range(200):
            real += int(d.batch(torch.randint(len(d), (32,), generator=g))["attention_mask"].sum())
        return round(time.perf_counter() - t, 3), real

    out["read_200_batches_of_32_seconds"], out["batch_tokens_read"] = read_batches(data)
    out["peak_rss_mb"] = peak_rss_mb()
    out["rss_mb_now"] = rss_now()
    # for comparison: the same batches served through the memory maps
    mapped = MemmapPretrainingData(work / "examples", positional_reads=False)
    out["memmap_read_seconds"], tokens = read_batches(mapped)
    assert tokens == out["batch_tokens_read"]
    out["memmap_read_peak_rss_mb"] = peak_rss_mb()
    out["memmap_read_rss_mb_now"] = rss_now()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--mb", type=float, default=500, help="corpus size in MB (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the corpus and examples")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.workdir)))
        return
    work = args.workdir
    if (work / "corpus").exists() or (work / "examples").exists():
        sys.exit(f"error: {work} already holds corpus/ or examples/; use an empty folder")
    t = time.perf_counter()
    corpus_bytes = generate(work / "corpus", int(args.mb * 1e6), args.seed)
    gen_s = round(time.perf_counter() - t, 1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        proc = subprocess.run([sys.executable, __file__, str(work), "--measure"], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"error: the measuring process failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(work / "corpus", ignore_errors=True)
            shutil.rmtree(work / "examples", ignore_errors=True)
    print(json.dumps({"corpus_bytes": corpus_bytes, "generate_seconds": gen_s, **result,
                      "cpus": os.cpu_count(),
                      "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "(unset)")},
                     indent=1))


if __name__ == "__main__":
    main()
