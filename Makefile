# Two entry points: `make run` starts weir, `make test` runs every test.
# Both install what the build needs on a fresh machine first.

CARGO ?= cargo
ARGS ?=

.PHONY: run test bench check deps test-deps

run: deps
	$(CARGO) run --release --bin weir -- $(ARGS)

# Unit tests of every crate, then the SQL suites, recovery and protocol
# tests (their summary line closes the run). One cargo invocation, so every
# test target is built with one feature set: a second `-p` run would resolve
# features differently and rebuild DataFusion and everything under it.
test: test-deps
	$(CARGO) test --workspace

# INSERT throughput with group commit, 1 and 8 clients.
bench: deps
	$(CARGO) run --release --bin weir -- bench insert

check: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The rocksdb crate generates its bindings with libclang; the S3 test runs
# moto's S3 server.
deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh test
