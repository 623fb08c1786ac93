#!/usr/bin/env bash
# Start what order-service needs: PostgreSQL on 127.0.0.1:5432 and Apache Kafka on
# 127.0.0.1:9092. Idempotent: whatever already runs is reused.
#
# - If a Docker engine answers: `docker compose up -d --wait postgres kafka` (compose.yaml;
#   only those two: the service itself runs on the host).
# - Otherwise:
#   - PostgreSQL from Debian's packages: installed (`apt-get install postgresql`) if no
#     cluster is, its newest cluster started with pg_ctlcluster if it is down, and the role
#     of the default DATABASE_URL (postgres, password postgres) made to work over TCP;
#   - Apache Kafka from Maven Central's jars, one KRaft node: scripts/kafka.sh up.
#   What this script starts, scripts/services-down.sh (make all-down) stops.
#
# Environment: SERVICES_MODE=docker|local forces a mode; SERVICES_WAIT (default 30) bounds
# PostgreSQL's start-up wait in seconds; KAFKA_* as scripts/kafka.sh reads them.
# Topics are not created here: the service creates its topics itself.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_DIR=.run
PG_STARTED_MARK="$RUN_DIR/postgres.started"
PG_HOST=127.0.0.1
PG_PORT=5432
# The role and password of the service's default DATABASE_URL (src/infra/config/mod.rs, .env.example).
PG_ROLE=postgres
PG_PASSWORD=postgres
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
WAIT_SECS=${SERVICES_WAIT:-30}

say() { printf 'services-up: %s\n' "$*"; }
die() { printf 'services-up: ERROR: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on $1:$2.
# shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

docker_answers() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

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
# The newest Debian cluster version under /etc/postgresql, if any.
pg_version() { find /etc/postgresql -mindepth 2 -maxdepth 2 -name main -printf '%h\n' 2>/dev/null | xargs -rn1 basename | sort -V | tail -n 1; }

install_postgres() {
    say "postgres: no Debian PostgreSQL cluster; installing the postgresql package"
    as_root true 2>/dev/null || die "installing PostgreSQL needs root (or sudo): apt-get install postgresql"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql ||
        die "apt-get install postgresql failed"
    if [[ -z $(pg_version) ]]; then
        local version
        version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
        [[ -n $version ]] || die "the postgresql package installed no server under /usr/lib/postgresql"
        as_root pg_createcluster "$version" main
    fi
}

# The default DATABASE_URL logs in over TCP with a password; Debian's postgres role has none.
ensure_role_password() {
    PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -qAtX -c 'SELECT 1' \
        >/dev/null 2>&1 && return 0
    if [[ -n $(pg_version) ]] && command -v runuser >/dev/null 2>&1 && as_root true 2>/dev/null; then
        say "postgres: setting the password of role $PG_ROLE (the default DATABASE_URL's)"
        as_root runuser -u postgres -- psql -p "$PG_PORT" -qAtX -v ON_ERROR_STOP=1 \
            -c "ALTER ROLE $PG_ROLE WITH LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null ||
            die "could not set the password of role $PG_ROLE"
        PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -qAtX -c 'SELECT 1' \
            >/dev/null || die "role $PG_ROLE still cannot log in with the default password"
    else
        say "postgres: WARNING: $PG_ROLE/$PG_PASSWORD cannot log in on $PG_HOST:$PG_PORT; set DATABASE_URL to a role that can"
    fi
}

if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
    say "postgres: already accepting connections on $PG_HOST:$PG_PORT"
else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z $(pg_version) ]]; then
        install_postgres
    fi
    version=$(pg_version)
    say "postgres: starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        die "pg_ctlcluster could not start $version/main (see /var/log/postgresql/)"
    mkdir -p "$RUN_DIR"
    echo "$version" >"$PG_STARTED_MARK"
    for _ in $(seq "$WAIT_SECS"); do
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break
        sleep 1
    done
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" ||
        die "postgres did not accept connections on $PG_HOST:$PG_PORT within ${WAIT_SECS}s"
    say "postgres: accepting connections on $PG_HOST:$PG_PORT"
fi
ensure_role_password

# ---------------------------------------------------------------------------- kafka
bash scripts/kafka.sh up
