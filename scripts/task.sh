#!/usr/bin/env bash
# One entry point for a newcomer's machine that has only Node: finds (or fetches) the pinned pnpm,
# installs the workspace, then runs the requested task.
#   bash scripts/task.sh demo    build and run apps/quickstart (setup output goes to a log file,
#                                printed only when the setup fails)
#   bash scripts/task.sh test    lint, typecheck, every test suite, the fault-injection suites,
#                                then the consumer test (scripts/consumer-test.sh)
#   bash scripts/task.sh bench   build and run the benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
export TURBO_TELEMETRY_DISABLED=1
export DO_NOT_TRACK=1
# No "update available" banner from pnpm (or npm).
export npm_config_update_notifier=false
# better-sqlite3 compiles from source; node-gyp must use the local Node headers, not download them.
if [ -z "${npm_config_nodedir:-}" ] && [ -d /usr/include/node ]; then
  export npm_config_nodedir=/usr
fi

if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$PNPM_VERSION" ]; then
  pnpm() { command pnpm "$@"; }
else
  pnpm() { npx -y "pnpm@$PNPM_VERSION" "$@"; }
fi

task="${1:-test}"

case "$task" in
  demo)
    log="$(mktemp -t ctx-demo-setup-XXXXXX.log)"
    started=$SECONDS
    echo "ctx demo: installing and building (about a minute the first time; log: $log)"
    if ! { pnpm install --frozen-lockfile && pnpm turbo run build --filter=quickstart...; } >"$log" 2>&1; then
      cat "$log"
      echo "ctx demo: setup failed; the full log is above and in $log" >&2
      exit 1
    fi
    rm -f "$log"
    echo "ctx demo: ready after $((SECONDS - started)) s"
    echo
    pnpm --silent --filter quickstart start
    ;;
  test)
    pnpm install --frozen-lockfile
    bash scripts/services.sh
    pnpm turbo run lint
    pnpm turbo run build typecheck
    pnpm turbo run test --concurrency=1
    # The SDK adapters' and integrations' suites again on Node 24 with the newest majors
    # (openai 7, @google/genai 3, ai 7, @openai/agents 0.20).
    bash scripts/test-newest.sh
    # Suites that stop and restart PostgreSQL/Redis run alone, after everything else.
    CTX_FAULT_TESTS=1 pnpm turbo run test:faults --concurrency=1
    # The packed tarballs in fresh npm projects, on Node 20 and Node 24.
    bash scripts/consumer-test.sh
    ;;
  bench)
    pnpm install --frozen-lockfile
    pnpm turbo run build
    pnpm turbo run bench --concurrency=1
    ;;
  *)
    echo "unknown task: $task (expected demo, test or bench)" >&2
    exit 2
    ;;
esac
