# Two commands: `make book` (execute every chapter, render the HTML book) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# progress bars off while chapters execute unattended: their messages can flood the kernel's
# output queue during long training cells (nbval then loses the cell's final status)
QUIET := OCRSR_PROGRESS=0

.PHONY: book test lint bench notebooks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $(STAMP)

## Execute every chapter on the default (demo) profile and render the HTML book into _build/html.
book: $(STAMP)
	$(QUIET) $(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Book rendered: _build/html/index.html"

# the profile nbval executes the chapters on: `smoke` runs every cell's code path with the demo's
# data and models at 5% of the training steps; `make test TEST_PROFILE=demo` checks the book's own
# run (as long as `make book` from an empty cache: chapters 1 to 3 took about 45 min on 2 cores)
TEST_PROFILE ?= smoke

## Lint, unit tests, then re-execute every chapter with nbval (on TEST_PROFILE).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q tests
	$(QUIET) OCRSR_PROFILE=$(TEST_PROFILE) $(BIN)/pytest -q --nbval-lax --nbval-cell-timeout=3600 book/

## Re-execute the committed notebooks in place (for authors, after editing a chapter).
notebooks: $(STAMP)
	$(QUIET) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 book/*.ipynb

bench: $(STAMP)
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf _build
