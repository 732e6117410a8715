"""Real speech-recognition n-best lists for Electric's re-ranking experiment (Clark et al. 2020).

The paper re-ranks the 100-best lists of an ESPnet LibriSpeech model with
``x* = argmax_x f(x|s) + lambda * PLL(x)``.  Those lists are read by :func:`read_mlm_scoring`
when a user has them; offline we make our own with a real recogniser: pocketsphinx 5
(CMU Sphinx, continuous HMM acoustic model, trigram ``en-us.lm.bin``) decodes

* the five LibriVox utterances of the Debian package ``pocketsphinx-testdata``
  (:func:`librivox_utterances`), and
* espeak-ng speech of held-out real English sentences (:func:`synthesize`), with varied
  voices, speaking rates and white noise (:func:`add_noise`), in :func:`generate_nbest`.

Lists are stored as JSON lines (:func:`write_nbest` / :func:`read_nbest`), one utterance a line::

    {"id": "...", "reference": "...", "meta": {...},
     "hypotheses": [{"text": "...", "score": -3.46, "acoustic": null, "lm": null}, ...]}

Scores.  pocketsphinx works in integer logarithms of base 1.0001, kept shifted right by
``SENSCR_SHIFT = 10`` bits (divided by 1024) so that path sums fit in 32 bits; its Python
API hands back ``1.0001 ** s`` of the shifted ``s`` as a float.  ``1024 * math.log`` of it is
the natural-log score stored here (with the default language weight 6.5, an LM score of
"he" after ``<s>`` comes out as -26 = 6.5 x ln 0.02).  ``score`` is the decoder's A* n-best
path score (acoustic + weighted LM + insertion penalties; acoustic scores are normalised by
each frame's best senone score): comparable between the hypotheses of one utterance, which
is what re-ranking needs, not across utterances.  The
first entry is the decoder's 1-best and never scores below the others (see
:meth:`Recognizer.decode`).
``acoustic`` and ``lm`` are filled for the 1-best only (summed over ``Decoder.seg()``), since
the Python API exposes per-word scores for the best path alone.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import random
import re
import shutil
import subprocess
import wave
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from discern.core import DataError, DiscernError, atomic_write_text
from discern.core.files import brief, is_finite_number, json_failure
from discern.core import progress as _progress_bar
from discern.metrics.wer import edit_distance, normalize_words

__all__ = [
    "SAMPLE_RATE", "Hypothesis", "Recognizer", "Utterance", "add_noise", "clean_hypothesis",
    "generate_nbest", "librivox_utterances", "load_dictionary", "nbest_wer", "read_mlm_scoring",
    "read_nbest", "select_sentences", "synthesize", "write_nbest",
]

SAMPLE_RATE = 16000  # the en-us acoustic model's rate
DEFAULT_N = 20  # kept per utterance; on 30 espeak Brown utterances the oracle WER is 76.0%
# at n=20 vs 85.0% 1-best (78.1% at n=10, 74.8% at n=50)


# ----------------------------------------------------------------------------- records

@dataclass
class Hypothesis:
    """One recognition hypothesis: its text and first-pass log score (natural log)."""

    text: str
    score: float
    acoustic: float | None = None
    lm: float | None = None


@dataclass
class Utterance:
    """One utterance: its reference transcript and n-best list, first-pass 1-best first."""

    id: str
    reference: str
    hypotheses: list[Hypothesis]
    meta: dict = field(default_factory=dict)


_UTT_KEYS = {"id": str, "reference": str, "hypotheses": list, "meta": dict}
_HYP_KEYS = ("text", "score", "acoustic", "lm")


def _utt_to_json(u: Utterance) -> str:
    obj = {"id": u.id, "reference": u.reference,
           "hypotheses": [{"text": h.text, "score": h.score, "acoustic": h.acoustic, "lm": h.lm}
                          for h in u.hypotheses],
           "meta": u.meta}
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"utterance {u.id!r}: cannot be written as JSON ({e})") from None


def write_nbest(path: str | Path, utterances: Iterable[Utterance]) -> None:
    """Write utterances as JSON lines, atomically (a temporary file renamed into place)."""
    text = "".join(_utt_to_json(u) + "\n" for u in utterances)
    atomic_write_text(path, text)


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _is_number(v: Any) -> bool:
    return is_finite_number(v)  # not OverflowError on an integer beyond the float range


def _parse_hypothesis(h: Any, where: str) -> Hypothesis:
    if not isinstance(h, dict):
        raise DataError(f"{where}: expected an object with 'text' and 'score', got {_type_name(h)}")
    for key in h:
        if key not in _HYP_KEYS:
            raise DataError(f"{where}: unexpected key {brief(key)} (expected {', '.join(_HYP_KEYS)})")
    if "text" not in h or "score" not in h:
        missing = "text" if "text" not in h else "score"
        raise DataError(f"{where}: missing key {missing!r}")
    if not isinstance(h["text"], str):
        raise DataError(f"{where}.text: expected a string, got {_type_name(h['text'])}")
    if not _is_number(h["score"]):
        raise DataError(f"{where}.score: expected a finite number, got {brief(h['score'])}")
    extra = {}
    for key in ("acoustic", "lm"):
        v = h.get(key)
        if v is not None and not _is_number(v):
            raise DataError(f"{where}.{key}: expected a finite number or null, got {brief(v)}")
        extra[key] = None if v is None else float(v)
    return Hypothesis(h["text"], float(h["score"]), **extra)


def _read_text(path: Path) -> str:
    """The UTF-8 text of an n-best file; a missing file, a folder or bad bytes are a DataError."""
    if not path.exists():
        raise DataError(f"{path}: file is missing")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def read_nbest(path: str | Path) -> list[Utterance]:
    """Read a file written by :func:`write_nbest`; any malformed line is a one-line
    :class:`DataError` naming ``path:line`` and what was expected.  Blank lines are allowed."""
    path = Path(path)
    text = _read_text(path)
    out: list[Utterance] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno}); expected one "
                            f"utterance object per line") from None
        except (RecursionError, ValueError) as e:
            raise DataError(f"{where}: {json_failure(e)}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected an object with keys {', '.join(_UTT_KEYS)}, "
                            f"got {_type_name(obj)}")
        for key in obj:
            if key not in _UTT_KEYS:
                raise DataError(f"{where}: unexpected key {brief(key)} (expected {', '.join(_UTT_KEYS)})")
        for key, typ in _UTT_KEYS.items():
            if key not in obj:
                raise DataError(f"{where}: missing key {key!r}")
            if not isinstance(obj[key], typ):
                raise DataError(f"{where}: {key!r} must be {'an' if typ is list else 'a'} "
                                f"{typ.__name__}, got {_type_name(obj[key])}")
        if not obj["hypotheses"]:
            raise DataError(f"{where}: 'hypotheses' is empty; expected at least one hypothesis")
        if obj["id"] in seen:
            raise DataError(f"{where}: utterance id {brief(obj['id'])} already appeared on line {seen[obj['id']]}")
        seen[obj["id"]] = lineno
        hyps = [_parse_hypothesis(h, f"{where}: hypotheses[{i}]") for i, h in enumerate(obj["hypotheses"])]
        out.append(Utterance(obj["id"], obj["reference"], hyps, obj["meta"]))
    return out


# ----------------------------------------------------------------------------- mlm-scoring format

_MLM_HYP = re.compile(r"hyp_([0-9]{1,9})")  # ASCII digits, a number int() takes


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    d: dict = {}
    for k, v in pairs:
        if k in d:
            raise _DuplicateKey(k)
        d[k] = v
    return d


def read_mlm_scoring(path: str | Path) -> list[Utterance]:
    """Read an n-best file in the format of ``awslabs/mlm-scoring``
    (``examples/asr-librispeech-espnet/data/{dev,test}-{clean,other}.am.json``: the ESPnet
    LibriSpeech 100-best lists of Shin et al. 2019 that the Electric paper re-ranks).

    The file is one JSON object keyed by utterance id; each value holds ``"ref"`` (the
    reference) and ``"hyp_1"`` ... ``"hyp_N"``, each ``{"score": float, "text": str}`` with
    ``hyp_1`` the best first-pass hypothesis (texts may start with a space, as released).
    Utterances come back sorted by id, hypotheses by their number, like mlm-scoring's
    ``Predictions.from_dict``.  Other keys of an utterance are kept in ``meta["extra"]``.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    except _DuplicateKey as e:
        raise DataError(f"{path}: key {brief(e.args[0])} appears twice in one object") from None
    except (RecursionError, ValueError) as e:
        raise DataError(f"{path}: {json_failure(e)}") from None
    if not isinstance(obj, dict) or not obj:
        raise DataError(f"{path}: expected a non-empty JSON object keyed by utterance id "
                        f"(mlm-scoring *.am.json format)")
    out = []
    for key in sorted(obj):
        where = f"{path}: utterance {brief(key)}"
        entry = obj[key]
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object with 'ref' and 'hyp_1'..'hyp_N', "
                            f"got {_type_name(entry)}")
        if not isinstance(entry.get("ref"), str):
            got = "nothing" if "ref" not in entry else _type_name(entry["ref"])
            raise DataError(f"{where}: 'ref' must be the reference string, got {got}")
        hyps: dict[int, Hypothesis] = {}
        extra = {}
        for k, v in entry.items():
            if k == "ref":
                continue
            m = _MLM_HYP.fullmatch(k)
            if not m:
                extra[k] = v
                continue
            if (not isinstance(v, dict) or not isinstance(v.get("text"), str)
                    or not _is_number(v.get("score"))):
                raise DataError(f"{where}: {k!r} must be an object with a finite number 'score' "
                                f"and a string 'text', got {json.dumps(v)[:80]}")
            hyps[int(m.group(1))] = Hypothesis(v["text"].strip(), float(v["score"]))
        if not hyps:
            raise DataError(f"{where}: no hypotheses (expected keys 'hyp_1'..'hyp_N')")
        if sorted(hyps) != list(range(1, len(hyps) + 1)):
            missing = min(set(range(1, len(hyps) + 1)) - set(hyps))
            raise DataError(f"{where}: hypotheses must be numbered hyp_1..hyp_{len(hyps)}; "
                            f"'hyp_{missing}' is missing")
        meta: dict[str, Any] = {"source": "mlm-scoring", "file": path.name}
        if extra:
            meta["extra"] = extra
        out.append(Utterance(key, entry["ref"].strip(), [hyps[i] for i in sorted(hyps)], meta))
    return out


# ----------------------------------------------------------------------------- audio

def _parse_wav(data: bytes, where: str) -> tuple[np.ndarray, int]:
    """16-bit PCM mono WAV bytes -> (int16 samples, rate).  Tolerates the bogus chunk sizes
    that espeak-ng writes when its output is a pipe (the data chunk runs to the end)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DiscernError(f"{where}: output is not a WAV file")
    pos, rate, fmt_ok = 12, None, False
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if cid == b"fmt ":
            def field_(offset: int, width: int) -> int:
                return int.from_bytes(data[body + offset:body + offset + width], "little")

            fmt, channels, rate, bits = field_(0, 2), field_(2, 2), field_(4, 4), field_(14, 2)
            if fmt != 1 or channels != 1 or bits != 16:
                raise DiscernError(f"{where}: expected 16-bit PCM mono, got format {fmt}, "
                                   f"{channels} channels, {bits} bits")
            fmt_ok = True
        elif cid == b"data":
            if not fmt_ok or rate is None:
                raise DiscernError(f"{where}: WAV data chunk before its fmt chunk")
            end = min(len(data), body + size)
            pcm = data[body:end]
            return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int16), rate
        pos = body + size + (size & 1)
    raise DiscernError(f"{where}: WAV file has no data chunk")


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return x.astype(np.int16)
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, rate)  # 22050 Hz -> 16000 Hz is up 160, down 441
    y = resample_poly(x.astype(np.float64), SAMPLE_RATE // g, rate // g)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def synthesize(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng; returns int16 mono audio at 16 kHz.

    espeak-ng writes a 22.05 kHz WAV; it is resampled with ``scipy.signal.resample_poly``.
    The text goes through stdin, so a leading '-' is never read as an option.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DiscernError("espeak-ng is not installed; run: apt-get install espeak-ng")
    cmd = [exe, "-v", str(voice), "-s", str(int(rate)), "-p", str(int(pitch)), "--stdout", "--stdin"]
    proc = subprocess.run(cmd, input=" ".join(text.split()).encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiscernError(f"espeak-ng -v {voice} -s {rate} -p {pitch} failed (exit "
                           f"{proc.returncode}): {msg[-1] if msg else 'no message'}")
    audio, sr = _parse_wav(proc.stdout, f"espeak-ng -v {voice}")
    return _resample(audio, sr)


def add_noise(audio: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` (signal power / noise power, in dB) to int16 audio;
    ``None`` or ``inf`` returns a clean copy.  The sum is rounded and clipped to int16."""
    x = np.asarray(audio)
    if snr_db is None or snr_db == math.inf:
        return x.astype(np.int16, copy=True)
    if not math.isfinite(snr_db):
        raise ValueError(f"add_noise: snr_db must be finite, None or inf, got {snr_db}")
    xf = x.astype(np.float64)
    power = float(np.mean(xf ** 2)) if xf.size else 0.0
    if power == 0.0:
        raise ValueError("add_noise: the audio is silent, so a signal-to-noise ratio is undefined")
    sigma = math.sqrt(power / 10.0 ** (snr_db / 10.0))
    y = xf + sigma * rng.standard_normal(xf.shape)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def _read_wav_file(p: Path) -> np.ndarray:
    try:
        with wave.open(str(p), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != SAMPLE_RATE:
                raise DataError(f"{p}: expected 16 kHz 16-bit mono, got {w.getframerate()} Hz, "
                                f"{8 * w.getsampwidth()}-bit, {w.getnchannels()} channels")
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    except FileNotFoundError:
        raise DataError(f"{p}: file is missing") from None
    except (wave.Error, EOFError) as e:
        raise DataError(f"{p}: not a readable WAV file ({e})") from None


_TRANSCRIPTION = re.compile(r"(?:<s>\s+)?(.*?)(?:\s+</s>)?\s+\(([^()\s]+)\)")


def librivox_utterances(root: str | Path | None = None) -> list[tuple[str, str, np.ndarray]]:
    """The 5 LibriVox utterances (Austen, *Sense and Sensibility*) of pocketsphinx-testdata:
    ``(id, reference, int16 audio at 16 kHz)`` in ``librivox/fileids`` order."""
    if root is None:
        from discern.data import registry

        root = registry.path("pocketsphinx-testdata")
    folder = Path(root) / "librivox"
    refs: dict[str, str] = {}
    tpath = folder / "transcription"
    try:
        lines = tpath.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{tpath}: file is missing") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = _TRANSCRIPTION.fullmatch(line.strip())
        if not m:
            raise DataError(f"{tpath}:{n}: expected '<s> words </s> (utterance-id)', "
                            f"got {line.strip()[:60]!r}")
        refs[m.group(2)] = m.group(1).strip()
    fpath = folder / "fileids"
    try:
        ids = [s.strip() for s in fpath.read_text(encoding="utf-8").splitlines() if s.strip()]
    except FileNotFoundError:
        raise DataError(f"{fpath}: file is missing") from None
    out = []
    for n, fid in enumerate(ids, 1):
        name = Path(fid).name
        if name not in refs:
            raise DataError(f"{fpath}:{n}: utterance '{name}' has no line in {tpath}")
        out.append((name, refs[name], _read_wav_file(folder / f"{fid}.wav")))
    return out


# ----------------------------------------------------------------------------- sentences

def _default_dictionary() -> Path:
    import pocketsphinx

    base = Path(pocketsphinx.get_model_path())
    for p in (base / "en-us" / "cmudict-en-us.dict", base / "cmudict-en-us.dict"):
        if p.is_file():
            return p
    raise DataError(f"{base}: no cmudict-en-us.dict in the pocketsphinx model folder; "
                    f"run: pip install pocketsphinx")


@lru_cache(maxsize=4)
def load_dictionary(path: str | Path | None = None) -> frozenset[str]:
    """The words of a pocketsphinx pronunciation dictionary (alternates ``word(2)`` folded);
    default: the cmudict shipped with the ``pocketsphinx`` package."""
    p = Path(path) if path is not None else _default_dictionary()
    words = set()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{p}: file is missing") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise DataError(f"{p}:{n}: expected 'WORD PHONE ...', got {line.strip()!r}")
        words.add(re.sub(r"\(\d+\)$", "", parts[0]).lower())
    return frozenset(words)


# Letters, spaces and ordinary punctuation only: no digits, symbols espeak would read aloud
# ("%", "&", "$"), or characters outside ASCII letters.
_SPEAKABLE = re.compile(r"[A-Za-z\s.,;:!?'\"`()\-\u2013\u2014\u2018\u2019\u201c\u201d]+")
_TRAILER = re.compile(r"[\s.!?;:,'\"`)\u2019\u201d]*$")


def select_sentences(sentences: Sequence[str], n: int, seed: int, min_words: int = 5,
                     max_words: int = 20, dictionary: Iterable[str] | None = None) -> list[str]:
    """A deterministic sample (``random.Random(seed)``) of ``n`` sentences fit to be spoken and
    scored: ``min_words`` to ``max_words`` words (after :func:`normalize_words`), every word in
    the recogniser's dictionary, no digits or other symbols, and no full stop before the end
    (abbreviations such as "Mr." would be spoken differently from their reference).
    Raises ``ValueError`` when fewer than ``n`` sentences qualify."""
    vocab = load_dictionary() if dictionary is None else frozenset(w.lower() for w in dictionary)
    keep, seen = [], set()
    for s in sentences:
        s = " ".join(s.split())
        if not s or s in seen or not _SPEAKABLE.fullmatch(s):
            continue
        if "." in s[: _TRAILER.search(s).start()]:
            continue
        words = normalize_words(s)
        if not (min_words <= len(words) <= max_words) or any(w not in vocab for w in words):
            continue
        seen.add(s)
        keep.append(s)
    if len(keep) < n:
        raise ValueError(f"select_sentences: only {len(keep)} of {len(sentences)} sentences qualify "
                         f"({min_words}-{max_words} in-dictionary words, no digits); {n} requested")
    return random.Random(seed).sample(keep, n)


# ----------------------------------------------------------------------------- recognition

_FILLER = re.compile(r"\[.*\]|\+\+.*\+\+|<.*>")
_ALT_PRON = re.compile(r"\(\d+\)$")


def clean_hypothesis(text: str) -> str:
    """Drop ``<s>``, ``</s>``, ``<sil>`` and fillers (``[NOISE]``, ``++GARBAGE++``) and strip
    alternate-pronunciation markers (``read(2)`` -> ``read``)."""
    return " ".join(_ALT_PRON.sub("", t) for t in text.split() if not _FILLER.fullmatch(t))


SENSCR_SHIFT = 10  # pocketsphinx stores log scores divided by 2**10


def _ln(p: float) -> float | None:
    """Natural log of a pocketsphinx score (``1.0001 ** (s / 1024)`` as a float), None on underflow."""
    return math.log(p) * (1 << SENSCR_SHIFT) if p > 0 else None


class Recognizer:
    """A pocketsphinx decoder, built once, that turns 16 kHz int16 audio into an n-best list.

    Keyword options go to ``pocketsphinx.Decoder`` (defaults: the package's en-us acoustic
    model, ``en-us.lm.bin`` trigram, cmudict, ``lw=6.5``, ``bestpath=True``); the defaults gave
    the best espeak-ng WER among the beams and weights tried.  ``max_paths`` bounds how many
    A* paths are read from ``Decoder.nbest()``, which repeats a text once for every
    segmentation and pronunciation, while collecting distinct texts.
    """

    def __init__(self, max_paths: int = 2000, **decoder_options: Any):
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise DiscernError("pocketsphinx is not installed; run: pip install pocketsphinx") from None
        opts: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "ERROR"}
        opts.update(decoder_options)
        self.options = opts
        self.max_paths = max_paths
        self.decoder = Decoder(**opts)
        self.last: dict[str, Any] = {}  # details of the latest decode (see decode)

    def decode(self, audio: np.ndarray, n: int = DEFAULT_N) -> list[Hypothesis]:
        """Decode one utterance into up to ``n`` hypotheses with distinct texts.

        The first is the decoder's 1-best (``Decoder.hyp()``, the lattice best path: 66% WER
        against 70% for the A* list's top on 65 test utterances), the rest follow in A* order.
        Scores are A* path scores; the A* search often ranks the 1-best a little lower or does
        not reach it within ``max_paths``, and then the 1-best gets the list's highest score,
        so that, as in ESPnet lists, ``hypotheses[0]`` scores highest and re-ranking with
        lambda = 0 keeps the decoder's choice.  ``self.last`` records ``first_astar_rank``
        (None when not reached), ``first_score_raised`` and ``astar_paths`` read.
        """
        x = np.asarray(audio)
        if x.ndim != 1 or x.dtype != np.int16:
            raise ValueError(f"decode: expected 1-D int16 audio at {SAMPLE_RATE} Hz, got "
                             f"{x.dtype} with shape {x.shape}")
        if x.size < SAMPLE_RATE // 100:
            raise ValueError(f"decode: audio of {x.size} samples is too short to decode")
        d = self.decoder
        d.reinit_feat()  # fresh noise/CMN state: each result depends on its own audio only
        d.start_utt()
        d.process_raw(x.astype("<i2").tobytes(), full_utt=True)
        d.end_utt()
        best = d.hyp()
        self.last = {}
        if best is None:
            return []
        first = clean_hypothesis(best.hypstr)
        acoustic: float | None = 0.0
        lm: float | None = 0.0
        for seg in d.seg() or []:
            a, l_ = _ln(seg.ascore), _ln(seg.lscore)
            acoustic = None if a is None or acoustic is None else acoustic + a
            lm = None if l_ is None or lm is None else lm + l_
        scores: dict[str, float] = {}  # text -> A* score, in A* order
        paths = 0
        nb = d.nbest()
        for item in itertools.islice(nb if nb is not None else [], self.max_paths):
            paths += 1
            text = clean_hypothesis(item.hypstr)
            if text in scores:
                continue
            s = _ln(item.score)
            if s is None:  # underflow: cannot happen at pocketsphinx's score scale
                continue
            scores[text] = s
            if len(scores) >= n and first in scores:
                break
        rank = list(scores).index(first) if first in scores else None
        own = scores.pop(first, None)
        top = max(scores.values(), default=None)
        if own is not None and (top is None or own >= top):
            first_score = own
        elif top is not None:
            first_score = top
        else:  # the A* list is empty: keep the best-path score (another scale; a 1-entry list)
            first_score = _ln(best.score) or 0.0
        self.last = {"first_astar_rank": rank, "first_score_raised": first_score != own,
                     "astar_paths": paths}
        hyps = [Hypothesis(first, first_score, acoustic, lm)]
        hyps += [Hypothesis(t, s) for t, s in itertools.islice(scores.items(), max(n - 1, 0))]
        return hyps


def nbest_wer(utterances: Sequence[Utterance]) -> dict[str, float]:
    """1-best WER, oracle WER (best hypothesis of each list) and mean list size, in percent."""
    errs_1 = errs_o = words = 0
    for u in utterances:
        ref = normalize_words(u.reference)
        dists = [edit_distance(ref, normalize_words(h.text)) for h in u.hypotheses]
        errs_1 += dists[0]
        errs_o += min(dists)
        words += len(ref)
    if words == 0:
        raise ValueError("nbest_wer: the references hold no words")
    return {"wer": 100.0 * errs_1 / words, "oracle_wer": 100.0 * errs_o / words,
            "mean_n": float(np.mean([len(u.hypotheses) for u in utterances])),
            "utterances": len(utterances), "words": words}


# ----------------------------------------------------------------------------- generation

_WORKER: Recognizer | None = None


def _worker_init(options: dict) -> None:
    global _WORKER
    _WORKER = Recognizer(**options)


def _make_utterance(rec: Recognizer, task: tuple) -> Utterance:
    uid, text, voice, rate, pitch, snr, floor_db, n, noise_seed = task
    clean = synthesize(text, voice=voice, rate=rate, pitch=pitch)
    rng = np.random.default_rng(noise_seed)
    # espeak-ng's pauses are exact digital zeros, which pocketsphinx's features handle badly
    # (clean espeak WER 84% against 62% with a 40 dB floor on 12 Brown sentences), so every
    # utterance first gets a faint noise floor, then the condition's noise.
    audio = add_noise(clean, floor_db, rng)
    audio = add_noise(audio, snr, rng)
    hyps = rec.decode(audio, n=n)
    if not hyps:
        raise DiscernError(f"utterance {uid!r}: pocketsphinx returned no hypothesis")
    meta = {"source": "espeak-ng", "voice": voice, "rate": rate, "pitch": pitch,
            "noise_snr_db": snr, "noise_floor_snr_db": floor_db,
            "audio_seconds": round(audio.size / SAMPLE_RATE, 3), "text": text,
            "first_astar_rank": rec.last.get("first_astar_rank")}
    return Utterance(uid, " ".join(normalize_words(text)), hyps, meta)


def _run_task(task: tuple) -> Utterance:
    assert _WORKER is not None
    return _make_utterance(_WORKER, task)


def generate_nbest(items: Sequence[tuple[str, str]], voices: Sequence[str], rates: Sequence[int],
                   snrs: Sequence[float | None], n: int = DEFAULT_N, seed: int = 0,
                   out_path: str | Path | None = None, workers: int = 1, progress: bool = True,
                   pitch: int = 50, floor_snr_db: float | None = 40.0, save_every: int = 20,
                   decoder_options: dict | None = None) -> list[Utterance]:
    """Speak each ``(id, text)`` with espeak-ng, add noise, decode with pocketsphinx: n-best lists.

    Conditions: every (voice, rate, snr) combination, shuffled with ``seed``, is cycled over
    the items in order, so item i gets ``combos[i % len(combos)]``; its noise comes from
    ``numpy.random.default_rng([seed, crc32(id)])``; before it, every utterance gets a noise
    floor at ``floor_snr_db`` (None: none), because espeak-ng's exact digital silence
    derails pocketsphinx.  The result does not depend on
    ``workers`` or on resuming.  The reference is the normalised text (:func:`normalize_words`).

    With ``out_path``, utterances already in that file are kept and skipped, and the file is
    rewritten atomically every ``save_every`` new utterances and at the end, so an interrupted
    run resumes where it stopped.  ``workers > 1`` decodes in a process pool (fork), one
    :class:`Recognizer` per process; output order is the order of ``items``.
    ``progress`` shows a progress bar with an ETA; ``decoder_options`` go to :class:`Recognizer`.
    """
    if not voices or not rates or not snrs:
        raise ValueError("generate_nbest: voices, rates and snrs must each be non-empty")
    ids = [uid for uid, _ in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"generate_nbest: item id {dup!r} appears twice")
    combos = list(itertools.product(voices, rates, snrs))
    random.Random(seed).shuffle(combos)
    tasks = []
    for i, (uid, text) in enumerate(items):
        voice, rate, snr = combos[i % len(combos)]
        snr = None if snr is None or snr == math.inf else float(snr)
        floor = None if floor_snr_db is None else float(floor_snr_db)
        tasks.append((uid, text, voice, int(rate), int(pitch), snr, floor, int(n),
                      [int(seed), zlib.crc32(uid.encode("utf-8"))]))

    done: dict[str, Utterance] = {}
    if out_path is not None and Path(out_path).is_file():
        wanted = set(ids)
        for u in read_nbest(out_path):
            if u.id not in wanted:
                raise DataError(f"{out_path}: utterance {u.id!r} is not among this run's items; "
                                f"resume with the same items or choose another output file")
            done[u.id] = u
    todo = [t for t in tasks if t[0] not in done]

    def save() -> None:
        if out_path is not None:
            write_nbest(out_path, [done[i] for i in ids if i in done])

    options = dict(decoder_options or {})
    bar = _progress_bar(total=len(tasks), initial=len(tasks) - len(todo), desc="n-best",
                        enabled=progress)
    n_done = len(done)
    try:
        if workers > 1 and len(todo) > 1:
            # fork where the platform has it: no `if __name__ == "__main__"` guard needed in
            # the caller's script; the children only run pocketsphinx and espeak-ng.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_worker_init,
                          initargs=(options,)) as pool:
                results: Iterable[Utterance] = pool.imap(_run_task, todo)
                _collect(results, done, bar, save, save_every)
        else:
            rec = Recognizer(**options) if todo else None
            _collect((_make_utterance(rec, t) for t in todo), done, bar, save, save_every)
    finally:
        bar.close()
        if len(done) > n_done:  # also when interrupted: keep what was decoded for resuming
            save()
    return [done[i] for i in ids]


def _collect(results: Iterable[Utterance], done: dict, bar, save, save_every: int) -> None:
    fresh = 0
    for u in results:
        done[u.id] = u
        fresh += 1
        bar.update(1)
        if save_every and fresh % save_every == 0:
            save()
