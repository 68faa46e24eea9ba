#!/usr/bin/env bash
# Build the Linux packages of forensic_app in one command:
#
#   bash packaging/build_linux.sh            -> dist/forensic-app/ (onedir bundle),
#                                               dist/forensic-app-<version>-linux-<arch>.tar.gz,
#                                               dist/forensic-app_<version>_<arch>.deb,
#                                               dist/build-linux.json (what was built, sizes)
#   bash packaging/build_linux.sh --no-deb   -> skip the .deb (machines without dpkg-deb)
#   bash packaging/build_linux.sh --compress-level 1   -> ~20% faster, ~10% larger archives (tests)
#
# Needs: the dev set-up (`bash scripts/setup.sh --dev`, or `pip install -e .[package]` and
# `python -m forensic_app.fetch_models`), the trained gender model in models/, and dpkg-deb.
# Intermediate files go to build/; nothing outside dist/ and build/ is written.
# PYTHON=/path/to/python overrides the interpreter (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

py="${PYTHON:-}"
if [[ -z "$py" ]]; then
    if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; else py=python3; fi
fi
"$py" -c 'import PyInstaller' 2>/dev/null \
    || { echo "PyInstaller is missing: pip install -e '.[package]'" >&2; exit 2; }

fingerprint="$("$py" -c 'import sys; sys.path.insert(0, "packaging"); import linux_package as p; print(p.source_fingerprint())')"

echo "== PyInstaller (onedir) -> dist/forensic-app/"
nice -n "${BUILD_NICE:-5}" "$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/forensic_app.spec

# The interpreter's own libraries may carry debug info (pyenv builds do: +25 MB); wheels are
# already stripped and are left alone.
if command -v strip >/dev/null 2>&1; then
    find dist/forensic-app/_internal -maxdepth 1 -type f -name 'libpython3*.so*' \
        -exec strip --strip-debug {} +
    find dist/forensic-app/_internal -path '*/lib-dynload/*.so' -type f \
        -exec strip --strip-debug {} +
fi

echo "== .tar.gz and .deb"
"$py" packaging/linux_package.py --dist dist --work build/deb --fingerprint "$fingerprint" "$@"
echo "== done: dist/"
ls -l dist | grep -E '\.(deb|tar\.gz|json)$' || true
