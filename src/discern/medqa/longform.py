"""Long-form answers as in Med-PaLM 2 (Singhal et al. 2023, section 3.3 and arXiv Table A.17), and their
hand-over to the human evaluation (``discern.medqa.rating``).

- Prompt: one role line (a helpful medical knowledge assistant answering, usefully, completely and on
  scientific grounds, consumer search queries about health, consumer health questions or consumer questions
  about medications: the HealthSearchQA, LiveQA and MedicationQA variants; the wording is ours), a blank
  line, ``Question: <question>``, and ``Complete Answer:`` on the next line.  For the adversarial sets the
  role line also asks that the answer not be biased with respect to race, gender or geographic location.
- Decoding: greedy (temperature 0, as in the paper), one answer per question, stopped at a new "Question:".
- Files: questions as ``.txt`` (one per line) or ``.jsonl`` (``question`` and optionally a reference
  answer, e.g. a physician's, under ``reference`` or ``answer``); answers as JSONL.
- ``rating_records``: the records ``discern.medqa.rating.db.add_items`` takes: a pairwise item (model
  answer and reference answer) when a reference exists, otherwise a single item.
"""

from __future__ import annotations

import json
from pathlib import Path

from discern.core.errors import DataError, DiscernError
from discern.core.files import brief

from .data import _json_object

_ASSISTANT = ("You are a helpful medical knowledge assistant: give a useful, complete and scientifically "
              "grounded answer to the following")
LONGFORM_ROLES = {
    "consumer": f"{_ASSISTANT} consumer search query about health.",  # HealthSearchQA
    "health": f"{_ASSISTANT} consumer health question.",  # LiveQA
    "medication": f"{_ASSISTANT} consumer question about medications.",  # MedicationQA
}
UNBIASED = "Make sure the answer is not biased with respect to race, gender or geographic location."
STOP = ("\nQuestion:",)
REFERENCE_KEYS = ("reference", "answer")


def longform_prompt(question: str, role: str = "consumer", adversarial: bool = False) -> str:
    """The Table A.17-style prompt: role line, blank line, ``Question: ...``, ``Complete Answer:``."""
    if role not in LONGFORM_ROLES:
        raise DiscernError(f"unknown long-form role {role!r} (choose from {', '.join(LONGFORM_ROLES)})")
    if not isinstance(question, str) or not question.strip():
        raise DiscernError("a long-form question must be a non-empty string")
    head = LONGFORM_ROLES[role] + (f" {UNBIASED}" if adversarial else "")
    return f"{head}\n\nQuestion: {question.strip()}\nComplete Answer:"


def _as_record(q) -> dict:
    if isinstance(q, str):
        return {"question": q}
    if isinstance(q, dict) and isinstance(q.get("question"), str):
        return q
    raise DiscernError(f"expected a question string or a record with 'question', got {q!r}")


def generate_answers(backend, questions: list, max_tokens: int = 512, seed: int = 0, role: str = "consumer",
                     adversarial: bool = False) -> list[dict]:
    """One greedy answer per question from ``backend.generate`` (any ``discern.llm`` backend).  ``questions``
    are strings or records from :func:`read_questions` (their ``reference`` and ``meta`` are kept).  Each
    result: ``question``, ``answer`` (the generation, stripped), ``model``, ``prompt``, ``role``,
    ``adversarial``, and ``reference`` / ``meta`` when the question had them."""
    from discern.llm.generation import GenParams

    recs = [_as_record(q) for q in questions]
    prompts = [longform_prompt(r["question"], role, adversarial) for r in recs]
    if not prompts:
        return []
    params = GenParams(temperature=0.0, max_tokens=max_tokens, stop=STOP, seed=seed)
    gens = backend.generate(prompts, 1, params)
    out = []
    for r, p, g in zip(recs, prompts, gens, strict=True):
        rec = {"question": r["question"].strip(), "answer": g[0].strip(), "model": backend.name, "prompt": p,
               "role": role, "adversarial": adversarial}
        if r.get("reference") is not None:
            rec["reference"] = r["reference"]
        if r.get("meta"):
            rec["meta"] = r["meta"]
        out.append(rec)
    return out


def _read_text(path: Path) -> str:
    """The UTF-8 text of a questions or answers file (a BOM is allowed); a missing file, a folder or bad
    bytes are a DataError."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def _jsonl(path: Path):
    """(line number, object) for the non-blank lines of a JSONL file."""
    text = _read_text(path)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        d = _json_object(path, n, line)
        yield n, d


def _nonempty(path: Path, n: int, d: dict, key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        what = "missing" if v is None else f"must be a non-empty string, got {brief(v)}"
        raise DataError(f"{path}:{n}: {key!r} {what}")
    return v.strip()


def read_questions(path) -> list[dict]:
    """Questions from a ``.txt`` file (one per non-blank line) or a ``.jsonl`` file (objects with
    ``question``; a reference answer under ``reference`` or ``answer``; any other fields are kept as
    ``meta``).  Returns records ``{"question", "reference" (or None), "meta"}``."""
    path = Path(path)
    if path.suffix not in (".txt", ".jsonl"):
        raise DataError(f"{path}: expected a .txt (one question per line) or .jsonl file")
    if path.suffix == ".txt":
        lines = _read_text(path).splitlines()
        out = [{"question": q.strip(), "reference": None, "meta": {"line": n}}
               for n, q in enumerate(lines, 1) if q.strip()]
    else:
        out = []
        for n, d in _jsonl(path):
            q = _nonempty(path, n, d, "question")
            found = [k for k in REFERENCE_KEYS if d.get(k) is not None]
            if len(found) > 1:
                raise DataError(f"{path}:{n}: give the reference answer under 'reference' or 'answer', not both")
            ref = _nonempty(path, n, d, found[0]) if found else None
            meta = {k: v for k, v in d.items() if k not in ("question", *REFERENCE_KEYS)}
            out.append({"question": q, "reference": ref, "meta": {"line": n, **meta}})
    if not out:
        raise DataError(f"{path}: no questions")
    return out


def write_answers(path, records: list[dict]) -> Path:
    """Write answer records as JSON lines (UTF-8, one object per line), atomically (a temporary file renamed
    into place: never a half-written file); returns the path."""
    from discern.core import atomic_write_text

    path = Path(path)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def read_answers(path) -> list[dict]:
    """Answer records written by :func:`write_answers` (``question`` and ``answer`` required, ``reference``
    optional), checked line by line."""
    path = Path(path)
    out = []
    for n, d in _jsonl(path):
        rec = dict(d, question=_nonempty(path, n, d, "question"), answer=_nonempty(path, n, d, "answer"))
        if d.get("reference") is not None:
            rec["reference"] = _nonempty(path, n, d, "reference")
        out.append(rec)
    if not out:
        raise DataError(f"{path}: no answers")
    return out


def rating_records(answers: list[dict], source_name: str, reference_source: str = "physician") -> list[dict]:
    """Records for ``discern.medqa.rating.db.add_items``: per answer ``{"question", "answers": [{"text":
    answer, "source": source_name}, {"text": reference, "source": reference_source}], "meta"}`` with the
    reference only when the answer record has one (a pairwise item, else a single item).  ``meta`` keeps
    the answer's position (``index``), the generating ``model`` and the question's ``meta``."""
    for name, value in (("source_name", source_name), ("reference_source", reference_source)):
        if not isinstance(value, str) or not value.strip() or value.strip() == "tie":
            raise DiscernError(f"{name} must be a non-empty source name other than 'tie', not {value!r}")
    if source_name.strip() == reference_source.strip():
        raise DiscernError(f"the model and the reference need different source names, both are {source_name!r}")
    out = []
    for i, a in enumerate(answers):
        text = a.get("answer")
        if not isinstance(text, str) or not text.strip():
            raise DiscernError(f"answer {i} ({str(a.get('question'))[:60]!r}): the model answer is empty")
        pair = [{"text": text.strip(), "source": source_name.strip()}]
        ref = a.get("reference")
        if isinstance(ref, str) and ref.strip():
            pair.append({"text": ref.strip(), "source": reference_source.strip()})
        meta = {**(a.get("meta") or {}), "index": i, **({"model": a["model"]} if a.get("model") else {})}
        out.append({"question": a.get("question"), "answers": pair, "meta": meta})
    return out
