"""MultiMedQA multiple-choice readers (data registry): MMLU's six clinical topics, PubMedQA PQA-L,
MedQA (USMLE, jsonl) and MedMCQA (jsonl); each returns :class:`~discern.medqa.prompts.Question` items.

Every reader checks its rows and raises :class:`~discern.core.errors.DataError` with one line naming the
file and line (``path:line: ...``; PubMedQA, keyed by PMID: ``path: PMID n: ...``) and what is wrong; a
missing file names the official source of the dataset.

Every question's ``meta["index"]`` is its row in the file it was read from, counted from 0 over the data rows
(MMLU: CSV records; PubMedQA: the PMIDs in file order; MedQA, MedMCQA: the non-blank lines): the ``doc_id``
of the samples files, whatever subset a run takes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from discern.core.errors import DataError
from discern.core.files import brief, json_failure, read_json

from .prompts import Question

MMLU_CLINICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                 "professional_medicine")

SOURCES = {
    "mmlu-clinical": "MMLU is at https://github.com/hendrycks/test (data/dev, data/val)",
    "pubmedqa": "PubMedQA is at https://github.com/pubmedqa/pubmedqa (data/ori_pqal.json)",
    "medqa": "MedQA is at https://github.com/jind11/MedQA (Google Drive link; data_clean/questions/US/4_options)",
    "medqa-usmle": "MedQA is at https://github.com/jind11/MedQA (Google Drive link; data_clean/questions/US/4_options)",
    "medmcqa": "MedMCQA is at https://medmcqa.github.io (train.json, dev.json, test.json)",
}


def _root(name: str, root) -> Path:
    if root is not None:
        return Path(root)
    from discern.data import registry

    if name == "medmcqa":  # `discern data fetch medmcqa` writes dev.json here; train.json may be added by hand
        folder = registry.data_root() / name
        if folder.is_dir():
            return folder
        raise DataError(f"MedMCQA is not installed: discern data fetch medmcqa [--from a folder with the official "
                        f"dev.json and train.json, https://medmcqa.github.io] (installs into {folder})")
    try:
        return registry.path(name)
    except DataError as e:
        raise DataError(f"{e}; {SOURCES[name]}") from None


def _missing(path: Path, name: str) -> DataError:
    return DataError(f"{path}: missing; {SOURCES[name]}")


def _lines(path: Path):
    """(line number, text) of the non-blank lines of a UTF-8 text file, read lazily."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n}: not UTF-8 text (byte {e.start} of the line)") from None
            if line.strip():
                yield n, line.rstrip("\r\n")


def _json_object(path: Path, n: int, line: str) -> dict:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{n}: invalid JSON ({e.msg} at column {e.colno})") from None
    except (RecursionError, ValueError) as e:  # deeply nested brackets, an integer of 5000 digits
        raise DataError(f"{path}:{n}: {json_failure(e)}") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}:{n}: expected a JSON object, got {type(d).__name__}")
    return d


def _text(path: Path, n: int, d: dict, key: str) -> str:
    v = d.get(key)
    if key not in d or v is None:
        raise DataError(f"{path}:{n}: missing {key!r}")
    if not isinstance(v, str) or not v.strip():
        raise DataError(f"{path}:{n}: {key!r} must be a non-empty string, got {brief(v)}")
    return v


def mmlu(subject: str, split: str = "val", root=None) -> list[Question]:
    """``<subject>_<split>.csv``: question, four options, answer letter (no header)."""
    if subject not in MMLU_CLINICAL:
        raise DataError(f"unknown MMLU clinical subject {subject!r} (choose from {', '.join(MMLU_CLINICAL)})")
    path = _root("mmlu-clinical", root) / f"{subject}_{split}.csv"
    if not path.is_file():
        raise DataError(f"{path}: missing (splits: dev, val); {SOURCES['mmlu-clinical']}")
    out = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            start = 1
            for i, row in enumerate(reader):
                if len(row) != 6:
                    raise DataError(f"{path}:{start}: expected 6 columns (question, 4 options, answer letter), "
                                    f"got {len(row)}")
                letter = row[5].strip()
                if letter not in ("A", "B", "C", "D"):
                    raise DataError(f"{path}:{start}: the answer must be one of A, B, C, D, got {brief(row[5])}")
                if not row[0].strip():
                    raise DataError(f"{path}:{start}: empty question")
                out.append(Question(row[0], row[1:5], letter, meta={"subject": subject, "index": i}))
                start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{start}: unreadable CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return out


PUBMEDQA_LETTERS = {"yes": "A", "no": "B", "maybe": "C"}


def pubmedqa(root=None, file: str = "pqal_dev.json") -> list[Question]:
    """PQA-L items (a JSON object keyed by PMID, each with ``QUESTION``, ``CONTEXTS`` and ``final_decision``):
    the abstract's contexts joined as the context; options Yes / No / Maybe."""
    path = _root("pubmedqa", root) / file
    if not path.is_file():
        raise _missing(path, "pubmedqa")
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by PMID, got {type(data).__name__}")
    out = []
    for i, (pmid, d) in enumerate(data.items()):
        where = f"{path}: PMID {pmid if pmid.isdigit() and len(pmid) <= 20 else brief(pmid)}"
        if not isinstance(d, dict):
            raise DataError(f"{where}: expected an object, got {type(d).__name__}")
        missing = [k for k in ("QUESTION", "CONTEXTS", "final_decision") if k not in d]
        if missing:
            raise DataError(f"{where}: missing {', '.join(map(repr, missing))}")
        if not isinstance(d["QUESTION"], str) or not d["QUESTION"].strip():
            raise DataError(f"{where}: 'QUESTION' must be a non-empty string, got {brief(d['QUESTION'])}")
        ctx = d["CONTEXTS"]
        if not isinstance(ctx, list) or not all(isinstance(c, str) for c in ctx):
            raise DataError(f"{where}: 'CONTEXTS' must be a list of strings")
        decision = d["final_decision"]
        if not isinstance(decision, str) or decision not in PUBMEDQA_LETTERS:
            raise DataError(f"{where}: 'final_decision' must be yes, no or maybe, got {brief(decision)}")
        out.append(Question(d["QUESTION"], ["Yes", "No", "Maybe"], PUBMEDQA_LETTERS[decision],
                            context=" ".join(ctx),
                            meta={"pmid": pmid, "long_answer": d.get("LONG_ANSWER"), "index": i}))
    return out


def medqa(split: str = "test", root=None, file: str | None = None, dataset: str = "medqa") -> list[Question]:
    """US 4-option MedQA jsonl (``phrases_no_exclude_<split>.jsonl``, or ``file``): ``question``, ``options``
    {letter: text} lettered A, B, C, ... and ``answer_idx``, one of those letters.  ``dataset`` is the
    registry entry holding the file (``medqa``, or ``medqa-usmle``: 273 official test questions)."""
    path = _root(dataset, root) / (file or f"phrases_no_exclude_{split}.jsonl")
    if not path.is_file():
        raise _missing(path, dataset)
    out = []
    for i, (n, line) in enumerate(_lines(path)):
        d = _json_object(path, n, line)
        question = _text(path, n, d, "question")
        opts = d.get("options")
        if opts is None:
            raise DataError(f"{path}:{n}: missing 'options'")
        if not isinstance(opts, dict) or not opts or not all(isinstance(v, str) for v in opts.values()):
            raise DataError(f"{path}:{n}: 'options' must be an object mapping letters to option texts")
        letters = sorted(opts)
        if letters != [chr(65 + j) for j in range(len(letters))]:
            raise DataError(f"{path}:{n}: options must be lettered A, B, C, ... in order, got "
                            f"{brief(', '.join(letters), quote=False)}")
        if "answer_idx" not in d:
            raise DataError(f"{path}:{n}: missing 'answer_idx'")
        if d["answer_idx"] not in letters:
            raise DataError(f"{path}:{n}: 'answer_idx' {brief(d['answer_idx'])} is not among the options "
                            f"{', '.join(letters)}")
        out.append(Question(question, [opts[k] for k in letters], d["answer_idx"],
                            meta={"index": i, "meta_info": d.get("meta_info")}))
    return out


def medqa_usmle(root=None) -> list[Question]:
    """The registry's ``medqa-usmle``: 273 of MedQA's 1,273 official US 4-option test questions
    (``test-part-a.jsonl``, the official jsonl fields)."""
    return medqa(root=root, file="test-part-a.jsonl", dataset="medqa-usmle")


MEDMCQA_OPTIONS = ("opa", "opb", "opc", "opd")


def medmcqa(split: str = "dev", root=None, first: int | None = None) -> list[Question]:
    """MedMCQA's official release, ``<split>.json`` in JSON lines (train.json, dev.json, test.json): per line
    ``question``, options ``opa``..``opd``, ``cop`` (the correct option **numbered 1-4** as in the official
    files; the Hugging Face parquet export numbers it 0-3 and is not read here), ``exp`` (explanation, may be
    null), ``subject_name``, ``topic_name``, ``id``, ``choice_type``.  Med-PaLM 2 evaluates on the dev split
    (4,183 questions).  The official test split has no answers: there ``cop`` may be absent (answer None).
    ``first`` reads only the first that many questions (exemplars from the large train split)."""
    path = _root("medmcqa", root) / f"{split}.json"
    if not path.is_file():
        parquet = sorted(path.parent.glob("*.parquet"))
        hint = (f" (found {parquet[0].name}, the Hugging Face export: this reader needs the official JSON lines)"
                if parquet else "")
        raise DataError(f"{path}: missing{hint}; {SOURCES['medmcqa']}")
    out = []
    for i, (n, line) in enumerate(_lines(path)):
        if first is not None and len(out) >= first:
            break
        d = _json_object(path, n, line)
        question = _text(path, n, d, "question")
        options = []
        for k in MEDMCQA_OPTIONS:
            v = d.get(k)
            if v is None:
                raise DataError(f"{path}:{n}: missing option {k!r}")
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise DataError(f"{path}:{n}: option {k!r} must be text, got {brief(v)}")
            options.append(str(v))
        cop = d.get("cop")
        if cop is None and split == "test":
            answer = None
        elif cop is None:
            raise DataError(f"{path}:{n}: missing 'cop' (the correct option, 1-4)")
        elif isinstance(cop, bool) or not isinstance(cop, int) or not 1 <= cop <= 4:
            zero = " (0 means a 0-based export; the official files number options 1-4)" if cop == 0 else ""
            raise DataError(f"{path}:{n}: 'cop' must be an integer 1-4, got {brief(cop)}{zero}")
        else:
            answer = "ABCD"[cop - 1]
        exp = d.get("exp")
        explanation = exp.strip() if isinstance(exp, str) and exp.strip() else None
        out.append(Question(question, options, answer, explanation=explanation,
                            meta={"id": d.get("id"), "subject": d.get("subject_name"), "topic": d.get("topic_name"),
                                  "choice_type": d.get("choice_type"), "index": i}))
    return out
