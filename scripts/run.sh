#!/usr/bin/env bash
# Runs colindex serve for a newcomer: reads .env, makes an admin password on first run (kept
# in .env, mode 600, never printed), and logs as text in a terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f .env ]; then set -a; . ./.env; set +a; fi
if [ -z "${RELAY_ADMIN_PASSWORD:-}" ]; then
  RELAY_ADMIN_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  umask 077
  printf 'RELAY_ADMIN_PASSWORD=%s\n' "$RELAY_ADMIN_PASSWORD" >> .env
  echo "run: generated an admin password into .env (RELAY_ADMIN_PASSWORD)"
fi
export RELAY_ADMIN_PASSWORD
if [ -t 2 ]; then export COLINDEX_LOG_FORMAT="${COLINDEX_LOG_FORMAT:-text}"; fi
exec ./bin/colindex serve "$@"
