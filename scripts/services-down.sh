#!/usr/bin/env bash
# Stop what scripts/services-up.sh started.
# - Docker engine answers: `docker compose down`.
# - Otherwise: the Apache Kafka node of scripts/kafka.sh, and the PostgreSQL cluster if
#   services-up.sh started it (.run/postgres.started); a cluster that was already running
#   belongs to the machine and is left alone.
# SERVICES_MODE=docker|local forces a mode, as for services-up.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG_STARTED_MARK=.run/postgres.started

say() { printf 'services-down: %s\n' "$*"; }
die() { printf 'services-down: ERROR: %s\n' "$*" >&2; exit 1; }

docker_answers() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

mode=${SERVICES_MODE:-}
if [[ -z $mode ]]; then
    if docker_answers; then mode=docker; else mode=local; fi
fi

if [[ $mode == docker ]]; then
    say "docker engine answers: stopping the compose services"
    if docker compose version >/dev/null 2>&1; then
        docker compose down
    else
        docker-compose down
    fi
    exit 0
fi
[[ $mode == local ]] || die "SERVICES_MODE must be 'docker' or 'local', not '$mode'"

bash scripts/kafka.sh down

if [[ -f $PG_STARTED_MARK ]]; then
    version=$(<"$PG_STARTED_MARK")
    say "postgres: stopping cluster $version/main (started by services-up.sh)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main stop || say "postgres: cluster $version/main was not running"
    rm -f "$PG_STARTED_MARK"
else
    say "postgres: left running (services-up.sh did not start it)"
fi
