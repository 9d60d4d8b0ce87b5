#!/usr/bin/env bash
# Runs colindex serve for a newcomer: reads .env, makes an admin password on first run (kept
# in .env, mode 600, never printed), and logs as text in a terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

# group_or_other_perms prints the group and other permission bits of a file ("------" when
# only its owner can use it); ls works the same on Linux and macOS, stat does not.
group_or_other_perms() { ls -ln "$1" | cut -c5-10; }

if [ -f .env ]; then
  # .env holds the admin password (and maybe DATABASE_URL's): only its owner may read it.
  if grep -Eq '^[[:space:]]*(export[[:space:]]+)?[A-Za-z_]*PASSWORD[A-Za-z_]*=|://[^/@[:space:]]+:[^/@[:space:]]*@' .env &&
    [ "$(group_or_other_perms .env)" != "------" ]; then
    chmod 600 .env
    echo "run: .env holds a password and was readable by other users; changed its mode to 600"
  fi
  set -a; . ./.env; set +a
fi
if [ -z "${RELAY_ADMIN_PASSWORD:-}" ]; then
  RELAY_ADMIN_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # umask covers a new file; chmod covers an existing one, which keeps its old mode otherwise.
  (umask 077 && printf 'RELAY_ADMIN_PASSWORD=%s\n' "$RELAY_ADMIN_PASSWORD" >> .env)
  chmod 600 .env
  echo "run: generated an admin password into .env (RELAY_ADMIN_PASSWORD, mode 600)"
fi
export RELAY_ADMIN_PASSWORD
if [ -t 2 ]; then export COLINDEX_LOG_FORMAT="${COLINDEX_LOG_FORMAT:-text}"; fi
exec ./bin/colindex serve "$@"
