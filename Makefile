# order-service: everyday commands. Run `make` (or `make help`) to list them.
# The binary reads its configuration from flags, the environment and .env (see .env.example).

SHELL := /bin/bash
CARGO ?= cargo
# Number of fake orders `make send` produces; SEED makes them reproducible.
N ?= 10
SEED ?=

MAKEFLAGS += --no-print-directory
export PATH := $(HOME)/.cargo/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help all-up all-down build migrate run send test check lint fmt bench bench-ingest bench-http bench-freshness compose-check

help: ## List the targets
	@echo "Targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(firstword $(MAKEFILE_LIST)) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'

all-up: ## Start PostgreSQL and Apache Kafka (docker compose, or Debian's PostgreSQL + Kafka from Maven Central)
	@bash scripts/services-up.sh

all-down: ## Stop what all-up started
	@bash scripts/services-down.sh

build: ## Build the release binary (target/release/order-service)
	$(CARGO) build --release

migrate: all-up ## Create the database if missing and apply the migrations
	$(CARGO) run --release -- migrate

run: all-up ## Run the service: Kafka consumer + HTTP server on HTTP_ADDR (:8081); prints the page's sign-in link
	@# Without an OPERATOR_TOKEN (environment or .env), one is made once, kept in
	@# .run/operator-token (mode 600), and the page's sign-in link printed here, never logged.
	@token_file=.run/operator-token; \
	if [ -z "$${OPERATOR_TOKEN:-}" ] && ! grep -qs '^OPERATOR_TOKEN=' .env; then \
		mkdir -p .run; \
		[ -s $$token_file ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $$token_file); \
		export OPERATOR_TOKEN=$$(cat $$token_file); \
		echo "Open http://localhost:8081/#token=$$OPERATOR_TOKEN to sign in as the operator (token in $$token_file)"; \
	fi; \
	$(CARGO) run --release -- serve

send: ## Produce N (default 10) fake orders to Kafka; prints their order_uid
	@$(CARGO) run --release --quiet -- send -n $(N) $(if $(SEED),--seed $(SEED))

test: all-up ## Run all tests against the real PostgreSQL and Apache Kafka (started by all-up)
	bash scripts/test-tools.sh
	$(CARGO) test --locked

check: lint ## The edit loop, no services needed: lint, then the unit tests (cargo test --lib)
	$(CARGO) test --locked --lib

bench: bench-ingest bench-http bench-freshness ## Run every benchmark (figures go to docs/benchmarks.md by hand)

bench-ingest: all-up ## Ingest rate against the broker and database limits (N=100000)
	@N=$(or $(BENCH_N),100000) scripts/bench-ingest.sh

bench-http: all-up ## GET by id: cache hits and misses against nginx, memory per cached order
	@scripts/bench-http.sh

bench-freshness: all-up ## Producer ack to first 200 on GET /api/order/{id}: p50/p99/max per case
	@scripts/bench-freshness.sh

lint: ## Check formatting, run clippy with warnings as errors, and check the API docs' links
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --lib --quiet

compose-check: ## Check compose.yaml with docker compose / docker-compose config (no engine needed)
	@bash scripts/compose-check.sh

fmt: ## Format the code
	$(CARGO) fmt --all
