#!/usr/bin/env bash
# Set up forensic_app in ./.venv and fetch the CenterFace model (the only network step).
#
#   bash scripts/setup.sh           app only (what an investigator running from source needs)
#   bash scripts/setup.sh --dev     + tests, training (torch, timm), packaging tools and the Dask
#                                   cluster extra (distributed), so the cluster tests run too
#
# Safe to run again: it reuses .venv and skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [[ "${1:-}" == "--dev" ]]; then
    extras="[test,train,package,cluster]"
fi

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
    done
fi
"$python_bin" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'

# Qt's window (xcb platform plugin) needs a few system libraries that a fresh Debian/Ubuntu may
# lack; install them when we can (root or password-less sudo), else say which are missing.
qt_libs=(libxcb-cursor0:libxcb-cursor.so.0 libxcb-icccm4:libxcb-icccm.so.4
         libxcb-keysyms1:libxcb-keysyms.so.1 libxcb-image0:libxcb-image.so.0
         libxcb-render-util0:libxcb-render-util.so.0 libxcb-shape0:libxcb-shape.so.0
         libxcb-xkb1:libxcb-xkb.so.1 libxkbcommon-x11-0:libxkbcommon-x11.so.0
         libegl1:libEGL.so.1 libgl1:libGL.so.1 libfontconfig1:libfontconfig.so.1
         libdbus-1-3:libdbus-1.so.3)
missing=()
if [[ "$(uname -s)" == "Linux" ]] && command -v ldconfig >/dev/null 2>&1; then
    # Capture the cache once and match in bash: "ldconfig -p | grep -q" under pipefail fails
    # when grep exits at the first match and ldconfig dies of SIGPIPE, so an installed library
    # was sometimes reported missing.
    ld_cache="$(ldconfig -p 2>/dev/null || true)"
    for entry in "${qt_libs[@]}"; do
        [[ "$ld_cache" == *"${entry#*:}"* ]] || missing+=("${entry%%:*}")
    done
fi
# --dev: screenshots of the real window are taken under Xvfb (xvfb-run, scripts/screenshot*.py).
if [[ -n "$extras" && "$(uname -s)" == "Linux" ]] && ! command -v xvfb-run >/dev/null 2>&1; then
    missing+=(xvfb xauth)
fi
if (( ${#missing[@]} )); then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]]; then
        apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
    elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "note: the window needs these system packages: ${missing[*]}" >&2
        echo "      (e.g. sudo apt-get install ${missing[*]}); the command line works without them" >&2
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
.venv/bin/python -m forensic_app.fetch_models
echo "forensic_app is set up in .venv"
