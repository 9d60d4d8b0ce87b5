#!/usr/bin/env bash
# Finds or starts a Postgres for colindex, and creates the database named in DATABASE_URL.
# - DATABASE_URL pointing elsewhere than this machine: only checks that it answers.
# - Otherwise: uses the server on 127.0.0.1:5432; if none answers, starts the local Debian
#   cluster, installing Debian's postgresql first if there is none. A server this script
#   installs is told to trust loopback connections (a development machine, loopback only).
# Idempotent.
set -euo pipefail

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/colindex?sslmode=disable}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
  echo "ensure-postgres: installing postgresql"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  installed=1
fi

# The server-level URL: the same one, on the maintenance database.
admin_url=$(python3 - "$url" <<'PY'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/postgres")))
PY
)
dbname=$(python3 - "$url" <<'PY'
import sys, urllib.parse as u
print(u.urlsplit(sys.argv[1]).path.lstrip("/") or "colindex")
PY
)
host=$(python3 - "$url" <<'PY'
import sys, urllib.parse as u
print(u.urlsplit(sys.argv[1]).hostname or "127.0.0.1")
PY
)

local=0
case "$host" in 127.0.0.1|localhost|::1) local=1 ;; esac

if ! pg_isready -q -d "$admin_url"; then
  if [ "$local" -ne 1 ]; then
    echo "ensure-postgres: $host does not answer; start it or point DATABASE_URL at one that does" >&2
    exit 1
  fi
  echo "ensure-postgres: starting the local Postgres cluster"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    if [ "${installed:-0}" = 1 ]; then
      hba=/etc/postgresql/$v/main/pg_hba.conf
      grep -q "colindex: trust loopback" "$hba" || $sudo sed -i '1i # colindex: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    $sudo pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || $sudo pg_ctlcluster "$v" main start || true
  done
  for _ in $(seq 1 30); do pg_isready -q -d "$admin_url" && break; sleep 1; done
  pg_isready -q -d "$admin_url" || { echo "ensure-postgres: Postgres did not come up" >&2; exit 1; }
fi

if [ "$(psql "$admin_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$dbname'")" != 1 ]; then
  psql "$admin_url" -qc "CREATE DATABASE \"$dbname\"" >/dev/null
  echo "ensure-postgres: created database $dbname"
fi
