"""Plain-text helpers shared by the corpora users (task suite, pre-training data)."""

from __future__ import annotations

import re

_ABBREV = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "gen", "gov", "hon", "rev", "messrs", "no",
           "nos", "vs", "etc", "co", "inc", "ltd", "mt", "ft", "col", "capt", "lt", "sec", "art",
           "jan", "feb", "mar", "apr", "aug", "sept", "sep", "oct", "nov", "dec", "i.e", "e.g",
           "u.s", "u.s.a", "u.k", "a.m", "p.m", "viz", "cf", "op", "vol", "pp"}
_SENT_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Rule-based sentence splitter for edited prose (SOTU): a ., ! or ? followed by space and
    a capital or digit ends a sentence, except after common abbreviations and initials."""
    text = " ".join(text.split())
    out: list[str] = []
    start = 0
    for m in _SENT_END.finditer(text):
        head = text[start:m.start()]
        last = head.rsplit(" ", 1)[-1].lower().rstrip(".")
        if text[m.start()] == "." and (last in _ABBREV or (len(last) == 1 and last.isalpha())):
            continue
        sent = text[start:m.end()].strip()
        if sent:
            out.append(sent)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
