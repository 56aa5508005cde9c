# The two commands of the README are `make run` and `make test`; both install what is missing.
.PHONY: setup run test lint train validate bench
SHELL := /bin/bash

setup:
	@bash scripts/setup.sh

run: setup
	@.venv/bin/python -m tandem.run

test: setup
	@bash scripts/test.sh

lint: setup
	@.venv/bin/ruff check .

train: setup
	@.venv/bin/python -c "from tandem.rasa_model import ensure_model; print(ensure_model())"

bench: setup
	@.venv/bin/python bench/nlu.py
