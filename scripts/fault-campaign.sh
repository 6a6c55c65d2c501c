#!/usr/bin/env bash
# The fault campaign at a size larger than `make test` runs: the SQL and
# protocol fuzzers, the full-disk test, and kill -9 loops, against the
# debug test build. Sizes can be set from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir-target}"
export WEIR_FUZZ_STATEMENTS="${WEIR_FUZZ_STATEMENTS:-2500}"
export WEIR_FUZZ_ROUNDS="${WEIR_FUZZ_ROUNDS:-4}"
export WEIR_FUZZ_CONNECTIONS="${WEIR_FUZZ_CONNECTIONS:-2400}"
export WEIR_FUZZ_SEED="${WEIR_FUZZ_SEED:-$RANDOM$RANDOM}"
export WEIR_CRASH_ROUNDS="${WEIR_CRASH_ROUNDS:-100}"
export WEIR_SOURCE_KILLS="${WEIR_SOURCE_KILLS:-10}"
export WEIR_FILE_KILLS="${WEIR_FILE_KILLS:-10}"
echo "fault campaign: seed $WEIR_FUZZ_SEED, $WEIR_FUZZ_ROUNDS rounds of $WEIR_FUZZ_STATEMENTS statements, $WEIR_FUZZ_CONNECTIONS connections, $WEIR_CRASH_ROUNDS kills of table-fed views, $WEIR_SOURCE_KILLS of a nexmark-fed one, $WEIR_FILE_KILLS of a file-fed one"
scripts/install-deps.sh test
cargo test --workspace --test sql -- faults/ crash/
