#!/usr/bin/env bash
# Installs what the tests need beyond cargo. Idempotent: each section checks first and does
# nothing when its tool is already there. Called by `make test` before cargo test, and by CI.
# Each tool has its own section; add yours below the others.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
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
browser_tests
