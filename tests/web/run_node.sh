#!/usr/bin/env bash
# run_node.sh FILE [chromium] - run one node:test file for meson. Exit 77 (meson: SKIP) when
# node is missing or older than 20, or (with "chromium") when chromium is missing; never a pass.
set -u
file=$1
node=$(command -v node || true)
if [ -z "$node" ]; then echo "SKIP: node not found"; exit 77; fi
major=$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then echo "SKIP: node $("$node" --version) is older than 20"; exit 77; fi
if [ "${2:-}" = chromium ] && ! command -v chromium >/dev/null; then
  echo "SKIP: chromium not found (deploy/setup.sh --test installs it)"; exit 77
fi
flags=()
# Node 20 and 21 have the WebSocket global only behind this flag; 22 has it by default.
[ "$major" -lt 22 ] && flags+=(--experimental-websocket)
exec "$node" "${flags[@]}" "$file"
