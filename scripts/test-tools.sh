#!/usr/bin/env bash
# Installs what the tests need beyond cargo. Idempotent: each section checks first and does
# nothing when its tool is already there. Called by `make test` before cargo test (and so by
# .ci/run). Each tool has its own section.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ---- schemathesis (OpenAPI conformance run of tests/integration/openapi.rs) ----------------
# From PyPI into a virtualenv at .run/venv; the test runs .run/venv/bin/schemathesis.
schemathesis() {
    local spec="schemathesis>=4.1,<5" venv=.run/venv
    if ! "$venv/bin/python" -c 'import schemathesis, sys; sys.exit(int(schemathesis.__version__.split(".")[0]) != 4)' 2>/dev/null; then
        echo "test-tools: installing $spec into $venv"
        mkdir -p .run
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec"
    fi
    "$venv/bin/schemathesis" --version
}

# ---- Browser tests (tests/browser, run by tests/integration/page.rs) ----------------------
# Debian's chromium (never a downloaded browser), node + npm, and playwright-core as pinned
# by tests/browser/package-lock.json.
browser_tests() {
    local need=()
    [ -x /usr/bin/chromium ] || need+=(chromium)
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
    if [ ${#need[@]} -gt 0 ]; then
        echo "test-tools: installing ${need[*]} (apt)"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
    local dir=tests/browser
    # npm writes node_modules/.package-lock.json on install: older than the lock file means
    # the lock changed since (stale).
    if [ ! -f "$dir/node_modules/.package-lock.json" ] \
        || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "test-tools: npm ci in $dir"
        (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    fi
}

schemathesis
browser_tests
