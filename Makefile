# The two commands of the README are `make run` and `make test`; both install what is missing.
.PHONY: setup run test test-fast lint train validate bench
SHELL := /bin/bash

setup:
	@bash scripts/setup.sh

run: setup
	@.venv/bin/python -m tandem.run

test: setup
	@bash scripts/test.sh

# A few minutes: lint and every test that needs no Rasa, PostgreSQL, Redis, browser or trained
# model (tests get those marks automatically, see tests/conftest.py).
test-fast: setup
	@.venv/bin/ruff check .
	@.venv/bin/python -m pytest -q -m "not rasa and not postgres and not redis and not browser and not model and not fuzz" $(ARGS)

lint: setup
	@.venv/bin/ruff check .

train: setup
	@.venv/bin/python -c "from tandem.rasa_model import ensure_model; print(ensure_model())"

bench: setup
	@.venv/bin/python bench/nlu.py
