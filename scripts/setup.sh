#!/usr/bin/env bash
# Set up forensic_app in ./.venv and fetch the CenterFace model (the only network step).
#
#   bash scripts/setup.sh           app only (what an investigator running from source needs)
#   bash scripts/setup.sh --dev     + tests, training (torch, timm) and packaging tools
#
# Safe to run again: it reuses .venv and skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [[ "${1:-}" == "--dev" ]]; then
    extras="[test,train,package]"
fi

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
    done
fi
"$python_bin" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'

if [[ ! -x .venv/bin/python ]]; then
    "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
.venv/bin/python -m forensic_app.fetch_models
echo "forensic_app is set up in .venv"
