"""The text of the FWL reproduction: WikiText-2 cut by article, and Moby Dick as a second corpus.

The paper (section 4) trains and tests on WikiText-103.  Here the registry's WikiText-2 validation
release (60 articles) is cut by article: the first ``train_fraction`` for training, the next
``dev_fraction`` to choose dynamic evaluation's learning rate, the rest as the test text.  Moby
Dick (the registry's ``moby-dick``, chapters only) is a second test corpus from another domain.
"""

from __future__ import annotations

import re
from pathlib import Path

from .config import Config

_HEADING = re.compile(r"^ = [^=].* = $")
CORPORA = ("wikitext", "moby_dick")  # the test corpora, in report order


def wikitext_articles(text: str) -> list[str]:
    """WikiText articles: each starts at a top-level heading line `` = Title = ``."""
    articles: list[list[str]] = []
    for line in text.split("\n"):
        if _HEADING.match(line) or not articles:
            articles.append([])
        articles[-1].append(line)
    return ["\n".join(a).strip() + "\n" for a in articles if "".join(a).strip()]


def token_ids(tok, text: str):
    """1-D LongTensor of the tokenizer's ids for ``text``."""
    import torch

    return torch.tensor(tok(text)["input_ids"], dtype=torch.long)


def corpora(cfg: Config, tok) -> dict:
    """Token ids (1-D LongTensors) of the train, dev and test WikiText-2 text and of Moby Dick,
    plus ``articles``: the number of train, dev and test articles."""
    from discern.data.corpora import moby_dick, wikitext2_valid

    arts = wikitext_articles(wikitext2_valid())
    a = int(round(cfg.train_fraction * len(arts)))
    b = a + max(1, int(round(cfg.dev_fraction * len(arts))))
    moby = "\n\n".join(c.text for c in moby_dick() if c.id.startswith("chapter_"))
    return {"train": token_ids(tok, "".join(arts[:a])), "dev": token_ids(tok, "".join(arts[a:b])),
            "wikitext": token_ids(tok, "".join(arts[b:])), "moby_dick": token_ids(tok, moby),
            "articles": [a, b - a, len(arts) - b]}


def text_file_ids(path: str | Path, tok):
    """Token ids of a UTF-8 text file (one clear error if it is missing)."""
    p = Path(path)
    if not p.is_file():
        from discern.core import DiscernError

        raise DiscernError(f"--text {path}: not 'wikitext', 'moby-dick' or a file")
    return token_ids(tok, p.read_text(encoding="utf-8"))


def head(ids, n: int):
    """The first ``n`` scored tokens of 1-D ``ids`` as (1, n + 1) (all of them for ``n <= 0``)."""
    return (ids if n <= 0 else ids[: n + 1]).unsqueeze(0)
