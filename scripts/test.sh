#!/usr/bin/env bash
# Runs the whole test suite: sets up .venv, boots a throwaway Postgres for the
# integration tests (tests/conftest.py does that through rappelx's embedded Postgres),
# then runs ruff, mypy and pytest. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
.venv/bin/ruff check rappelx tests examples benchmarks
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected no tests; treat that as a failure of the suite's set-up.
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
