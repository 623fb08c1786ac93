#!/usr/bin/env bash
# Stop what scripts/services-up.sh started.
# - Docker engine answers: `docker compose down`.
# - Otherwise: stop the tansu broker recorded in .run/tansu.pid. The machine's PostgreSQL
#   cluster is left running: it belongs to the machine, not to this project.
# SERVICES_MODE=docker|local forces a mode, as for services-up.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PID_FILE=.run/tansu.pid

say() { printf 'services-down: %s\n' "$*"; }
die() { printf 'services-down: ERROR: %s\n' "$*" >&2; exit 1; }

docker_answers() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }

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

if [[ ! -f $PID_FILE ]]; then
    say "tansu: no $PID_FILE, nothing of ours to stop"
else
    pid=$(<"$PID_FILE")
    if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == tansu ]]; then
        say "tansu: stopping pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "tansu: still alive after 10s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "tansu: stopped"
    else
        say "tansu: pid '$pid' from $PID_FILE is not a running tansu (stale pid file removed)"
    fi
    rm -f "$PID_FILE"
fi
say "postgres: left running (it is the machine's PostgreSQL cluster, not this project's)"
