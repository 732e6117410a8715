#!/usr/bin/env bash
# A local PostgreSQL server for the tests of the PostgreSQL code paths (Debian's postgresql): installs it when
# missing, starts the newest cluster when it is down, and creates the role and database discern_test on
# 127.0.0.1:5432.  Idempotent and quick when everything is in place.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=sudo
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "installing Debian packages: postgresql"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
  $SUDO pg_createcluster "$ver" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
  $SUDO pg_ctlcluster "$ver" main start
fi
psql_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "psql -v ON_ERROR_STOP=1 -tAc \"$1\""; else sudo -u postgres psql -v ON_ERROR_STOP=1 -tAc "$1"; fi; }
for _ in $(seq 1 30); do psql_pg "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
[ "$(psql_pg "SELECT 1 FROM pg_roles WHERE rolname = 'discern_test'")" = "1" ] || \
  psql_pg "CREATE ROLE discern_test LOGIN PASSWORD 'discern_test'" >/dev/null
[ "$(psql_pg "SELECT 1 FROM pg_database WHERE datname = 'discern_test'")" = "1" ] || \
  psql_pg "CREATE DATABASE discern_test OWNER discern_test" >/dev/null
echo "postgresql: discern_test ready on 127.0.0.1:5432 (PostgreSQL $ver)"
