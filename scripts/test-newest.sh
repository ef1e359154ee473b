#!/usr/bin/env bash
# Runs the `test:newest` task of every package that has one: its suites on Node 24 (fetched by
# scripts/second-node.sh) against the newest majors of its SDKs (openai 7, @google/genai 3), after
# typechecking against their types. The normal `test` task covers Node 20 and the oldest majors.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
bash scripts/second-node.sh >/dev/null
pnpm turbo run test:newest --concurrency=1 "$@"
