#!/usr/bin/env bash
# make bench-ingest: ingest rate against the two limits it cannot beat, measured in one run.
#
#   1. generates N orders with the project's generator and produces them to a fresh topic;
#      then the producer ceiling: the same documents produced to another fresh topic with
#      send's producer settings by librdkafka alone (examples/produce_only.rs);
#   2. broker limit: a consume-only pass over that topic with the ingest's consumer settings
#      and no database (examples/consume_only.rs);
#   3. database limit: COPY of the same N documents into a fresh table with the orders
#      table's schema, through psql;
#   4. starts `serve` cold on a fresh database and consumer group and measures the time until
#      all N are committed in PostgreSQL, the peak RSS of `serve` and of the broker, and the
#      CPU seconds that `serve`, the broker and PostgreSQL used meanwhile.
#
# Needs PostgreSQL on 127.0.0.1:5432 and Apache Kafka on 127.0.0.1:9092 (`make all-up`, or
# `bash scripts/kafka.sh up` for the broker alone). The broker whose CPU and memory are
# counted is the JVM (or JVMs) of the scripts/kafka.sh cluster in .run/kafka/ that serves one
# of KAFKA_BROKERS' ports, else any `kafka.Kafka` process on the machine; its version is the
# one scripts/kafka.sh pins (`scripts/kafka.sh version`), checked against the jars the JVM
# runs. The topics (N orders each, fresh ones per run) are left on the broker.
# Environment: N (default 100000), SEED (default 42), KAFKA_BROKERS, PGURL (server URL, with
# the password: PostgreSQL asks for one over TCP).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
SEED=${SEED:-42}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
PGURL=${PGURL:-postgres://postgres:postgres@127.0.0.1:5432}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'bench-ingest: %s\n' "$*" >&2; }
now() { date +%s.%N; }
# CPU seconds (user + system) used so far by the given pids.
cpu_of() {
    local ticks=0 pid t
    for pid in "$@"; do
        # A backend may exit between the listing and the read: it counts as 0.
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
        ticks=$((ticks + ${t:-0}))
    done
    python3 -c "print(f'{$ticks / $(getconf CLK_TCK):.1f}')"
}
postgres_pids() { pgrep -u postgres || true; }
# The broker's JVMs: the running nodes of each scripts/kafka.sh cluster (.run/kafka/<nodes>x
# <port>/node-<i>/) one of whose client ports is in BROKERS; if none, any kafka.Kafka JVM.
kafka_pids() {
    local ports cluster node port pid pids=() found
    ports=" $(tr ',' ' ' <<< "$BROKERS" | sed -E 's/[^ ]*:([0-9]+)/\1/g') "
    for cluster in .run/kafka/[0-9]*x[0-9]*/; do
        found=0
        for node in "$cluster"node-*/; do
            port=$(sed -nE 's|^listeners=.*PLAINTEXT://[^,]*:([0-9]+).*|\1|p' "${node}server.properties" 2>/dev/null || true)
            [[ -n $port && $ports == *" $port "* ]] && found=1
        done
        ((found)) || continue
        for node in "$cluster"node-*/; do
            pid=$(cat "${node}kafka.pid" 2>/dev/null) || continue
            [[ $pid =~ ^[0-9]+$ ]] || continue
            tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" \
                | grep -qF " kafka.Kafka $PWD/${node}server.properties" && pids+=("$pid")
        done
    done
    ((${#pids[@]})) || mapfile -t pids < <(pgrep -f 'java .*kafka\.Kafka ' || true)
    ((${#pids[@]})) && printf '%s\n' "${pids[@]}"
    return 0
}
# Sum over the given pids of a /proc/<pid>/status field in kB (VmRSS, VmHWM), in MiB.
mem_of() {
    local field=$1 kib=0 pid; shift
    for pid in "$@"; do
        kib=$((kib + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo $((kib / 1024))
}
max() { echo $(( $1 > $2 ? $1 : $2 )); }
rate() { python3 -c "import sys; n, a, b = map(float, sys.argv[1:]); print(f'{n / (b - a):.0f}')" "$@"; }

cargo build --release --quiet --bin order-service --example consume_only --example produce_only
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

# The broker: its JVMs, taken once (their CPU is counted before and after ingest), and the
# version of Kafka they run.
mapfile -t kafka_pid_list < <(kafka_pids)
((${#kafka_pid_list[@]})) || { say "no Kafka broker JVM found (bash scripts/kafka.sh up)"; exit 1; }
pinned=$(bash scripts/kafka.sh version)
running=$(tr '\0' ' ' < "/proc/${kafka_pid_list[0]}/cmdline" | sed -nE 's|.*/libs-([^/ ]+)/.*|\1|p')
heap=$(tr '\0' '\n' < "/proc/${kafka_pid_list[0]}/cmdline" | { grep -E '^-Xm[sx]' || true; } | paste -sd ' ' -)
if [[ -z $running ]]; then
    kafka_version="$pinned (pinned by scripts/kafka.sh; the JVM's own version is unknown: not started by it)"
elif [[ $running != "$pinned" ]]; then
    kafka_version="$running (its jars; scripts/kafka.sh now pins $pinned: restart it)"
else
    kafka_version=$running
fi
broker_desc="Apache Kafka $kafka_version, ${#kafka_pid_list[@]} JVM(s): pid ${kafka_pid_list[*]}${heap:+, $heap}"
say "broker: $broker_desc"

# 1. The documents, and the same documents produced to a fresh topic.
"$BIN" generate -n "$N" --seed "$SEED" > "$work/orders.jsonl"
bytes=$(stat -c %s "$work/orders.jsonl")
t0=$(now)
KAFKA_BROKERS=$BROKERS KAFKA_TOPIC=$topic RUST_LOG=warn \
    "$BIN" send -n "$N" --seed "$SEED" > "$work/ids.txt"
t1=$(now)
[[ $(wc -l < "$work/ids.txt") -eq $N ]] || { say "send did not deliver all $N"; exit 1; }
produce_rate=$(rate "$N" "$t0" "$t1")
ceiling_line=$(target/release/examples/produce_only "$BROKERS" "${name}_ceiling" "$work/orders.jsonl")
ceiling_rate=$(sed -E 's/.*: ([0-9]+) msg\/s$/\1/' <<< "$ceiling_line")

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
        doc = line.rstrip("\n").replace("\\", "\\\\")
        # The document and, beside it, its canonical text (`body`): the row ingest writes.
        dst.write(uid + "\t" + doc + "\t" + doc + "\n")
PY
# LIKE copies columns, defaults and indexes but not the table's storage parameters.
psql "$PGURL/${name}_copy" -qAtX -v ON_ERROR_STOP=1 -c "CREATE TABLE copy_target (LIKE orders INCLUDING ALL) WITH (toast_tuple_target = 8160)"
t0=$(now)
psql "$PGURL/${name}_copy" -qAtX -v ON_ERROR_STOP=1 -c "\\copy copy_target (order_uid, doc, body) FROM '$work/orders.copy'"
t1=$(now)
db_rate=$(rate "$N" "$t0" "$t1")

# 4. Ingest: serve cold on a fresh database and group.
ingest_db="$PGURL/${name}_ingest"
DATABASE_URL=$ingest_db RUST_LOG=warn "$BIN" migrate
count() { psql "$ingest_db" -qAtX -c "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM rejected)"; }
# What has been handled, cheaply: the highest `seq` is one index lookup where count(*) scans
# the whole table (120 MiB at 100,000 orders, and PostgreSQL's CPU is what is measured). It
# can only run ahead of the count (a rolled-back insert leaves a gap), so once it reaches N
# the count confirms it.
progress() { psql "$ingest_db" -qAtX -c "SELECT (SELECT coalesce(max(seq), 0) FROM orders) + (SELECT count(*) FROM rejected)"; }
# The cache is bounded well below N orders, so that RSS shows the pipeline, not the cache.
CACHE_MAX_BYTES=${CACHE_MAX_BYTES:-64MiB}
pg_cpu0=$(cpu_of $(postgres_pids)); kafka_cpu0=$(cpu_of "${kafka_pid_list[@]}")
kafka_rss_max=$(mem_of VmRSS "${kafka_pid_list[@]}")
t0=$(now)
DATABASE_URL=$ingest_db KAFKA_BROKERS=$BROKERS KAFKA_TOPIC=$topic KAFKA_DLQ_TOPIC= \
    KAFKA_GROUP_ID="${name}_ingest" HTTP_ADDR=127.0.0.1:0 CACHE_WARM_LIMIT=0 RUST_LOG=warn \
    CACHE_MAX_BYTES=$CACHE_MAX_BYTES "$BIN" serve --no-migrate > "$work/serve.log" 2>&1 &
serve_pid=$!
first=""
while :; do
    c=$(progress)
    [[ -z $first && $c -gt 0 ]] && first=$(now)
    [[ $c -ge $N && $(count) -ge $N ]] && break
    kill -0 "$serve_pid" 2>/dev/null || { say "serve died:"; tail "$work/serve.log" >&2; exit 1; }
    # VmHWM cannot be reset without writing to the broker's clear_refs: sample VmRSS instead.
    kafka_rss_max=$(max "$kafka_rss_max" "$(mem_of VmRSS "${kafka_pid_list[@]}")")
    sleep 0.1
done
t1=$(now)
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$serve_pid/status")
# What the resident memory is made of at the end: the heaps (anonymous) and the binary's
# pages (file), for where the peak goes.
end_split=$(awk '/^Rss(Anon|File):/ {printf "%s%d MiB %s", sep, $2 / 1024, tolower(substr($1, 4, 4)); sep = ", "}' "/proc/$serve_pid/status")
serve_cpu=$(cpu_of "$serve_pid")
pg_cpu=$(python3 -c "print(f'{$(cpu_of $(postgres_pids)) - $pg_cpu0:.1f}')")
kafka_cpu=$(python3 -c "print(f'{$(cpu_of "${kafka_pid_list[@]}") - $kafka_cpu0:.1f}')")
kafka_rss_max=$(max "$kafka_rss_max" "$(mem_of VmRSS "${kafka_pid_list[@]}")")
kafka_hwm=$(mem_of VmHWM "${kafka_pid_list[@]}")
wall=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
kill -TERM "$serve_pid"; wait "$serve_pid" || true; serve_pid=""
ingest_rate=$(rate "$N" "$t0" "$t1")
steady_rate=$(rate "$N" "$first" "$t1")

lower=$(( broker_rate < db_rate ? broker_rate : db_rate ))
ratio=$(python3 -c "print(f'{$ingest_rate / $lower:.2f}')")
steady_ratio=$(python3 -c "print(f'{$steady_rate / $lower:.2f}')")
cat <<OUT
broker:             $broker_desc
orders:             $N ($((bytes / N)) bytes of JSON each, $((bytes / 1048576)) MiB)
produce (send):     $produce_rate orders/s; $(python3 -c "print(f'{$produce_rate / $ceiling_rate:.2f}')") of the producer ceiling, $(python3 -c "print(f'{$produce_rate / $broker_rate:.2f}')") of the broker limit
producer ceiling:   $ceiling_rate orders/s   (librdkafka alone, send's settings, payloads made beforehand)
broker limit:       $broker_rate orders/s   (consume-only, ingest's consumer settings)
database limit:     $db_rate orders/s   (psql COPY into a fresh table like orders)
ingest (serve):     $ingest_rate orders/s from a cold start; $steady_rate orders/s from the first stored order
ingest / lower:     $ratio from a cold start; $steady_ratio from the first stored order
peak RSS of serve:  $((peak_kib / 1024)) MiB (CACHE_MAX_BYTES=$CACHE_MAX_BYTES); at the end: $end_split
peak RSS of kafka:  $kafka_rss_max MiB during ingest (VmRSS every 0.5 s); $kafka_hwm MiB since the JVM started (VmHWM)
CPU during ingest:  ${wall} s wall on $(nproc) cores: serve ${serve_cpu} s, kafka ${kafka_cpu} s, postgres ${pg_cpu} s
OUT
