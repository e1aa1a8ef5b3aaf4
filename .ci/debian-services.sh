#!/usr/bin/env bash
# Debian packages for the services tests start themselves on a free loopback port: redis-server
# (the proxy's shared store), tinyproxy (an HTTP/1.1 forwarding proxy for the transport fallback)
# and chromium (the status page, rendered headless). Installs only what is missing.
set -euo pipefail
wanted=(redis-server:redis-server tinyproxy:tinyproxy chromium:chromium)
missing=()
for pair in "${wanted[@]}"; do
  command -v "${pair%%:*}" > /dev/null || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "debian services: all present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
for pair in "${wanted[@]}"; do
  command -v "${pair%%:*}" > /dev/null || { echo "debian services: ${pair%%:*} still missing" >&2; exit 1; }
done
