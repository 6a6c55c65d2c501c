#!/usr/bin/env bash
# Installs what building weir needs and a fresh Debian machine lacks:
# libclang (for the rocksdb crate's bindings). Does nothing when present.
set -euo pipefail

if ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so'; then
    exit 0
fi
echo "libclang is missing; installing libclang-dev" >&2
if [ "$(id -u)" -eq 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y libclang-dev
elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y libclang-dev
else
    echo "run as root, or install libclang-dev yourself" >&2
    exit 1
fi
