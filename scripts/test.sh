#!/usr/bin/env bash
# The one test command (README, `.ci/run`): install and start what the tests need (scripts/setup.sh), then run
# every test of the workspace, and last, alone, the fault test that restarts the local PostgreSQL in the middle of
# a fan-out (it is ignored by plain `cargo test` because it stops the server the other tests use).
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL="$(bash scripts/setup.sh)"
export DATABASE_URL

cargo test --workspace "$@"
cargo test -p integration-tests --test integration -- --ignored server_restart
