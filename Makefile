# Task runner. The README's two commands are `make book` and `make test`.
# Each target sets up .venv first (idempotent), so either works on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NBDIR := _build/nbval
# No MPLBACKEND here: notebook kernels inherit the environment, and Agg would stop the
# inline backend from putting figures on the pages. tests/conftest.py picks Agg for the
# unit tests; nbval's kernels use the non-interactive inline backend.
export COMPANION_PROGRESS := summary
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: setup book test unit notebooks site-check lint bench clean nbtest

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[reference,book,test]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3"
	touch $(STAMP)

# Headless Chromium for the browser check of the built site (Debian's packages), with a
# CJK font and an emoji font so that the glossary's Chinese terms and the status page's
# symbols render in the screenshots.
BROWSER_PKGS := chromium fonts-wqy-zenhei fonts-noto-color-emoji
$(VENV)/.chromium: | $(STAMP)
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list | grep -qi "wenquanyi" \
	    || ! fc-list | grep -qi "color emoji"; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(BROWSER_PKGS); fi
	touch $@

book: setup
	# --all: a fresh Sphinx environment every time, so warnings from unchanged pages are
	# reported again and -W still fails; executed outputs come from the warm cache.
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	$(BIN)/python tools/check_build.py _build/html
	@echo "Open _build/html/index.html"

unit: setup
	$(BIN)/python -m pytest tests --ignore=tests/site -q

notebooks: setup
	rm -rf $(NBDIR) && mkdir -p $(NBDIR)
	$(BIN)/python tools/notebooks_to_ipynb.py $(NBDIR)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 --durations=15 \
	  -p no:cacheprovider -q $(NBDIR)

site-check: setup $(VENV)/.chromium
	$(BIN)/python -m pytest tests/site -q

test: lint unit notebooks book site-check

lint: setup
	$(BIN)/ruff check companion tests tools
	$(BIN)/ruff format --check companion tests tools

bench: setup
	$(BIN)/python -m companion.bench --out bench.json

# Execute one page under nbval: make nbtest NB=book/beginner/dcgan.md
nbtest: setup
	@test -n "$(NB)" || { echo "usage: make nbtest NB=book/<part>/<page>.md"; exit 2; }
	rm -rf $(NBDIR)/one
	IPYNB=$$($(BIN)/python tools/notebooks_to_ipynb.py $(NBDIR)/one $(NB)) && \
	  $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	  -p no:cacheprovider -q $$IPYNB

clean:
	rm -rf _build
