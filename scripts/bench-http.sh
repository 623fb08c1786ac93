#!/usr/bin/env bash
# make bench-http: GET /api/order/{id} from the cache, from PostgreSQL, and nginx serving the
# same documents as static files, measured in one run with the same load.
#
#   1. installs what it lacks (wrk and nginx-light from Debian, oha with cargo), builds the
#      release binary;
#   2. loads N (100,000) generated orders into a fresh database with COPY;
#   3. starts `serve` (cache on, nothing warmed), notes its resident memory, requests each of
#      the N orders once (each a miss that fills the cache) and notes it again;
#   4. (a) cache hits over the first 10,000 ids; (b) misses with the cache off
#      (CACHE_MAX_BYTES=0) over all N ids; (c) nginx serving those 10,000 documents as files,
#      with as many workers as `serve` has runtime threads (one per core);
#   5. for each: wrk's requests per second (same threads, connections and duration; (a) and
#      (c) alternate twice and keep their better run), and p50 / p99 latency from oha at a
#      fixed rate with latency correction.
#
# `serve` runs with RUST_LOG=warn: no access log (target `access`) and no per-request spans.
# Only 127.0.0.1 is used. Needs PostgreSQL on 127.0.0.1:5432 and Apache Kafka on
# 127.0.0.1:9092 (`make all-up`, or `bash scripts/kafka.sh up` for the broker alone): `serve`
# creates and subscribes to a fresh topic that nothing is produced to (left on the broker,
# empty).
# Environment: N (100000), HOT (10000), SEED (42), DURATION (10s), THREADS (2),
# CONNECTIONS (64), RATE (10000), KAFKA_BROKERS, PGURL (server URL, with the password:
# PostgreSQL asks for one over TCP).
set -euo pipefail
# A failing command inside $(...) stops the script too, not only a failing plain command.
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${N:-100000}
HOT=${HOT:-10000}
SEED=${SEED:-42}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
RATE=${RATE:-10000}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
PGURL=${PGURL:-postgres://postgres:postgres@127.0.0.1:5432}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'bench-http: %s\n' "$*" >&2; }
calc() { python3 -c "import sys; print(eval(sys.argv[1]))" "$1"; }

# 1. Tools. oha compiles for minutes: started first, in the background, waited for last.
oha_install=""
if ! command -v oha > /dev/null; then
    say "installing oha (cargo install oha --locked; a few minutes, once)"
    cargo install oha --locked --quiet > /dev/null 2>&1 &
    oha_install=$!
fi
missing=()
command -v wrk > /dev/null || missing+=(wrk)
[[ -x /usr/sbin/nginx ]] || command -v nginx > /dev/null || missing+=(nginx-light)
if ((${#missing[@]})); then
    say "installing ${missing[*]} from Debian"
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y -q "${missing[@]}" > /dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release --quiet --bin order-service
BIN=target/release/order-service

name="bench_http_$(date +%s)_$$"
work=$(mktemp -d /tmp/bench-http.XXXXXX)
chmod 755 "$work" # nginx's workers may run as another user
psql_admin() { psql "$PGURL/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
serve_pid=""; nginx_pid=""
stop_serve() {
    if [[ -n $serve_pid ]]; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
        serve_pid=""
    fi
}
cleanup() {
    stop_serve
    [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null || true
    [[ -n $oha_install ]] && kill "$oha_install" 2>/dev/null || true
    psql_admin -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # url: waits until it answers
    for _ in $(seq 200); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    say "nothing answers at $1"; exit 1
}
max() { echo $(( $1 > $2 ? $1 : $2 )); }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

say "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(. /etc/os-release; echo "$PRETTY_NAME")"

# 2. N orders in a fresh database; the ids; the first HOT documents as files for nginx.
"$BIN" generate -n "$N" --seed "$SEED" > "$work/orders.jsonl"
json_bytes=$(stat -c %s "$work/orders.jsonl")
json_avg=$(( (json_bytes - N) / N )) # without the newlines
mkdir -p "$work/www/api/order"
python3 - "$work" "$HOT" <<'PY'
import json, sys
work, hot = sys.argv[1], int(sys.argv[2])
with open(f"{work}/orders.jsonl") as src, open(f"{work}/orders.copy", "w") as copy, \
        open(f"{work}/ids.txt", "w") as ids, open(f"{work}/hot.txt", "w") as hot_ids:
    for i, line in enumerate(src):
        doc = line.rstrip("\n")
        uid = json.loads(doc)["order_uid"]
        copy.write(uid + "\t" + doc.replace("\\", "\\\\") + "\n")
        ids.write(uid + "\n")
        if i < hot:
            hot_ids.write(uid + "\n")
            # The generator prints each order's canonical JSON: the bytes `serve` answers.
            with open(f"{work}/www/api/order/{uid}", "w") as f:
                f.write(doc)
PY
chmod -R a+rX "$work/www"
DATABASE_URL="$PGURL/$name" RUST_LOG=warn "$BIN" migrate
psql "$PGURL/$name" -qAtX -v ON_ERROR_STOP=1 \
    -c "\\copy orders (order_uid, doc) FROM '$work/orders.copy'" \
    -c "ANALYZE orders"
say "loaded $N orders ($json_avg bytes of JSON each) into database $name"

# wrk scripts: each thread walks the id list from its own offset (requests built once).
cat > "$work/rotate.lua" <<'LUA'
local requests, n, i = {}, 0, 0
local threads = 0
function setup(thread)
    thread:set("offset", threads)
    threads = threads + 1
end
function init(args)
    for id in io.lines(args[1]) do
        n = n + 1
        requests[n] = wrk.format("GET", "/api/order/" .. id)
    end
    i = (offset or 0) * 7919 % n
end
function request()
    i = i % n + 1
    return requests[i]
end
LUA
# Requests each id once (thread k takes ids k, k+T, ...), counts answers, then stops.
cat > "$work/once.lua" <<'LUA'
local threads, all = 0, {}
function setup(thread)
    thread:set("index", threads)
    threads = threads + 1
    table.insert(all, thread)
end
local requests, n, sent, answered = {}, 0, 0, 0
hits, misses, bad = 0, 0, 0
function init(args)
    local total, k = tonumber(args[2]), 0
    for id in io.lines(args[1]) do
        if k % total == index then
            n = n + 1
            requests[n] = wrk.format("GET", "/api/order/" .. id)
        end
        k = k + 1
    end
end
function request()
    sent = sent + 1
    return requests[math.min(sent, n)]
end
function response(status, headers, body)
    answered = answered + 1
    if answered <= n then
        if status ~= 200 then bad = bad + 1
        elseif headers["x-cache"] == "hit" or headers["X-Cache"] == "hit" then hits = hits + 1
        else misses = misses + 1 end
    end
    if answered >= n then wrk.thread:stop() end
end
function done()
    local h, m, b = 0, 0, 0
    for _, t in ipairs(all) do
        h, m, b = h + t:get("hits"), m + t:get("misses"), b + t:get("bad")
    end
    io.write(string.format("loaded: %d misses, %d hits, %d not 200\n", m, h, b))
end
LUA

# wrk with the same threads, connections and duration for every target; prints req/s.
run_wrk() { # label url ids
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$work/rotate.lua" "$2" -- "$3")
    printf '%s\n' "$out" > "$work/wrk-$1.txt"
    if grep -q "Non-2xx" <<< "$out"; then
        say "$1: wrk saw non-2xx answers:"; grep "Non-2xx" <<< "$out" >&2; exit 1
    fi
    awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<< "$out"
}
# oha at a fixed rate with latency correction; prints "p50_ms p99_ms".
run_oha() { # label base ids
    sed "s|^|$2/api/order/|" "$3" > "$work/urls-$1.txt"
    oha -z "$DURATION" -q "$RATE" --latency-correction -c "$CONNECTIONS" --no-tui \
        --output-format json --urls-from-file "$work/urls-$1.txt" > "$work/oha-$1.json"
    python3 - "$work/oha-$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
codes = r.get("statusCodeDistribution", {})
if set(codes) - {"200"}:
    sys.exit(f"{sys.argv[2]}: oha saw answers other than 200: {codes}")
p = r["latencyPercentiles"]
print(f'{p["p50"] * 1000:.2f} {p["p99"] * 1000:.2f} {r["summary"]["requestsPerSec"]:.0f}')
PY
}

start_serve() { # cache_max_bytes
    local port; port=$(free_port)
    DATABASE_URL="$PGURL/$name" KAFKA_BROKERS=$BROKERS KAFKA_TOPIC="${name}_orders" \
        KAFKA_GROUP_ID="${name}_group" KAFKA_DLQ_TOPIC= HTTP_ADDR="127.0.0.1:$port" \
        CACHE_WARM_LIMIT=0 CACHE_MAX_BYTES="$1" RUST_LOG=warn \
        "$BIN" serve --no-migrate >> "$work/serve.log" 2>&1 &
    serve_pid=$!
    base="http://127.0.0.1:$port"
    wait_http "$base/health/live"
}

if [[ -n $oha_install ]]; then
    say "waiting for the oha install"
    wait "$oha_install" || { say "cargo install oha failed"; exit 1; }
    oha_install=""
fi
oha --help | grep -q -- "--urls-from-file" || { say "oha lacks --urls-from-file: cargo install oha --locked --force"; exit 1; }

# nginx (c): the hot documents as files, one worker per runtime thread of serve; started
# now, so that its runs and the hit runs alternate.
workers=$(nproc)
nginx_port=$(free_port)
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes $workers;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=20000 inactive=60s;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
        location /api/order/ { default_type application/json; }
    }
}
CONF
"$NGINX" -e "$work/nginx/logs/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
nginx_base="http://127.0.0.1:$nginx_port"
wait_http "$nginx_base/api/order/$(head -1 "$work/hot.txt")"
first=$(head -1 "$work/hot.txt")
cmp -s <(curl -fs "$nginx_base/api/order/$first") "$work/www/api/order/$first" \
    || { say "nginx does not answer the file's bytes"; exit 1; }

# 3. Memory of serve before and after caching the N orders.
start_serve 1GiB
threads=$(ls "/proc/$serve_pid/task" | wc -l)
curl -fs -o /dev/null "$base/api/order/$(head -1 "$work/ids.txt")" # one miss: pool and runtime up
sleep 1
rss_before=$(rss_kib "$serve_pid")
loaded=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d120s -s "$work/once.lua" "$base" -- "$work/ids.txt" "$THREADS" | grep '^loaded:')
sleep 2
rss_after=$(rss_kib "$serve_pid")
per_order=$(( (rss_after - rss_before) * 1024 / N ))

# 4a. Hits: every hot id is cached (loaded above).
first=$(head -1 "$work/hot.txt")
curl -fs -o /dev/null -w '%header{x-cache}' "$base/api/order/$first" | grep -q hit \
    || { say "the first hot id is not a hit"; exit 1; }
cmp -s <(curl -fs "$base/api/order/$first") "$work/www/api/order/$first" \
    || { say "serve and the file nginx serves differ"; exit 1; }
# 4a and 4c alternate, twice, and each keeps its better run: the machine may be shared, and
# whatever else runs then weighs on both alike.
hit_rps=0; nginx_rps=0
for _ in 1 2; do
    hit_rps=$(max "$hit_rps" "$(run_wrk hit "$base" "$work/hot.txt")")
    nginx_rps=$(max "$nginx_rps" "$(run_wrk nginx "$nginx_base" "$work/hot.txt")")
done
out=$(run_oha hit "$base" "$work/hot.txt")
read -r hit_p50 hit_p99 hit_oha_rps <<< "$out"
out=$(run_oha nginx "$nginx_base" "$work/hot.txt")
read -r nginx_p50 nginx_p99 nginx_oha_rps <<< "$out"
kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=""
rss_end=$(rss_kib "$serve_pid")
stop_serve

# 4b. Misses: the cache off, every request reads PostgreSQL.
start_serve 0
miss_rps=$(run_wrk miss "$base" "$work/ids.txt")
out=$(run_oha miss "$base" "$work/ids.txt")
read -r miss_p50 miss_p99 miss_oha_rps <<< "$out"
stop_serve


hit_nginx=$(calc "f'{$hit_rps / $nginx_rps:.2f}'")
miss_hit=$(calc "f'{$miss_rps / $hit_rps:.2f}'")
mem_ratio=$(calc "f'{$per_order / $json_avg:.2f}'")
cat <<OUT
orders: $N in PostgreSQL, $json_avg bytes of JSON each on average; hot set $HOT ids
load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (ids rotated by a Lua script; (a) and (c) best of 2, alternated); oha -z $DURATION -q $RATE --latency-correction -c $CONNECTIONS
serve: RUST_LOG=warn, $threads OS threads ($(nproc) runtime workers); nginx $($NGINX -v 2>&1 | sed 's/.*\///'): $workers workers, open_file_cache, access_log off
                          wrk req/s   p50 ms   p99 ms   (oha achieved req/s)
(a) serve, cache hits     $(printf '%9s %8s %8s   (%s)' "$hit_rps" "$hit_p50" "$hit_p99" "$hit_oha_rps")
(b) serve, cache off      $(printf '%9s %8s %8s   (%s)' "$miss_rps" "$miss_p50" "$miss_p99" "$miss_oha_rps")
(c) nginx, static files   $(printf '%9s %8s %8s   (%s)' "$nginx_rps" "$nginx_p50" "$nginx_p99" "$nginx_oha_rps")
hits / nginx:             $hit_nginx   (goal >= 1.0)
misses / hits:            $miss_hit   (goal >= 0.5)
$loaded
RSS of serve:             $((rss_before / 1024)) MiB before, $((rss_after / 1024)) MiB after caching $N orders ($((rss_end / 1024)) MiB after the hit runs)
memory per cached order:  $per_order bytes = $mem_ratio x its JSON ($json_avg bytes)   (goal <= 1.5)
OUT
