#!/usr/bin/env bash
# Start what order-service needs: PostgreSQL on 127.0.0.1:5432 and a Kafka-compatible
# broker on 127.0.0.1:9092. Idempotent: whatever already runs is reused.
#
# - If a Docker engine answers: `docker compose up -d --wait postgres kafka` (compose.yaml;
#   only those two: the service itself runs on the host).
# - Otherwise: the machine's PostgreSQL cluster (started with pg_ctlcluster if down) and
#   tansu (https://github.com/tansu-io/tansu, installed with cargo if missing), started in
#   the background with its log in .run/tansu.log and its pid in .run/tansu.pid.
#
# Environment: SERVICES_MODE=docker|local forces a mode; SERVICES_WAIT (default 30) bounds
# each start-up wait, in seconds; TANSU_LOG (default warn) is tansu's RUST_LOG filter.
# Topics are not created here: the service creates its topic (KAFKA_TOPIC) itself.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RUN_DIR="$ROOT/.run"
PID_FILE="$RUN_DIR/tansu.pid"
LOG_FILE="$RUN_DIR/tansu.log"
PG_HOST=127.0.0.1
PG_PORT=5432
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_URL="tcp://$KAFKA_HOST:$KAFKA_PORT"
WAIT_SECS=${SERVICES_WAIT:-30}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'services-up: %s\n' "$*"; }
die() { printf 'services-up: ERROR: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on $1:$2.
# shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

docker_answers() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }

# ---------------------------------------------------------------------------- docker
mode=${SERVICES_MODE:-}
if [[ -z $mode ]]; then
    if docker_answers; then mode=docker; else mode=local; fi
fi

if [[ $mode == docker ]]; then
    say "docker engine answers: starting postgres and kafka from compose.yaml"
    if docker compose version >/dev/null 2>&1; then
        docker compose up -d --wait postgres kafka
    elif command -v docker-compose >/dev/null 2>&1; then
        docker-compose up -d postgres kafka
        for _ in $(seq "$((WAIT_SECS * 4))"); do
            port_open "$PG_HOST" "$PG_PORT" && port_open "$KAFKA_HOST" "$KAFKA_PORT" && break
            sleep 1
        done
    else
        die "neither 'docker compose' nor 'docker-compose' is available"
    fi
    port_open "$PG_HOST" "$PG_PORT" || die "postgres is not reachable on $PG_HOST:$PG_PORT"
    port_open "$KAFKA_HOST" "$KAFKA_PORT" || die "kafka is not reachable on $KAFKA_HOST:$KAFKA_PORT"
    say "postgres on $PG_HOST:$PG_PORT and kafka on $KAFKA_HOST:$KAFKA_PORT are up"
    exit 0
fi
[[ $mode == local ]] || die "SERVICES_MODE must be 'docker' or 'local', not '$mode'"

# ---------------------------------------------------------------------------- postgres
if pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    say "postgres: already accepting connections on $PG_HOST:$PG_PORT"
else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ ! -d /etc/postgresql ]]; then
        die "postgres is down on $PG_HOST:$PG_PORT and no Debian PostgreSQL cluster is installed (apt-get install postgresql)"
    fi
    pg_version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    say "postgres: starting cluster $pg_version/main"
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start ||
        die "pg_ctlcluster could not start $pg_version/main (see /var/log/postgresql/)"
    for _ in $(seq "$WAIT_SECS"); do
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break
        sleep 1
    done
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" ||
        die "postgres did not accept connections on $PG_HOST:$PG_PORT within ${WAIT_SECS}s"
    say "postgres: accepting connections on $PG_HOST:$PG_PORT"
fi

# ---------------------------------------------------------------------------- tansu
tansu_pid() {
    local pid
    [[ -f $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == tansu ]] || return 1
    printf '%s\n' "$pid"
}

# tansu's in-memory engine (dynostore) answers a fetch that starts inside a record batch with
# the batches after it, so a consumer resuming from a committed offset skips the rest of that
# batch (tansu 0.6.0, dynostore.rs `fetch`: `offsets.split_off(&offset)`). Its SQLite engine
# fetches record by record and has no such gap, and keeps topics across broker restarts as
# Kafka does; so we run tansu on SQLite, which needs the `libsql` feature.
TANSU_FEATURES=dynostore,libsql
# A build with the libsql feature carries SQLite itself.
has_sqlite() { grep -q sqlite3_open_v2 "$1" 2>/dev/null; }

TANSU=$(command -v tansu || true)
if [[ -z $TANSU ]] || ! has_sqlite "$TANSU"; then
    command -v cargo >/dev/null 2>&1 || die "tansu (with SQLite) is not installed and cargo is not on PATH"
    say "tansu: ${TANSU:-not installed}${TANSU:+ lacks the SQLite engine}; running 'cargo install tansu --locked --features $TANSU_FEATURES' (~15 minutes the first time)"
    cargo install tansu --locked --features "$TANSU_FEATURES"
    TANSU=$(command -v tansu) || die "cargo install finished but tansu is not on PATH"
    has_sqlite "$TANSU" || die "$TANSU still has no SQLite engine"
fi
say "tansu: using $TANSU ($("$TANSU" --version 2>/dev/null || echo 'version unknown'))"

if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    if pid=$(tansu_pid); then
        say "tansu: already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
    else
        say "kafka: something already listens on $KAFKA_HOST:$KAFKA_PORT, reusing it"
    fi
else
    mkdir -p "$RUN_DIR"
    printf '\n=== %s services-up: starting tansu\n' "$(date -u +%FT%TZ)" >>"$LOG_FILE"
    say "tansu: starting on $KAFKA_URL (log: .run/tansu.log)"
    (
        # Detach fully: own session, no terminal, no inherited descriptors beyond 0-2,
        # so that it outlives make/CI and does not hold their pipes open.
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        export RUST_LOG=${TANSU_LOG:-warn}
        # SQLite file .run/tansu.db (tansu resolves the path against its working directory).
        cd "$RUN_DIR"
        exec setsid nohup "$TANSU" broker \
            --storage-engine sqlite://tansu.db \
            --listener-url "$KAFKA_URL" \
            --advertised-listener-url "$KAFKA_URL"
    ) </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    for _ in $(seq "$((WAIT_SECS * 4))"); do
        port_open "$KAFKA_HOST" "$KAFKA_PORT" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if ! port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            why="did not accept connections on $KAFKA_HOST:$KAFKA_PORT within ${WAIT_SECS}s (stopped it)"
        else
            why="exited before accepting connections on $KAFKA_HOST:$KAFKA_PORT"
        fi
        rm -f "$PID_FILE"
        printf 'services-up: last lines of %s:\n' "$LOG_FILE" >&2
        tail -n 20 "$LOG_FILE" >&2 || true
        die "tansu $why"
    fi
    say "tansu: accepting connections on $KAFKA_HOST:$KAFKA_PORT (pid $pid)"
fi

