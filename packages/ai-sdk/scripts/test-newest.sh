#!/usr/bin/env bash
# Runs this package's tests with the newest AI SDK (7, and @ai-sdk/openai 4) on Node 24, which
# AI SDK 7 needs: vitest aliases `ai` and `@ai-sdk/openai` to the devDependencies `ai-v7` and
# `ai-sdk-openai-v4` (see vitest.config.ts). The workspace's better-sqlite3 is built for Node 20
# and cannot load on Node 24, so test/sqlite-conversation.test.ts is left out; the same
# conversation runs on the memory repository (test/conversation.test.ts).
# First, the package's source and the README example are typechecked against AI SDK 7's and
# @ai-sdk/openai 4's typings (tsconfig.newest.json).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24="$(bash ../../scripts/second-node.sh)"
export PATH="$NODE24/bin:$PATH" CTX_AI_SDK_MAJOR=7
node --version
node_modules/.bin/tsc -p tsconfig.newest.json
exec node_modules/.bin/vitest run "$@"
