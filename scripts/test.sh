#!/usr/bin/env bash
# The whole test suite: lint, Rasa data validation and story tests, then pytest
# (unit, storage on SQLite and PostgreSQL, and integration against a real Rasa server).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m[test]\033[0m %s\n' "$*"; }

say "ruff"
.venv/bin/ruff check .

say "Rasa model (trained only when domain, config or data changed)"
model="$(.venv/bin/python -c 'from tandem.rasa_model import ensure_model; print(ensure_model())' | tail -n 1)"

say "Sentiment model (trained only when the corpus or training recipe changed)"
.venv/bin/python -m sentiment.train

export PYTHONPATH="$PWD" TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false PYTHONWARNINGS=ignore
say "rasa data validate"
.venv-rasa/bin/rasa data validate --fail-on-warnings --domain domain.yml \
  --data data/nlu.yml data/rules.yml data/stories.yml

say "rasa test (stories in tests/test_stories.yml)"
rm -rf var/rasa-test-results
.venv-rasa/bin/rasa test core --model "$model" --stories tests/test_stories.yml \
  --out var/rasa-test-results --fail-on-prediction-errors --no-plot
if grep -q '^- story' var/rasa-test-results/failed_test_stories.yml 2>/dev/null; then
  echo "rasa test: failed stories are listed in var/rasa-test-results/failed_test_stories.yml" >&2
  exit 1
fi
echo "rasa test: no failed story"

say "Chromium for the browser tests"
bash scripts/chromium.sh

say "pytest"
.venv/bin/python -m pytest "$@"
