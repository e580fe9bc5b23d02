#!/usr/bin/env bash
# Runs the example workflow durably, end to end: sets up .venv, boots (or reuses) the
# embedded Postgres, starts `rappelx workers` in the background, queues one instance with
# `rappelx run`, prints its result, then stops the workers with SIGTERM.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
export PATH="$root/.venv/bin:$PATH"
input="${1:-{\"user_id\": \"u1\"\}}"
rappelx db migrate
rappelx workers --module examples.greeting --processes 1 &
workers=$!
trap 'kill -TERM "$workers" 2>/dev/null || true; wait "$workers" 2>/dev/null || true' EXIT
rappelx run examples.greeting:Greeting --input "$input" --timeout 60
