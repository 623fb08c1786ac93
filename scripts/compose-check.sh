#!/usr/bin/env bash
# Checks compose.yaml without a Docker engine: `docker compose config` (Compose v2) and/or
# `docker-compose config` (v1, Debian's 1.29), whichever are installed, with the "tools" and
# "observability" profiles so that the one-off `send` service, Prometheus and Grafana are
# checked too. Fails if neither is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

checked=0
if docker compose version >/dev/null 2>&1; then
    echo "compose-check: $(docker compose version)"
    docker compose -f compose.yaml --profile tools --profile observability config --quiet
    checked=$((checked + 1))
fi
if command -v docker-compose >/dev/null 2>&1; then
    echo "compose-check: $(docker-compose version --short 2>/dev/null || echo 'docker-compose v1')"
    docker-compose -f compose.yaml --profile tools --profile observability config --quiet
    checked=$((checked + 1))
fi
if ((checked == 0)); then
    echo "compose-check: ERROR: neither 'docker compose' nor 'docker-compose' is installed (apt-get install docker-compose)" >&2
    exit 1
fi
echo "compose-check: compose.yaml is valid for the $checked Compose version(s) installed"
