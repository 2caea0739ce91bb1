# Two commands: `make run` and `make test`. Only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv lint schemas bench clean audit

# A new venv holds the setuptools its Python shipped (old, with known vulnerabilities): upgrade it with pip.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m services.runtime.launcher

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench

# Known vulnerabilities in the installed packages fail it; an unreachable vulnerability service only warns.
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet "pip-audit>=2.7"
	$(BIN)/python .ci/pip_audit_gate.py

schemas: $(STAMP)
	$(BIN)/python -m services.contract.schemagen

clean:
	rm -rf var
