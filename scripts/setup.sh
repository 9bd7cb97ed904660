#!/usr/bin/env bash
# Install and start what the tests need, on a fresh Debian machine or this one: OpenSSL's and libpq's headers (the
# TLS connector; diesel's own migrator in the adopt tests), util-linux's `script`, Alembic (from PyPI), dbmate (from
# npm), Citus (from ../shared/citus when it is there), PostgreSQL
# (installed if missing, started if down, waited for), and PgBouncer (the pooler tests start their own from /usr/sbin/pgbouncer on free loopback ports; the
# packaged service is stopped). Each step is skipped when what it provides is already there, so a second run only
# checks. Prints the DATABASE_URL the tests should use as its last line.
set -euo pipefail

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

updated=""
install() {
    # Needs root (as on the CI machine); elsewhere say what to install instead of failing half-way.
    if [ "$(id -u)" != 0 ]; then
        echo "setup: please install the Debian packages: $*" >&2
        exit 1
    fi
    if [ -z "$updated" ]; then
        apt-get update -q >&2
        updated=1
    fi
    echo "setup: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

pkg-config --exists openssl 2>/dev/null || install libssl-dev pkg-config
pkg-config --exists libpq 2>/dev/null || install libpq-dev pkg-config
# libclang: the lint's parser (libpg_query, through pg_query) generates its bindings with bindgen at build time.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || install libclang-dev
command -v pg_ctlcluster >/dev/null 2>&1 || install postgresql
[ -x /usr/sbin/pgbouncer ] || install pgbouncer
# Citus (not in Debian's archive), for the tests on a cluster of the test's own (tests/tests/integration/citus.rs):
# built from the source release beside the project (../shared/citus/install.sh, idempotent) when it is there;
# elsewhere install Citus's own package (postgresql-15-citus-13.2).
citus_install="$(cd "$(dirname "$0")/.." && pwd)/../shared/citus/install.sh"
if [ ! -f "$(pg_config --pkglibdir)/citus.so" ] && [ -f "$citus_install" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: please install Citus as root: bash $citus_install" >&2
    else
        echo "setup: installing Citus from $citus_install" >&2
        bash "$citus_install" >&2
    fi
fi
# util-linux's `script`: the CLI test of a confirmation typed on a terminal runs the binary on a pseudo-terminal.
command -v script >/dev/null 2>&1 || install bsdutils
# Alembic (from PyPI), for the test that keeps Alembic's own `alembic_version` beside our history, as
# docs/moving-from-alembic.md advises.
if ! python3 -c "import alembic, psycopg2" >/dev/null 2>&1; then
    echo "setup: installing alembic" >&2
    python3 -m pip install --quiet alembic==1.13.3 psycopg2-binary==2.9.10 >&2
fi
# dbmate (from npm): its own `schema_migrations` table, which the history-table tests must not mistake for ours.
if ! command -v dbmate >/dev/null 2>&1; then
    command -v npm >/dev/null 2>&1 || install npm
    echo "setup: installing dbmate" >&2
    npm install --global --no-audit --no-fund dbmate@2.36.0 >&2
fi

# The packaged PgBouncer service (port 6432) is not used by the tests; keep it from running.
if [ -x /etc/init.d/pgbouncer ] && /etc/init.d/pgbouncer status >/dev/null 2>&1; then
    echo "setup: stopping the packaged PgBouncer service" >&2
    /etc/init.d/pgbouncer stop >&2 || true
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet pgbouncer 2>/dev/null; then
    systemctl disable --now pgbouncer >/dev/null 2>&1 || true
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "setup: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start >&2 || true
fi
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
done
pg_isready -h 127.0.0.1 -p 5432 >&2

# A fresh Debian cluster asks for a password over TCP: give the postgres role one through the local socket.
if ! psql "$DATABASE_URL" -qAtc 'SELECT 1' >/dev/null 2>&1; then
    echo "setup: setting a password for the postgres role" >&2
    runuser -u postgres -- psql -qc "ALTER ROLE postgres PASSWORD 'postgres'" >&2
    DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
fi
psql "$DATABASE_URL" -qAtc 'SELECT version()' >&2
echo "$DATABASE_URL"
