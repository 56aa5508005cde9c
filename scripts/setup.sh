#!/usr/bin/env bash
# Installs what is missing and nothing else: the app virtualenv (.venv, Python 3.11)
# and the Rasa virtualenv (.venv-rasa, Python 3.8-3.10). Safe to run again: each
# venv carries a stamp of what it was built from and is only rebuilt when that changes.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# A python that runs and has one of the wanted versions ("3.10 3.9 3.8").
find_python() {
  local wanted="$1" explicit="${2:-}" candidate version
  local candidates=()
  [ -n "$explicit" ] && candidates+=("$explicit")
  local root=""
  command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null || true)"
  [ -z "$root" ] && [ -d "$HOME/.pyenv" ] && root="$HOME/.pyenv"
  for version in $wanted; do
    candidates+=("python$version" "/usr/bin/python$version" "/usr/local/bin/python$version")
    if [ -n "$root" ]; then
      for candidate in "$root"/versions/"$version".*/bin/python; do
        [ -x "$candidate" ] && candidates+=("$candidate")
      done
    fi
  done
  candidates+=("python3")
  for candidate in "${candidates[@]}"; do
    if command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ]; then
      version="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
      for wanted_version in $wanted; do
        if [ "$version" = "$wanted_version" ] && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
          command -v "$candidate" 2>/dev/null || echo "$candidate"
          return 0
        fi
      done
    fi
  done
  return 1
}

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- app venv ---------------------------------------------------------------
app_stamp="$(stamp_of pyproject.toml)"
if [ "$(cat .venv/.tandem-stamp 2>/dev/null || true)" != "$app_stamp" ]; then
  python311="$(find_python "3.11" "${TANDEM_PYTHON311:-}")" || die \
    "Tandem's app needs Python 3.11, and none was found. Install it (for example 'pyenv install 3.11' or 'apt-get install python3.11 python3.11-venv'), or set TANDEM_PYTHON311=/path/to/python3.11."
  say "app venv: Python 3.11 at $python311"
  [ -x .venv/bin/python ] || "$python311" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of torch first, so that no dependency pulls a CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$app_stamp" > .venv/.tandem-stamp
  say "app venv ready"
fi

# --- Rasa venv --------------------------------------------------------------
rasa_stamp="$(stamp_of requirements-rasa.txt)"
if [ "$(cat .venv-rasa/.tandem-stamp 2>/dev/null || true)" != "$rasa_stamp" ]; then
  python310="$(find_python "3.10 3.9 3.8" "${TANDEM_PYTHON310:-}")" || die \
    "Rasa 3.6 needs Python 3.8, 3.9 or 3.10, and none was found. Install Python 3.10 (for example 'pyenv install 3.10.13', or 'apt-get install python3.10 python3.10-venv' where your system offers it), or set TANDEM_PYTHON310=/path/to/python3.10."
  say "Rasa venv: $("$python310" --version) at $python310"
  [ -x .venv-rasa/bin/python ] || "$python310" -m venv .venv-rasa
  .venv-rasa/bin/python -m pip install -q --upgrade "pip<25"
  .venv-rasa/bin/python -m pip install -q -r requirements-rasa.txt
  echo "$rasa_stamp" > .venv-rasa/.tandem-stamp
  say "Rasa venv ready"
fi
