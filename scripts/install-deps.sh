#!/usr/bin/env bash
# Installs what building and testing colindex needs beyond Go, from Debian: RocksDB
# (grocksdb v1.7.14 matches Debian 12's librocksdb-dev 7.8.3) and jemalloc, the allocator
# colindex links for RocksDB's memory (rocksindex/malloc.go), Chromium for the River UI
# browser test, and Node.js for the TypeScript SDK. Idempotent.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

command -v go >/dev/null || { echo "install-deps: Go is not installed (need Go 1.26)" >&2; exit 1; }

# librocksdb-dev: the index. libjemalloc-dev: its allocator. chromium: the River UI browser
# test. nodejs/npm: the TypeScript SDK.
missing=()
dpkg -s librocksdb-dev >/dev/null 2>&1 || missing+=(librocksdb-dev)
dpkg -s libjemalloc-dev >/dev/null 2>&1 || missing+=(libjemalloc-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
