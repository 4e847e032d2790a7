# Two commands: `make book` (execute every chapter, render the HTML book) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# progress bars off while chapters execute unattended: their messages can flood the kernel's
# output queue during long training cells (nbval then loses the cell's final status)
QUIET := OCRSR_PROGRESS=0

# the book's pages load MathJax and the widget JavaScript from the site itself (pinned npm
# packages, checked against their SHA-256); the browser test drives Debian's Chromium
ASSETS := .web/.installed
CHROMIUM := /usr/bin/chromium
HTML := _build/html/index.html

.PHONY: book test lint bench notebooks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $(STAMP)

$(ASSETS): scripts/book_assets.sh
	scripts/book_assets.sh .web/static
	touch $(ASSETS)

$(CHROMIUM):
	scripts/install_chromium.sh

# Jupyter Book's execution cache re-runs only the chapters whose code changed; it is kept per
# profile and per version of the library (its sources and shipped weights), so that a changed
# profile or library re-executes every chapter. OCRSR_RETRAIN=1 re-executes every chapter and
# trains every run the cache lacks instead of loading the shipped weights.
PROFILE := $(or $(OCRSR_PROFILE),demo)
LIBRARY_VERSION := $(shell find ocrsr_lib -type f \( -name '*.py' -o -name '*.json' -o -name '*.safetensors' \) | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
EXECUTION := $(if $(filter 1,$(OCRSR_RETRAIN)),force,cache)

## Execute the chapters on the default (demo) profile (those whose code, profile or library
## changed since the last build) and render the HTML book into _build/html.
book: $(STAMP) $(ASSETS)
	mkdir -p _build
	sed -e 's/execute_notebooks: cache/execute_notebooks: $(EXECUTION)/' \
	    -e 's#cache: _build/.jupyter_cache#cache: $(CURDIR)/_build/.jupyter_cache/$(PROFILE)-$(LIBRARY_VERSION)#' \
	    -e 's#offline_book: book/_ext#offline_book: $(CURDIR)/book/_ext#' _config.yml > _build/book-config.yml
	$(QUIET) $(BIN)/jupyter-book build . --config _build/book-config.yml --warningiserror --keep-going
	@echo "Book rendered: _build/html/index.html"

# the HTML the browser test opens: make book's, or else the committed notebooks (with the outputs
# of the book's own run) rendered without executing them, whenever a source is newer
$(HTML): $(STAMP) $(ASSETS) _config.yml _toc.yml book/*.ipynb book/*.md book/_ext/*.py book/_ext/static/*
	mkdir -p _build
	sed -e 's/execute_notebooks: cache/execute_notebooks: "off"/' \
	    -e 's#offline_book: book/_ext#offline_book: $(CURDIR)/book/_ext#' _config.yml > _build/render-config.yml
	$(BIN)/jupyter-book build . --config _build/render-config.yml --warningiserror --keep-going

# nbval executes the chapters on the demo profile with the shipped weights (nothing trains), in
# a cache of its own that starts empty (so no cached reading hides a change in the code), and
# compares the cells marked NBVAL_CHECK_OUTPUT (the results) with the committed outputs, so a
# notebook whose numbers the current code no longer prints fails; tests/test_smoke_retrain.py
# retrains one chain of every recipe family on the smoke profile (1% of the demo's steps)
TEST_PROFILE ?= demo

## Lint, unit tests, re-execute every chapter with nbval (on TEST_PROFILE), then open every
## page of the rendered book in headless Chromium (screenshots in _build/browser).
test: $(STAMP) $(ASSETS) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/pytest -q tests --ignore=tests/browser
	rm -rf _build/test-cache
	$(QUIET) OCRSR_CACHE=$(CURDIR)/_build/test-cache OCRSR_RETRAIN=0 OCRSR_PROFILE=$(TEST_PROFILE) \
	    $(BIN)/pytest -q --nbval-lax --nbval-cell-timeout=1200 book/
	$(MAKE) $(HTML)
	$(BIN)/pytest -q tests/browser

## Re-execute the committed notebooks in place (for authors, after editing a chapter).
notebooks: $(STAMP)
	$(QUIET) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 book/*.ipynb

bench: $(STAMP)
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf _build
