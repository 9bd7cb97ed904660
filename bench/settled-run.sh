#!/usr/bin/env bash
# One run of a command against a new, settled database, with what it cost the server:
#
#   bench/settled-run.sh COMMAND [ARGS...]
#
# Creates a new database `settled_run_N`, takes a CHECKPOINT, runs COMMAND with DATABASE_URL pointing at that
# database, and prints the wall time, the CPU time of the server backends that exited meanwhile (the postmaster's
# reaped children, user and system), the WAL written and the transactions committed in it. COMMAND must close its
# connections before it exits (every tool here does). Needs the server on this machine (the postmaster's /proc
# entry). Used for the settled comparisons in docs/BENCHMARKS.md, e.g.:
#
#   bench/settled-run.sh target/release/app-example migrate upgrade --create --schemas-file schemas.txt
#   bench/settled-run.sh sh -c 'psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -f raw.sql'
#   bench/settled-run.sh --drop      # when the series is done: drop every settled_run_N
#
# The databases are kept until --drop: on this machine's file system, files created within minutes of many
# deletions cost many times as much, so a run that followed the drop of the previous run's database would pay for
# it (docs/BENCHMARKS.md).
set -euo pipefail

admin="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
q() { psql -X -qAt -d "$1" -c "$2"; }

if [ "${1:-}" = "--drop" ]; then
    for name in $(q "$admin" "SELECT datname FROM pg_database WHERE datname ~ '^settled_run_[0-9]+\$'"); do
        q "$admin" "DROP DATABASE $name WITH (FORCE)"
    done
    exit 0
fi
database="settled_run_$(q "$admin" "SELECT coalesce(max(substring(datname FROM '[0-9]+\$')::int), 0) + 1 FROM pg_database WHERE datname ~ '^settled_run_[0-9]+\$'")"
url="${admin%/*}/$database?sslmode=disable"

data_dir=$(q "$admin" "SHOW data_directory")
postmaster=$(head -n 1 "$data_dir/postmaster.pid")
reaped_cpu() { awk '{ print $16 + $17 }' "/proc/$postmaster/stat"; }

q "$admin" "CREATE DATABASE $database"
q "$admin" "CHECKPOINT"
sleep 0.5
cpu0=$(reaped_cpu)
lsn0=$(q "$admin" "SELECT pg_current_wal_lsn()")
commits0=$(q "$url" "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
start=$(date +%s.%N)
DATABASE_URL="$url" "$@" > /dev/null
end=$(date +%s.%N)
sleep 0.7 # the backends' exit, and the statistics collector
cpu1=$(reaped_cpu)
lsn1=$(q "$admin" "SELECT pg_current_wal_lsn()")
commits1=$(q "$url" "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
wal=$(q "$admin" "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / 1048576.0, 1)")
ticks=$(getconf CLK_TCK)
printf 'wall %.2f s  server cpu %.2f s  WAL %s MB  commits %s\n' \
    "$(echo "$end - $start" | bc)" "$(echo "($cpu1 - $cpu0) / $ticks" | bc -l)" "$wal" "$((commits1 - commits0 - 1))"
