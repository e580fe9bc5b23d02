#!/usr/bin/env bash
# Creates .venv (if missing) and installs rappelx with its dev extras into it.
# Safe to run again: it only reinstalls when pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${RAPPELX_PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi
if [ -z "$python" ]; then
    echo "rappelx needs Python 3.11 or newer; install it (e.g. 'apt install python3') and retry" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.rappelx-installed
digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
# The stamp holds the pyproject digest and the extras installed with it. A run asking
# for extras already there does nothing (an install with dev,bench serves a test run);
# otherwise the extras there are kept and the ones asked for added.
read -r stamped installed 2>/dev/null < "$stamp" || { stamped=""; installed=""; }
[ "$stamped" = "$digest" ] || installed=""
extras="$installed"
for extra in $(echo "${RAPPELX_EXTRAS:-dev}" | tr ',' ' '); do
    case ",$extras," in
        *",$extra,"*) ;;
        *) extras="${extras:+$extras,}$extra" ;;
    esac
done
if [ "$stamped" != "$digest" ] || [ "$extras" != "$installed" ]; then
    echo "installing rappelx and its dependencies into .venv (first run only)..." >&2
    if ! { .venv/bin/python -m pip install --upgrade pip &&
           .venv/bin/python -m pip install -e ".[$extras]"; } > .venv/install.log 2>&1; then
        cat .venv/install.log >&2
        echo "installing into .venv failed; see the log above" >&2
        exit 1
    fi
    echo "$digest $extras" > "$stamp"
fi
