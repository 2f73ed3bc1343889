# Two commands on a fresh machine:  make book  |  make test
# Both create .venv (Python 3.11) at the repository root if missing and install the pinned set (constraints.txt).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export MPLBACKEND := Agg

.PHONY: setup test unit nbval book-check book clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

## make test: unit tests, nbval over every committed chapter, a warnings-as-errors render of the committed book
test: setup unit nbval book-check

unit: setup
	$(BIN)/python -m pytest tests -q

nbval: setup
	$(BIN)/python -m pytest --nbval book -p no:cacheprovider -v --nbval-sanitize-with .ci/nbval-sanitize.cfg

book-check: setup
	rm -rf _build/check
	sed 's/execute_notebooks: force/execute_notebooks: "off"/' _config.yml > _build_config_check.yml
	$(BIN)/jupyter-book build . --config _build_config_check.yml --path-output _build/check -W --keep-going -q; \
	  status=$$?; rm -f _build_config_check.yml; exit $$status

## make book: executes every chapter with its default parameters and renders _build/html
book: setup
	$(BIN)/jupyter-book build . --all -W --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

clean:
	rm -rf _build
