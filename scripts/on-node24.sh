#!/usr/bin/env bash
# Runs a command under the second Node (24, from scripts/second-node.sh), e.g.
#   bash scripts/on-node24.sh node --version
# Native addons compile against that Node's headers.
set -euo pipefail
node_dir="$(bash "$(dirname "$0")/second-node.sh")"
export PATH="$node_dir/bin:$PATH"
export npm_config_nodedir="$node_dir"
exec "$@"
