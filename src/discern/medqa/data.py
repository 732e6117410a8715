"""MultiMedQA multiple-choice readers (data registry): MMLU's six clinical topics, PubMedQA PQA-L,
MedQA (USMLE, jsonl) and MedMCQA; each returns :class:`~discern.medqa.prompts.Question` items."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from discern.core.errors import DataError

from .prompts import Question

MMLU_CLINICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                 "professional_medicine")


def _root(name: str, root) -> Path:
    if root is not None:
        return Path(root)
    from discern.data import registry

    return registry.path(name)


def mmlu(subject: str, split: str = "val", root=None) -> list[Question]:
    """``<subject>_<split>.csv``: question, four options, answer letter (no header)."""
    if subject not in MMLU_CLINICAL:
        raise DataError(f"unknown MMLU clinical subject {subject!r} (choose from {', '.join(MMLU_CLINICAL)})")
    path = _root("mmlu-clinical", root) / f"{subject}_{split}.csv"
    if not path.is_file():
        raise DataError(f"{path}: missing (splits: dev, val)")
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            if len(row) != 6 or row[5].strip() not in "ABCD" or not row[5].strip():
                raise DataError(f"{path}:{i + 1}: expected question, 4 options and an answer letter")
            out.append(Question(row[0], row[1:5], row[5].strip(), meta={"subject": subject, "index": i}))
    return out


def pubmedqa(root=None, file: str = "pqal_dev.json") -> list[Question]:
    """PQA-L items: the abstract's contexts joined as the context; options Yes / No / Maybe."""
    path = _root("pubmedqa", root) / file
    data = json.loads(path.read_text(encoding="utf-8"))
    letter = {"yes": "A", "no": "B", "maybe": "C"}
    return [Question(d["QUESTION"], ["Yes", "No", "Maybe"], letter[d["final_decision"]],
                     context=" ".join(d["CONTEXTS"]), meta={"pmid": pmid, "long_answer": d.get("LONG_ANSWER")})
            for pmid, d in data.items()]


def medqa(split: str = "test", root=None) -> list[Question]:
    """US 4-option MedQA jsonl: ``question``, ``options`` {letter: text}, ``answer_idx``."""
    path = _root("medqa", root) / f"phrases_no_exclude_{split}.jsonl"
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        d = json.loads(line)
        letters = sorted(d["options"])
        out.append(Question(d["question"], [d["options"][k] for k in letters], d["answer_idx"],
                            meta={"index": i, "meta_info": d.get("meta_info")}))
    return out
