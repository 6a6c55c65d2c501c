#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks and does nothing when present:
# libclang (the rocksdb crate generates its bindings with it) and, with
# `test`, moto's S3 server (the S3 checkpoint test runs one on loopback),
# psql and openssl (the security test connects with psql over TLS to a
# certificate it makes), and the clients the client suite runs: psycopg,
# asyncpg, SQLAlchemy and pandas from PyPI, node-postgres from npm (under
# $WEIR_CLIENTS_DIR, default ~/.cache/weir-clients), pgjdbc, pg_dump and
# pgbench from Debian, and a PostgreSQL server (the differential test runs
# the same statements on a scratch PostgreSQL and on weir).
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "run as root, or run yourself: $*" >&2
        exit 1
    fi
}

if ! ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so'; then
    echo "libclang is missing; installing libclang-dev" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y libclang-dev
fi

if [ "${1:-}" = test ] && ! command -v moto_server >/dev/null 2>&1; then
    echo "moto_server is missing; installing moto[server] from PyPI" >&2
    python3 -m pip install --quiet 'moto[server]'
fi

if [ "${1:-}" = test ] && ! { command -v psql && command -v openssl; } >/dev/null 2>&1; then
    echo "psql or openssl is missing; installing postgresql-client and openssl" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-client openssl
fi

if [ "${1:-}" = test ]; then
    if ! python3 -c 'import psycopg, asyncpg, sqlalchemy, pandas' >/dev/null 2>&1; then
        echo "installing psycopg, asyncpg, SQLAlchemy and pandas from PyPI" >&2
        python3 -m pip install --quiet 'psycopg[binary]>=3.2' 'asyncpg>=0.29' 'sqlalchemy>=2' pandas
    fi
    packages=()
    command -v pgbench >/dev/null 2>&1 || packages+=(postgresql-client)
    command -v javac >/dev/null 2>&1 || packages+=(default-jdk-headless)
    command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
    [ -f /usr/share/java/postgresql.jar ] || packages+=(libpostgresql-jdbc-java)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
    if [ "${#packages[@]}" -gt 0 ]; then
        echo "installing ${packages[*]}" >&2
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
    fi
    clients="${WEIR_CLIENTS_DIR:-$HOME/.cache/weir-clients}"
    if [ ! -d "$clients/node/node_modules/pg" ]; then
        echo "installing node-postgres under $clients/node" >&2
        mkdir -p "$clients/node"
        npm install --silent --no-audit --no-fund --prefix "$clients/node" pg@8
    fi
fi
