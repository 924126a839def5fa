# brokerlab: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow coverage lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,lab,dask]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/brokerlab run

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy broker model sim

# Two workers (pytest-xdist): the machines have 2 cores. Doctests of the three packages run too;
# the branch coverage of broker/ must stay >= 95% (fail_under in pyproject.toml).
test: lint typecheck
	$(BIN)/pytest -n 2 --doctest-modules --cov --cov-branch --cov-report=term-missing:skip-covered \
		-q broker model sim tests

# Branch coverage of all three packages; slower than `make test` (tracing the checker and
# simulator loops), so it is a target of its own.
coverage: $(STAMP)
	$(BIN)/pytest -n 2 --doctest-modules --cov=broker --cov=model --cov=sim --cov-branch \
		--cov-report=term-missing:skip-covered --cov-fail-under=0 -q broker model sim tests

test-slow: $(STAMP)
	$(BIN)/pytest -m slow -q

bench: $(STAMP)
	$(BIN)/python -m sim.bench --out bench-results.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
