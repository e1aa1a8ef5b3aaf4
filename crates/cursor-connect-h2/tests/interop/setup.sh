#!/usr/bin/env bash
# Installs the connect-node interop peer (exact versions from package-lock.json).
# Called by .ci/run before `cargo test`; the interop test fails if this was not run.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
