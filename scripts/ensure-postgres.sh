#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use is up: reuse a running one, start an installed
# cluster, or install Debian's `postgresql` and configure it (trust on loopback, database
# `test`). Exits non-zero with a message when none can be had, so CI never silently
# skips the database tests.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
if [ -n "${TEST_PG_URL:-}" ] && [[ "$TEST_PG_URL" != *"@127.0.0.1"* && "$TEST_PG_URL" != *"@localhost"* ]]; then
  echo "ensure-postgres: TEST_PG_URL points elsewhere; not managing a local server"
  exit 0
fi

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

if command -v pg_isready >/dev/null && ready; then
  echo "ensure-postgres: running on $HOST:$PORT"
else
  if ! command -v pg_ctlcluster >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      echo "ensure-postgres: no PostgreSQL and cannot install one (need root and apt-get);" \
           "start a server or set TEST_PG_URL" >&2
      exit 1
    fi
    echo "ensure-postgres: installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  if [ -z "$version" ]; then
    echo "ensure-postgres: postgresql installed but no cluster found under /etc/postgresql" >&2
    exit 1
  fi
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "surveil-tests" "$hba"; then
    # Trust on loopback only, for the throw-away test server; first match wins.
    sed -i '1i host all all 127.0.0.1/32 trust # surveil-tests\nhost all all ::1/128 trust # surveil-tests' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  for _ in $(seq 1 30); do ready && break; sleep 1; done
  ready || { echo "ensure-postgres: server did not come up on $HOST:$PORT" >&2; exit 1; }
  echo "ensure-postgres: started PostgreSQL $version"
fi

if ! psql -h "$HOST" -p "$PORT" -U postgres -tAc "select 1 from pg_database where datname='test'" \
    | grep -q 1; then
  psql -h "$HOST" -p "$PORT" -U postgres -qc "create database test"
fi
