# Two commands on a fresh machine:  make book  |  make test
# Both create .venv (Python 3.11) at the repository root if missing and install the pinned set (constraints.txt),
# plus MathJax (npm, pinned below) so that the rendered book typesets math with no network.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# MathJax 3 served from the built site (_config.yml: html_static_path, mathjax_path). The npm package is
# immutable per version; the checksum pins the exact file the book loads.
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA256  := 300480069078b5892d2363a2b65e2dfbbf30fe5c80f83edbfecf4610fd093862
MATHJAX_ROOT    := $(VENV)/share/mathjax
# a stamp per version (a new version reinstalls); the files the book serves are in $(MATHJAX_ROOT)/static/mathjax/
MATHJAX         := $(MATHJAX_ROOT)/installed-$(MATHJAX_VERSION)

# make paper / make book PROFILE=paper: every chapter with profile="paper" (papermill) into PAPER_DIR;
# extra papermill arguments, e.g. PAPERMILL_ARGS="-p n_values '[32, 64]'" for a CPU smoke run.
PROFILE        ?= ci
PAPER_DIR      ?= _build/paper
PAPERMILL_ARGS ?=
HTML_CHECK     := _build/check/_build/html

.PHONY: setup mathjax test unit nbval book-check browser book paper assignments clean

setup: $(STAMP) $(MATHJAX)

## make mathjax: only the MathJax files (e.g. for a conda environment, which has no .venv/.installed)
mathjax: $(MATHJAX)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is required to install MathJax $(MATHJAX_VERSION) (offline math in the book)"; exit 1; }
	rm -rf $(MATHJAX_ROOT) && mkdir -p $(MATHJAX_ROOT)/incoming/mathjax
	npm install --prefix $(MATHJAX_ROOT)/npm --no-save --no-package-lock --no-audit --no-fund --loglevel=error mathjax@$(MATHJAX_VERSION)
	cd $(MATHJAX_ROOT)/npm/node_modules/mathjax && echo "$(MATHJAX_SHA256)  es5/tex-mml-chtml.js" | sha256sum --check --quiet && \
	  cp LICENSE $(CURDIR)/$(MATHJAX_ROOT)/incoming/mathjax/ && cd es5 && \
	  cp -R tex-mml-chtml.js core.js loader.js startup.js input output ui a11y adaptors sre $(CURDIR)/$(MATHJAX_ROOT)/incoming/mathjax/
	rm -rf $(MATHJAX_ROOT)/npm && mv $(MATHJAX_ROOT)/incoming $(MATHJAX_ROOT)/static && touch $(MATHJAX)

## make test: unit tests, nbval over every committed chapter, a warnings-as-errors render of the committed book,
## and every page of that render opened in headless Chromium (skipped, saying why, where Chromium is missing)
test: setup unit nbval book-check browser

unit: setup
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/test_browser.py

nbval: setup
	$(BIN)/python -m pytest --nbval book -p no:cacheprovider -v --nbval-sanitize-with .ci/nbval-sanitize.cfg

book-check: setup
	rm -rf _build/check
	sed 's/execute_notebooks: force/execute_notebooks: "off"/' _config.yml > _build_config_check.yml
	$(BIN)/jupyter-book build . --config _build_config_check.yml --path-output _build/check -W --keep-going -q; \
	  status=$$?; rm -f _build_config_check.yml; exit $$status

## make browser: opens every page of the book-check render (screenshots in _build/screenshots/)
browser: setup
	KDWIDE_HTML=$(HTML_CHECK) $(BIN)/python -m pytest tests/test_browser.py -v -p no:cacheprovider

## make book: executes every chapter with its default parameters and renders _build/html
## (make book PROFILE=paper is make paper)
ifeq ($(PROFILE),paper)
book: paper
else
book: setup
	$(BIN)/jupyter-book build . --all -W --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"
endif

## make paper: every chapter at paper scale (profile="paper", meant for a GPU) into $(PAPER_DIR), committed
## notebooks untouched; executed notebooks, results files and timings.json there
paper: setup
	$(BIN)/python -m kdwide.book paper --out $(PAPER_DIR) --papermill-args "$(PAPERMILL_ARGS)"

## make assignments: student notebooks (solution cells replaced by stubs) and the autograder in _build/assignments
assignments: setup
	$(BIN)/python -m kdwide.assignments build --out _build/assignments

clean:
	rm -rf _build
