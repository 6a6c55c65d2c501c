#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks and does nothing when present:
# libclang (the rocksdb crate generates its bindings with it) and, with
# `test`, moto's S3 server (the S3 checkpoint test runs one on loopback),
# and psql and openssl (the security test connects with psql over TLS to a
# certificate it makes).
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
