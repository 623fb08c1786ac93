#!/usr/bin/env bash
# Installs the tools the tests need beyond cargo. Idempotent: a tool already installed is left
# as it is. Called by `make test` before `cargo test` (and so by .ci/run).
# Each tool has its own section below; add yours as a new section.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- schemathesis (OpenAPI conformance run of tests/integration/openapi.rs) -----------------
# From PyPI into a virtualenv at .run/venv; the test runs .run/venv/bin/schemathesis.
SCHEMATHESIS_SPEC="schemathesis>=4.1,<5"
VENV=.run/venv
if ! "$VENV/bin/python" -c 'import schemathesis, sys; sys.exit(int(schemathesis.__version__.split(".")[0]) != 4)' 2>/dev/null; then
    echo "test-tools: installing $SCHEMATHESIS_SPEC into $VENV"
    mkdir -p .run
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS_SPEC"
fi
"$VENV/bin/schemathesis" --version
# --- end schemathesis ------------------------------------------------------------------------
