#!/usr/bin/env bash
# make bench-freshness: the service's "real time": from the producer's acknowledgement of an
# order to its first 200 on GET /api/order/{id} of a running `serve`.
#
#   1. builds the release binary and examples/freshness/;
#   2. starts `serve` on a fresh database, topic (and dead-letter topic), consumer group and
#      free HTTP port, and waits until it is ready (its consumer holds its partitions);
#   3. runs the example against it: single orders with idle gaps, the first valid order after
#      a rejected one, a steady 1,000 orders/s; then the first order on a topic that `serve`
#      has just created (the example starts and stops one `serve` per fresh topic, on the same
#      database);
#   4. prints the figures and what the database holds; stops every `serve`, drops the
#      database and deletes the topics, also on failure or interruption.
#
# Only 127.0.0.1 is used. Needs PostgreSQL on 127.0.0.1:5432 and a broker on 127.0.0.1:9092
# (`make all-up`). Bounded: the example gives up on an order after 10 s, on a case after 3
# failures in a row, and is stopped after TIMEOUT seconds.
# Environment: RATE (1000), STEADY_SECONDS (10), STEADY_EVERY (1: poll every order of the
# steady case; N: only every Nth, to divide the polling load), SINGLES (50), REJECTS (20),
# FRESH_TOPICS (5), GAP (200ms), POLL (1ms), CASES (single,after-reject,steady,fresh-topic),
# SEED (42), TIMEOUT (300), KAFKA_BROKERS, PGURL (server URL). Settings of `serve` such as
# INGEST_BATCH_LINGER or INGEST_BATCH_SIZE pass through to every `serve` it starts.
set -euo pipefail
# A failing command inside $(...) stops the script too, not only a failing plain command.
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RATE=${RATE:-1000}
STEADY_SECONDS=${STEADY_SECONDS:-10}
STEADY_EVERY=${STEADY_EVERY:-1}
SINGLES=${SINGLES:-50}
REJECTS=${REJECTS:-20}
FRESH_TOPICS=${FRESH_TOPICS:-5}
GAP=${GAP:-200ms}
POLL=${POLL:-1ms}
CASES=${CASES:-single,after-reject,steady,fresh-topic}
SEED=${SEED:-42}
TIMEOUT=${TIMEOUT:-300}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
PGURL=${PGURL:-postgres://postgres:postgres@127.0.0.1:5432}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'bench-freshness: %s\n' "$*" >&2; }

cargo build --release --quiet --bin order-service --example freshness
BIN=target/release/order-service
EXAMPLE=target/release/examples/freshness

name="bench_fresh_$(date +%s)_$$"
topic="${name}_orders"
work=$(mktemp -d /tmp/bench-freshness.XXXXXX)
db_url="$PGURL/$name"
psql_admin() { psql "$PGURL/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
serve_pid=""; example_pid=""
stop_pid() { # pid: SIGTERM, and wait for it (it is our child) or until it is gone
    kill -TERM "$1" 2>/dev/null || return 0
    wait "$1" 2>/dev/null || true
}
cleanup() {
    [[ -n $example_pid ]] && stop_pid "$example_pid"
    # A `serve` the example started, if the example was stopped before it stopped that one.
    if [[ -s $work/fresh-serve.pid ]]; then
        kill -TERM "$(cat "$work/fresh-serve.pid")" 2>/dev/null || true
    fi
    [[ -n $serve_pid ]] && stop_pid "$serve_pid"
    if [[ -x $EXAMPLE ]]; then
        "$EXAMPLE" delete-topics --brokers "$BROKERS" --prefix "${name}_" || true
    fi
    psql_admin -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

say "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory; broker $BROKERS (Apache Kafka $(bash scripts/kafka.sh version))"
say "load average before: $(cut -d ' ' -f 1-3 /proc/loadavg) (the machine is shared: figures move with it)"
say "serve: INGEST_BATCH_LINGER=${INGEST_BATCH_LINGER:-5ms (default)}, INGEST_BATCH_SIZE=${INGEST_BATCH_SIZE:-1000 (default)}"

# 2. serve on a fresh database, topic, group and port; ready once its consumer is assigned.
export DATABASE_URL=$db_url KAFKA_BROKERS=$BROKERS RUST_LOG=${RUST_LOG:-warn}
"$BIN" migrate
port=$(free_port)
url="http://127.0.0.1:$port"
KAFKA_TOPIC=$topic KAFKA_DLQ_TOPIC="$topic.dlq" KAFKA_GROUP_ID=$topic \
    HTTP_ADDR="127.0.0.1:$port" CACHE_WARM_LIMIT=0 \
    "$BIN" serve --no-migrate > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 600); do
    curl -fs -o /dev/null "$url/health/ready" && break
    kill -0 "$serve_pid" 2>/dev/null || { say "serve died:"; tail "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
curl -fs -o /dev/null "$url/health/ready" || { say "serve not ready within 60 s"; exit 1; }

# 3. The cases. In the background, so that a signal to this script reaches its trap at once.
timeout "$TIMEOUT" "$EXAMPLE" run --brokers "$BROKERS" --url "$url" --topic "$topic" \
    --cases "$CASES" --rate "$RATE" --seconds "$STEADY_SECONDS" --singles "$SINGLES" \
    --rejects "$REJECTS" --fresh-topics "$FRESH_TOPICS" --gap "$GAP" --poll "$POLL" \
    --steady-every "$STEADY_EVERY" --seed "$SEED" --serve-bin "$BIN" --serve-pid "$serve_pid" \
    --prefix "${name}_" --work "$work" --samples "$work/samples.csv" &
example_pid=$!
status=0
wait "$example_pid" || status=$?
example_pid=""
say "load average after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
if ((status != 0)); then
    ((status == 124)) && say "stopped after $TIMEOUT s"
    say "the example failed ($status); the log of serve ends with:"
    tail "$work/serve.log" >&2
    exit 1
fi

# 4. What the database holds: every timed order, and each bad message as malformed_json.
psql "$db_url" -qAtX -F ' ' -c "SELECT (SELECT count(*) FROM orders),
    (SELECT count(*) FROM rejected), (SELECT count(*) FROM rejected WHERE reason_code = 'malformed_json')" |
    { read -r orders rejected malformed
      echo "database: $orders orders stored, $rejected messages rejected ($malformed malformed_json)"; }

# Where the time goes: an order's stored_at is now() of the transaction that stored it, which
# begins once ingest has fetched the batch and its linger is over. So freshness splits into
# ack -> transaction begins (fetch, linger, waiting for the batch before) and transaction
# begins -> first 200 (insert, commit, cache, and the poll noticing it).
echo "where the time goes (ms; p50 / p99):"
psql "$db_url" -qAtX -v ON_ERROR_STOP=1 \
    -c "CREATE TEMP TABLE samples (case_name text, order_uid text, acked_us bigint,
            visible_us bigint, not_found int, from_cache bool)" \
    -c "\\copy samples FROM '$work/samples.csv' CSV" \
    -c "SELECT format('  %-13s ack -> transaction begins %6s / %6s; transaction begins -> first 200 %6s / %6s',
            case_name, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY begin_ms - ack_ms), 1),
            round(percentile_disc(0.99) WITHIN GROUP (ORDER BY begin_ms - ack_ms), 1),
            round(percentile_disc(0.5) WITHIN GROUP (ORDER BY visible_ms - begin_ms), 1),
            round(percentile_disc(0.99) WITHIN GROUP (ORDER BY visible_ms - begin_ms), 1))
        FROM (SELECT s.case_name, s.acked_us / 1e3 AS ack_ms, s.visible_us / 1e3 AS visible_ms,
                (extract(epoch FROM o.stored_at) * 1e3)::numeric AS begin_ms, s.acked_us
              FROM samples s JOIN orders o USING (order_uid) WHERE s.visible_us IS NOT NULL) t
        GROUP BY case_name ORDER BY min(acked_us)"
