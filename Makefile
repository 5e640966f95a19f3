# Quick start: `make sweep` (the epsilon sweep, Figure 12) and `make test` (the suite).
# Both create .venv and install the package on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: sweep test theory figures bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

sweep: $(STAMP)
	$(VENV)/bin/python -m sims.epsilon_sweep

test: $(STAMP)
	$(VENV)/bin/python -m pytest

theory: $(STAMP)
	$(VENV)/bin/python -m theory

bench: $(STAMP)
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
