# Two commands on a fresh machine:  make book  |  make test
# Both create .venv (Python 3.11) at the repository root if missing and install the pinned book environment
# (constraints.txt: jax 0.5.3 with neural-tangents, the reference), plus MathJax (npm, pinned below) so that the
# rendered book typesets math with no network. `make test` also creates .venv-current, the current environment
# (constraints-current.txt: the newest releases that install on this Python, no neural-tangents or TensorFlow),
# and runs the second leg there.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The current environment (second CI leg): any Python 3.11-3.13 with the newest jax it can install.
CURRENT_PYTHON ?= python3.11
CURRENT_VENV   := .venv-current
CURRENT_BIN    := $(CURRENT_VENV)/bin
CURRENT_STAMP  := $(CURRENT_VENV)/.installed
CURRENT_EXTRAS := test,sweep
# make device-check: paper scale by default (for a GPU machine); CI runs DEVICE_SCALE=small on the CPU
DEVICE_SCALE   ?= paper
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

# axe-core (make browser's accessibility checks), from npm like MathJax; the checksum pins the exact file the tests
# inject into every page (tests/test_browser.py reads $(AXE_ROOT)/axe.min.js).
AXE_VERSION := 4.14.1
AXE_SHA256  := 29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
AXE_ROOT    := $(VENV)/share/axe-core
AXE         := $(AXE_ROOT)/installed-$(AXE_VERSION)

# cffconvert validates CITATION.cff in the unit tests, from a venv of its own (constraints-cffconvert.txt says why)
CFFCONVERT_VENV := $(VENV)/share/cffconvert
CFFCONVERT      := $(CFFCONVERT_VENV)/bin/cffconvert

# make paper / make book PROFILE=paper: every chapter with profile="paper" into PAPER_DIR;
# extra papermill arguments, e.g. PAPERMILL_ARGS="-p n_values '[32, 64]'" for a CPU smoke run.
PROFILE        ?= ci
PAPER_DIR      ?= _build/paper
PAPERMILL_ARGS ?=
HTML_CHECK     := _build/check/_build/html

.PHONY: setup mathjax axe cffconvert pdf test test-fast test-pinned unit nbval book-check browser device-check setup-current \
        lock-current test-current bench bench-current gpu-wheels book paper assignments grade assignments-check robustness clean

setup: $(STAMP) $(MATHJAX)

## make mathjax: only the MathJax files (e.g. for a conda environment, which has no .venv/.installed)
mathjax: $(MATHJAX)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test,reference,sweep,course]"
	touch $(STAMP)

## make axe: only axe-core (the browser tests' accessibility checker)
axe: $(AXE)

$(AXE):
	@command -v npm >/dev/null || { echo "npm is required to install axe-core $(AXE_VERSION) (accessibility checks of make browser)"; exit 1; }
	rm -rf $(AXE_ROOT) && mkdir -p $(AXE_ROOT)
	npm install --prefix $(AXE_ROOT)/npm --no-save --no-package-lock --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION)
	cd $(AXE_ROOT)/npm/node_modules/axe-core && echo "$(AXE_SHA256)  axe.min.js" | sha256sum --check --quiet && \
	  cp axe.min.js LICENSE $(abspath $(AXE_ROOT))/
	rm -rf $(AXE_ROOT)/npm && touch $(AXE)

## make cffconvert: only the citation-file validator (its own venv, pinned in constraints-cffconvert.txt)
cffconvert: $(CFFCONVERT)

$(CFFCONVERT): constraints-cffconvert.txt
	test -x $(CFFCONVERT_VENV)/bin/python || $(PYTHON) -m venv $(CFFCONVERT_VENV)
	$(CFFCONVERT_VENV)/bin/python -m pip install --quiet -c constraints-cffconvert.txt cffconvert
	touch $(CFFCONVERT)

## make setup-current: .venv-current from constraints-current.txt (no neural-tangents, no TensorFlow)
setup-current: $(CURRENT_STAMP)

$(CURRENT_STAMP): pyproject.toml constraints-current.txt
	@command -v $(CURRENT_PYTHON) >/dev/null || { echo "$(CURRENT_PYTHON) not found; set CURRENT_PYTHON=/path/to/python3.x"; exit 1; }
	test -x $(CURRENT_BIN)/python || $(CURRENT_PYTHON) -m venv $(CURRENT_VENV)
	$(CURRENT_BIN)/python -m pip install --quiet --upgrade pip
	$(CURRENT_BIN)/python -m pip install --quiet -c constraints-current.txt -e ".[$(CURRENT_EXTRAS)]"
	touch $(CURRENT_STAMP)

## make lock-current: rewrite constraints-current.txt with the newest releases that install on CURRENT_PYTHON
## (a throw-away venv; commit the result so that CI stays reproducible)
lock-current:
	rm -rf _build/lock-current && mkdir -p _build && $(CURRENT_PYTHON) -m venv _build/lock-current
	_build/lock-current/bin/python -m pip install --quiet --upgrade pip
	_build/lock-current/bin/python -m pip install --quiet ".[$(CURRENT_EXTRAS)]"
	{ echo "# The current environment: newest releases for $$(_build/lock-current/bin/python --version), written by"; \
	  echo "# make lock-current on $$(date -u +%Y-%m-%d). No neural-tangents or TensorFlow (they need jax <= 0.5.3)."; \
	  _build/lock-current/bin/python -m pip freeze --all --exclude kdwide --exclude pip --exclude setuptools \
	  --exclude wheel; } > constraints-current.txt
	rm -rf _build/lock-current build  # build/: setuptools builds the non-editable install in the tree
	@grep -i "^jax==" constraints-current.txt

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
test: test-pinned test-current

## make test-pinned: the pinned book environment's leg
test-pinned: setup unit nbval book-check browser
	$(MAKE) device-check DEVICE_SCALE=small

## CURRENT_SEED: the seed of every chapter in the current leg: not the default (0) that the committed outputs use, so a
## check tuned to the default draw fails in CI; fixed, so CI stays reproducible (make robustness covers 20 more seeds)
CURRENT_SEED ?= 2718

## make test-current: the current environment's leg: unit tests (reference tests skip, saying why), every chapter
## executed (papermill-style parameters) with every claim required to hold (no nbval: XLA versions differ in the last bits),
## and the device check on the CPU
test-current: setup-current
	$(CURRENT_BIN)/python -c "import jax, sys; print(f'current environment: python {sys.version.split()[0]}, jax {jax.__version__}')"
	$(CURRENT_BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/test_browser.py --ignore=tests/test_pdf.py
	rm -rf _build/current
	$(CURRENT_BIN)/python -m kdwide_book.paper --profile ci --out _build/current --require-claims \
	  --papermill-args "-p seed $(CURRENT_SEED)"
	$(CURRENT_BIN)/python -m kdwide_book.device_check --scale small

## make device-check: paper-scale kernels on the default JAX device against stored float64 CPU values
## (DEVICE_SCALE=small for a CPU); on a GPU machine without make/.venv: python -m kdwide_book.device_check
device-check: setup
	$(BIN)/python -m kdwide_book.device_check --scale $(DEVICE_SCALE)

## make gpu-wheels: wheels (Python $(GPU_PYTHON_VERSION), x86-64 Linux) of what the chapters need beyond jax, numpy, scipy,
## pandas, matplotlib and scikit-learn (distributed: paper runs go through the Dask runner; plotly: the interactive
## figures), into _build/gpu-wheels, to carry to an offline GPU machine (README, GPU)
GPU_PYTHON_VERSION ?= 3.12
gpu-wheels:
	rm -rf _build/gpu-wheels && mkdir -p _build/gpu-wheels
	$(PYTHON) -m pip download --quiet --only-binary=:all: --python-version $(GPU_PYTHON_VERSION) \
	  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
	  --platform any -d _build/gpu-wheels papermill aiohttp ipykernel nbclient nbformat jupyter_client tqdm PyYAML distributed plotly
	@du -sh _build/gpu-wheels

## make bench / make bench-current: the three benchmarks in either environment (ratios measured in one run)
bench: setup
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

bench-current: setup-current
	for b in benchmarks/*.py; do echo "== $$b"; $(CURRENT_BIN)/python $$b || exit 1; done

unit: setup $(CFFCONVERT)
	KDWIDE_CFFCONVERT=$(CFFCONVERT) $(BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/test_browser.py --ignore=tests/test_pdf.py

## make test-fast: the developers' loop, under 3 minutes on 2 cores: the unit tests that start no Jupyter kernel, open
## no browser, grade nothing and are not slow (pytest markers, pyproject.toml), on FAST_WORKERS processes (pytest-xdist,
## one test file per worker at a time); each test fails after FAST_TIMEOUT s
FAST_TESTS   := not kernel and not browser and not grading and not slow
FAST_TIMEOUT ?= 120
FAST_WORKERS ?= 2
test-fast: setup
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -m "$(FAST_TESTS)" --timeout=$(FAST_TIMEOUT) \
	  -n $(FAST_WORKERS) --dist loadfile

nbval: setup
	$(BIN)/python -m pytest --nbval book -p no:cacheprovider -v --nbval-sanitize-with .ci/nbval-sanitize.cfg

book-check: setup
	rm -rf _build/check
	sed 's/execute_notebooks: force/execute_notebooks: "off"/' _config.yml > _build_config_check.yml
	$(BIN)/jupyter-book build . --config _build_config_check.yml --path-output _build/check -W --keep-going -q; \
	  status=$$?; rm -f _build_config_check.yml; exit $$status

## make browser: opens every page of the book-check render (screenshots in _build/screenshots/): math, images, explorers
## (mouse and keyboard), axe-core on every page, dark mode, a phone-sized window; then prints it to PDF and reads the
## PDF back (tests/test_pdf.py: titles, math, figures)
browser: setup $(AXE)
	KDWIDE_HTML=$(HTML_CHECK) KDWIDE_AXE=$(AXE_ROOT)/axe.min.js $(BIN)/python -m pytest tests/test_browser.py tests/test_pdf.py -v -p no:cacheprovider

## make pdf: the whole book as one PDF: the committed outputs rendered into _build/pdf with the download menu offering
## the PDF, then printed by headless Chromium (Debian's chromium + chromium-driver; kdwide_book.pdf says why) beside
## that render's index.html and into _build/kd-wide-book.pdf
PDF_HTML := _build/pdf/_build/html
pdf: setup
	rm -rf _build/pdf && mkdir -p _build
	sed -e 's/execute_notebooks: force/execute_notebooks: "off"/' \
	  -e 's/^    kdwide_whole_book_pdf: ""/    kdwide_whole_book_pdf: kd-wide-book.pdf/' _config.yml > _build_config_pdf.yml
	$(BIN)/jupyter-book build . --config _build_config_pdf.yml --path-output _build/pdf -W --keep-going -q; \
	  status=$$?; rm -f _build_config_pdf.yml; exit $$status
	$(BIN)/python -m kdwide_book.pdf $(PDF_HTML) $(PDF_HTML)/kd-wide-book.pdf
	cp $(PDF_HTML)/kd-wide-book.pdf _build/kd-wide-book.pdf
	@echo "Whole-book PDF: $(CURDIR)/_build/kd-wide-book.pdf (the render offering it: $(PDF_HTML)/index.html)"

## make book: executes every chapter with its default parameters and renders _build/html
## (make book PROFILE=paper is make paper; make book AUDIENCE=student renders the student edition, below)
ifeq ($(AUDIENCE),student)
## make book AUDIENCE=student: the book without solutions (exercises, graded questions and public tests kept), from the
## committed outputs, into _build/student/_build/html (sources in _build/student/src)
book: setup
	rm -rf _build/student
	$(BIN)/python -m kdwide_book.assignments student-book --out _build/student
	$(BIN)/jupyter-book build _build/student/src --path-output _build/student -W --keep-going
	@echo "Student book: $(CURDIR)/_build/student/_build/html/index.html"
else ifeq ($(PROFILE),paper)
book: paper
else
book: setup
	$(BIN)/jupyter-book build . --all -W --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"
endif

## make paper: every chapter at paper scale (profile="paper", meant for a GPU) into $(PAPER_DIR), committed
## notebooks untouched; executed notebooks, results files and timings.json there
paper: setup
	$(BIN)/python -m kdwide_book.paper --out $(PAPER_DIR) --papermill-args "$(PAPERMILL_ARGS)"

## make assignments: otter-grader assignments of every chapter in _build/assignments: student notebooks, one
## Gradescope autograder zip per chapter (graded by kdwide_book.judge), instructor notebooks, an instructor guide
## (README.md). The autograder installs the pinned set (ASSIGNMENT_ENV=current: constraints-current.txt); GRADING_SEED:
## the seed that, with a fresh nonce per grading, draws the inputs the judge calls the students' functions on.
ASSIGNMENT_ENV ?= pinned
GRADING_SEED   ?= 0
assignments: setup
	$(BIN)/python -m kdwide_book.assignments build --out _build/assignments --environment $(ASSIGNMENT_ENV) --seed $(GRADING_SEED)

## make grade SUBMISSIONS=DIR: grades DIR/<student>/<student notebook>.ipynb with the judge (a process of its own per
## notebook, fresh kernel, GRADE_TIMEOUT seconds per notebook) into DIR/grades.csv and DIR/<student>/feedback.md
GRADE_TIMEOUT ?= 900
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=DIR (DIR/<student>/<notebook>.ipynb)"; exit 2; }
	test -f _build/assignments/course.json || $(MAKE) assignments
	$(BIN)/python -m kdwide_book.assignments grade "$(SUBMISSIONS)" --assignments _build/assignments --timeout $(GRADE_TIMEOUT)

## make assignments-check: every chapter's assignment graded: the instructor's version and an alternative correct
## solution full marks; the untouched student version and two attackers 0
assignments-check: setup
	KDWIDE_GRADE_ALL=1 $(BIN)/python -m pytest tests/test_assignments.py -k every_chapter -p no:cacheprovider -v --timeout=3600

clean:
	rm -rf _build

## make robustness: every chapter at 20 seeds that no chapter uses by default (kdwide sweep, resumable: rerun after an
## interruption), then book/data/robustness_claims.csv (each claim's hold rate, 95% Wilson interval) and
## robustness_runs.csv (every run's verdict and evidence), which the appendix "How robust are the claims?" reads.
ROBUSTNESS_OUT  ?= runs/robustness
ROBUSTNESS_JOBS ?= 2
robustness: setup
	$(BIN)/python -m kdwide_book.robustness run --out $(ROBUSTNESS_OUT) --jobs $(ROBUSTNESS_JOBS)
	$(BIN)/python -m kdwide_book.robustness collect --out $(ROBUSTNESS_OUT) --to book/data
