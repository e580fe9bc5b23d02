#!/usr/bin/env bash
# Runs benchmarks/run.py: rappelx beside DBOS Transact and a raw Postgres queue (the
# ceiling), on one Postgres, in one invocation. Sets up .venv with the bench extra (DBOS)
# first; arguments go to run.py (--quick, --runs N, --only chain,latency, --json FILE).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
RAPPELX_EXTRAS="${RAPPELX_EXTRAS:-dev,bench}" scripts/bootstrap.sh
exec .venv/bin/python benchmarks/run.py "$@"
