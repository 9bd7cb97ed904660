#!/usr/bin/env bash
# The one test command (README, `.ci/run`): install and start what the tests need (scripts/setup.sh), then run
# every test of the workspace, then, alone, the fault test that restarts the local PostgreSQL in the middle of
# a fan-out (it is ignored by plain `cargo test` because it stops the server the other tests use), and last the
# tests on a Citus cluster of their own (ignored by plain `cargo test`; run when Citus is installed, or on CI).
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL="$(bash scripts/setup.sh)"
export DATABASE_URL

cargo test --workspace "$@"
cargo test -p integration-tests --test integration -- --ignored server_restart

# The tests on a Citus cluster (each starts a coordinator and two workers of its own; ignored by plain `cargo test`).
# Without Citus they are not run, and this says so; on CI (CI=true) they run anyway and fail, saying Citus is missing.
if [ -f "$(pg_config --pkglibdir)/citus.so" ] || [ "${CI:-}" = true ]; then
    cargo test -p integration-tests --test integration -- --ignored citus:: --test-threads=1
else
    echo "test.sh: the Citus tests (citus::) were NOT run: no citus.so in $(pg_config --pkglibdir);" \
        "install Citus (bash ../shared/citus/install.sh as root) to run them" >&2
fi
