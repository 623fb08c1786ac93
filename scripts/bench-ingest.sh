#!/usr/bin/env bash
# make bench-ingest: ingest rate against the two limits it cannot beat, measured in one run.
#
#   1. generates N orders with the project's generator and produces them to a fresh topic;
#   2. broker limit: a consume-only pass over that topic with the ingest's consumer settings
#      and no database (examples/consume_only.rs);
#   3. database limit: COPY of the same N documents into a fresh table with the orders
#      table's schema, through psql;
#   4. starts `serve` cold on a fresh database and consumer group and measures the time until
#      all N are committed in PostgreSQL, and the peak RSS of `serve`.
#
# Needs PostgreSQL on 127.0.0.1:5432 and a broker on 127.0.0.1:9092 (`make all-up`).
# Environment: N (default 100000), SEED (default 42), KAFKA_BROKERS, PGURL (server URL).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
SEED=${SEED:-42}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'bench-ingest: %s\n' "$*" >&2; }
now() { date +%s.%N; }
# CPU seconds (user + system) used so far by the given pids.
cpu_of() {
    local ticks=0 pid
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    python3 -c "print(f'{$ticks / $(getconf CLK_TCK):.1f}')"
}
postgres_pids() { pgrep -u postgres || true; }
tansu_pids() { pgrep -x tansu || true; }
rate() { python3 -c "import sys; n, a, b = map(float, sys.argv[1:]); print(f'{n / (b - a):.0f}')" "$@"; }

cargo build --release --quiet --bin order-service --example consume_only
BIN=target/release/order-service
name="bench_$(date +%s)_$$"
topic="${name}_orders"
work=".run/bench/$name"
mkdir -p "$work"
psql_admin() { psql "$PGURL/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
    [[ -n ${serve_pid:-} ]] && kill "$serve_pid" 2>/dev/null || true
    psql_admin -c "DROP DATABASE IF EXISTS ${name}_copy WITH (FORCE)" || true
    psql_admin -c "DROP DATABASE IF EXISTS ${name}_ingest WITH (FORCE)" || true
    rm -rf "$work"
}
trap cleanup EXIT

say "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory; N=$N"

# 1. The documents, and the same documents produced to a fresh topic.
"$BIN" generate -n "$N" --seed "$SEED" > "$work/orders.jsonl"
bytes=$(stat -c %s "$work/orders.jsonl")
t0=$(now)
KAFKA_BROKERS=$BROKERS KAFKA_TOPIC=$topic RUST_LOG=warn \
    "$BIN" send -n "$N" --seed "$SEED" > "$work/ids.txt"
t1=$(now)
[[ $(wc -l < "$work/ids.txt") -eq $N ]] || { say "send did not deliver all $N"; exit 1; }
produce_rate=$(rate "$N" "$t0" "$t1")

# 2. Broker limit.
broker_line=$(target/release/examples/consume_only "$BROKERS" "$topic" "${name}_consume_only" "$N")
broker_rate=$(sed -E 's/.*: ([0-9]+) msg\/s$/\1/' <<< "$broker_line")

# 3. Database limit: COPY into a table with the orders table's schema.
DATABASE_URL="$PGURL/${name}_copy" RUST_LOG=warn "$BIN" migrate
python3 - "$work/orders.jsonl" "$work/orders.copy" <<'PY'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for line in src:
        uid = json.loads(line)["order_uid"]
        dst.write(uid + "\t" + line.rstrip("\n").replace("\\", "\\\\") + "\n")
PY
psql "$PGURL/${name}_copy" -qAtX -v ON_ERROR_STOP=1 -c "CREATE TABLE copy_target (LIKE orders INCLUDING ALL)"
t0=$(now)
psql "$PGURL/${name}_copy" -qAtX -v ON_ERROR_STOP=1 -c "\\copy copy_target (order_uid, doc) FROM '$work/orders.copy'"
t1=$(now)
db_rate=$(rate "$N" "$t0" "$t1")

# 4. Ingest: serve cold on a fresh database and group.
ingest_db="$PGURL/${name}_ingest"
DATABASE_URL=$ingest_db RUST_LOG=warn "$BIN" migrate
count() { psql "$ingest_db" -qAtX -c "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM rejected)"; }
# The cache is bounded well below N orders, so that RSS shows the pipeline, not the cache.
CACHE_MAX_BYTES=${CACHE_MAX_BYTES:-64MiB}
pg_cpu0=$(cpu_of $(postgres_pids)); tansu_cpu0=$(cpu_of $(tansu_pids))
t0=$(now)
DATABASE_URL=$ingest_db KAFKA_BROKERS=$BROKERS KAFKA_TOPIC=$topic KAFKA_DLQ_TOPIC= \
    KAFKA_GROUP_ID="${name}_ingest" HTTP_ADDR=127.0.0.1:0 CACHE_WARM_LIMIT=0 RUST_LOG=warn \
    CACHE_MAX_BYTES=$CACHE_MAX_BYTES "$BIN" serve --no-migrate > "$work/serve.log" 2>&1 &
serve_pid=$!
first=""
while :; do
    c=$(count)
    [[ -z $first && $c -gt 0 ]] && first=$(now)
    [[ $c -ge $N ]] && break
    kill -0 "$serve_pid" 2>/dev/null || { say "serve died:"; tail "$work/serve.log" >&2; exit 1; }
    # count(*) scans the table: poll gently, so that the poll does not slow what it measures.
    sleep 0.5
done
t1=$(now)
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$serve_pid/status")
serve_cpu=$(cpu_of "$serve_pid")
pg_cpu=$(python3 -c "print(f'{$(cpu_of $(postgres_pids)) - $pg_cpu0:.1f}')")
tansu_cpu=$(python3 -c "print(f'{$(cpu_of $(tansu_pids)) - $tansu_cpu0:.1f}')")
wall=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
kill -TERM "$serve_pid"; wait "$serve_pid" || true; serve_pid=""
ingest_rate=$(rate "$N" "$t0" "$t1")
steady_rate=$(rate "$N" "$first" "$t1")

lower=$(( broker_rate < db_rate ? broker_rate : db_rate ))
ratio=$(python3 -c "print(f'{$ingest_rate / $lower:.2f}')")
steady_ratio=$(python3 -c "print(f'{$steady_rate / $lower:.2f}')")
cat <<OUT
orders:             $N ($((bytes / N)) bytes of JSON each, $((bytes / 1048576)) MiB)
produce (send):     $produce_rate orders/s
broker limit:       $broker_rate orders/s   (consume-only, ingest's consumer settings)
database limit:     $db_rate orders/s   (psql COPY into a fresh table like orders)
ingest (serve):     $ingest_rate orders/s from a cold start; $steady_rate orders/s from the first stored order
ingest / lower:     $ratio from a cold start; $steady_ratio from the first stored order
peak RSS of serve:  $((peak_kib / 1024)) MiB (CACHE_MAX_BYTES=$CACHE_MAX_BYTES)
CPU during ingest:  ${wall} s wall on $(nproc) cores: serve ${serve_cpu} s, tansu ${tansu_cpu} s, postgres ${pg_cpu} s
OUT
