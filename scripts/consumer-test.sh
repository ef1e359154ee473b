#!/usr/bin/env bash
# The consumer test (tests/consumer/run.mjs): packs every published package and installs the
# tarballs with plain npm into fresh projects outside the workspace, on the system Node (20) with
# the oldest supported majors and on Node 24 (scripts/second-node.sh) with the newest; there it
# typechecks every README TypeScript block and runs the README example end to end.
#   bash scripts/consumer-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
export TURBO_TELEMETRY_DISABLED=1
if [ -z "${npm_config_nodedir:-}" ] && [ -d /usr/include/node ]; then
  export npm_config_nodedir=/usr
fi
if [ -z "${CTX_PNPM:-}" ]; then
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$PNPM_VERSION" ]; then
    export CTX_PNPM=pnpm
  else
    export CTX_PNPM="npx -y pnpm@$PNPM_VERSION"
  fi
fi
CTX_CONSUMER_NODE24="$(bash scripts/second-node.sh)"
export CTX_CONSUMER_NODE24
exec node tests/consumer/run.mjs
