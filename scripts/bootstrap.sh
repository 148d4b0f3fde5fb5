#!/usr/bin/env bash
# Create the virtual environment with Python >= 3.11 and install the project into it.
set -euo pipefail
python="${1:-python3}"
venv="${2:-.venv}"

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    for candidate in python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "yQuant needs Python 3.11 or newer (found: $("$python" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian and Ubuntu ship venv separately.
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            minor="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt-get update -qq && apt-get install -y -qq "python${minor}-venv" || apt-get install -y -qq python3-venv
            rm -rf "$venv"
            "$python" -m venv "$venv"
        else
            echo "python venv is missing: install it (e.g. sudo apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi
# pip's and the build backend's chatter goes to a log, shown only when the install fails, so the
# first `make run` ends with yQuant's own banner rather than a screen of build warnings.
log="$venv/install.log"
echo "[yquant] installing into $venv (first run only; log: $log)"
if ! { "$venv/bin/python" -m pip install -q "pip==26.3" &&
       "$venv/bin/python" -m pip install -q -e '.[dev]' -c requirements-dev.lock; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "[yquant] the install failed; the lines above say why (also in $log)" >&2
    exit 1
fi
