# crm-keys: `make run` (the app with demo data) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The development .env (written by the `.env` target below) is read only by what make starts:
# settings ignore it unless this is set, so a stray .env never turns DEBUG on in production.
export CRM_KEYS_READ_DOTENV ?= 1

.PHONY: run test lint format bench venv migrate demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.env:
	$(PYTHON) scripts/make_dotenv.py

migrate: venv .env
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

## The app with demo data and the background jobs, on http://127.0.0.1:8000 (Ctrl-C stops all).
## scripts/run-dev.sh loads the demo data itself, to print the login and the keys last.
run: migrate
	@bash scripts/run-dev.sh

## The whole test suite.
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmarks (never part of `make test`).
bench: venv
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf var .venv
