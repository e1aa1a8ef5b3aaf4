#!/usr/bin/env bash
# Installs the pinned connect-node client used by crates/cursor-mock/tests/node_client.rs.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
