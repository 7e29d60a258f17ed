# The two commands: `make run` (the whole system, dashboard at http://localhost:3000) and
# `make test` (every test). Both install what they need.

.PHONY: run test lint bench soak clean

run:
	scripts/run.sh

test:
	scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	frontend/node_modules/.bin/buf lint

# `make bench BENCH_ARGS="--quick"` for a run of a few minutes; `scripts/bench.sh --help` lists
# the flags.
bench:
	scripts/bench.sh $(BENCH_ARGS)

soak:
	scripts/dashboard-soak.sh

clean:
	cargo clean
	rm -rf .run .artifacts frontend/dist
