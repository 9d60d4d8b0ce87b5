#!/usr/bin/env bash
# Installs what building colindex needs beyond Go: Debian's RocksDB headers and library
# (grocksdb v1.7.14 matches Debian 12's librocksdb-dev 7.8.3). Idempotent.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

command -v go >/dev/null || { echo "install-deps: Go is not installed (need Go 1.26)" >&2; exit 1; }

if ! dpkg -s librocksdb-dev >/dev/null 2>&1; then
  echo "install-deps: installing librocksdb-dev"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq librocksdb-dev >/dev/null
fi
