#!/usr/bin/env bash
# make bench-http: GET /api/order/{id} from the cache, from PostgreSQL, and nginx serving the
# same documents as static files, measured in one run with the same load.
#
#   1. installs what it lacks (wrk and nginx-light from Debian, oha with cargo), builds the
#      release binary;
#   2. loads N (100,000) generated orders into a fresh database with COPY;
#   3. starts `serve` with its access log off (RUST_LOG=warn), cache on, nothing warmed; notes
#      its resident memory, requests each of the N orders once (each a miss that fills the
#      cache) and notes it again;
#   4. starts a second `serve` with the default settings (RUST_LOG unset: the access log at
#      INFO, to a file) and requests the first HOT (10,000) ids from it once, so that they are
#      cached there too; starts two nginx (one worker per core, as `serve` has runtime
#      threads) serving those HOT documents as files, one with its access log on (its
#      default: one line per request to a file) and one with it off;
#   5. cache hits over the HOT ids, for each pair (serve with its log on, nginx with its log
#      on) and (both off), with keep-alive and with a new connection per request
#      (`Connection: close`): wrk's requests per second, the pair alternated ROUNDS (3) times;
#      each ratio is the median of the rounds' ratios (each round's two runs are next to each
#      other in time, so that a slower or faster minute of a shared machine weighs on both),
#      each figure the median of its runs;
#   6. misses: a third `serve`, default settings and the cache off (CACHE_MAX_BYTES=0), every
#      request a PostgreSQL read, over all N ids, alternated ROUNDS times with a hits run of the
#      second (log on, keep-alive): misses / hits is the median of those rounds' ratios;
#   7. p50 / p99 latency from oha at a fixed RATE (10,000/s) with latency correction, each run
#      after a `sync`: hits (default settings) and nginx (log on) alternated twice, each keeping
#      its run with the lower p99; misses (default settings) once, with that serve alone;
#   8. the floor: a bare hyper server (examples/hyper_floor.rs) answering the HOT documents
#      from memory with the headers of a hit of `serve`, in the log-off keep-alive alternation:
#      what is left of `serve`'s gap to nginx once its own code is taken away.
#
# Only 127.0.0.1 is used. Needs PostgreSQL on 127.0.0.1:5432 and Apache Kafka on
# 127.0.0.1:9092 (`make all-up`, or `bash scripts/kafka.sh up` for the broker alone): each
# `serve` creates and subscribes to a fresh topic that nothing is produced to (left on the
# broker, empty).
# Environment: N (100000), HOT (10000), SEED (42), DURATION (10s), THREADS (2),
# CONNECTIONS (64), RATE (10000), ROUNDS (3), KAFKA_BROKERS, PGURL (server URL, with the password:
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
ROUNDS=${ROUNDS:-3}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench-http: ROUNDS must be a whole number of 1 or more, not '$ROUNDS'" >&2; exit 2; }
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
cargo build --release --quiet --bin order-service --example hyper_floor
BIN=target/release/order-service
FLOOR=target/release/examples/hyper_floor

name="bench_http_$(date +%s)_$$"
work=$(mktemp -d /tmp/bench-http.XXXXXX)
chmod 755 "$work" # nginx's workers may run as another user
psql_admin() { psql "$PGURL/postgres" -qAtX -v ON_ERROR_STOP=1 "$@"; }
pids=() # every serve and nginx started, stopped at the end
stop() { # pid...: stops them and waits for them
    kill -TERM "$@" 2>/dev/null || true
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
    ((${#pids[@]})) && stop "${pids[@]}"
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
# The median of numbers (the middle one; the lower of the two middle ones of an even count).
median() { calc "sorted([$(IFS=,; echo "$*")])[($# - 1) // 2]"; }
# The median of the ratios a[i] / b[i] of two lists of runs given as "a1 a2 a3" "b1 b2 b3"
# (the lower middle one, as `median`).
paired_ratio() { calc "f'{sorted(a / b for a, b in zip([${1// /,}], [${2// /,}]))[(len([${1// /,}]) - 1) // 2]:.2f}'"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
machine="$(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(. /etc/os-release; echo "$PRETTY_NAME")"
say "machine: $machine"

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
        escaped = doc.replace("\\", "\\\\")
        # The document and its canonical text (`body`), as ingest stores them.
        copy.write(uid + "\t" + escaped + "\t" + escaped + "\n")
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
    -c "\\copy orders (order_uid, doc, body) FROM '$work/orders.copy'" \
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


# wrk with the same threads, connections and duration for every target; prints req/s.
# `close` asks for a new connection per request (`Connection: close`), `keep` keeps them.
run_wrk() { # label url ids keep|close
    local out header=()
    [[ $4 == close ]] && header=(-H "Connection: close")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "${header[@]}" -s "$work/rotate.lua" "$2" -- "$3")
    printf '%s\n' "$out" > "$work/wrk-$1-$4.txt"
    if grep -q "Non-2xx" <<< "$out"; then
        say "$1 ($4): wrk saw non-2xx answers:"; grep "Non-2xx" <<< "$out" >&2; exit 1
    fi
    if grep -q "Socket errors" <<< "$out"; then
        say "$1 ($4): $(grep "Socket errors" <<< "$out")"
    fi
    awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<< "$out"
}
# oha at a fixed rate with latency correction; prints "p50_ms p99_ms achieved_req/s".
# The runs before leave up to a gigabyte of access logs (serve's and nginx's) in dirty
# pages, whose writeback on these 2 cores lifts both servers' tails: `sync` first, so that
# each latency run starts from the same clean page cache.
run_oha() { # label base ids
    sed "s|^|$2/api/order/|" "$3" > "$work/urls-$1.txt"
    sync
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

# Starts `serve` in the background; sets `pid` and `base`. Its standard error (with the
# access log, when on) goes to $work/serve-<label>.log.
start_serve() { # label cache_max_bytes log(default|off)
    local port; port=$(free_port)
    local log=(RUST_LOG=warn)
    [[ $3 == default ]] && log=(-u RUST_LOG)
    env "${log[@]}" DATABASE_URL="$PGURL/$name" KAFKA_BROKERS=$BROKERS \
        KAFKA_TOPIC="${name}_$1_orders" KAFKA_GROUP_ID="${name}_$1_group" KAFKA_DLQ_TOPIC= \
        HTTP_ADDR="127.0.0.1:$port" CACHE_WARM_LIMIT=0 CACHE_MAX_BYTES="$2" \
        "$BIN" serve --no-migrate >> "$work/serve-$1.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    base="http://127.0.0.1:$port"
    wait_http "$base/health/live"
}
# Requests each id of a file once, $CONNECTIONS at a time (curl --parallel; wrk would run its
# whole -d duration, as its main thread sleeps it out); prints a `loaded:` line (misses, hits,
# not 200) from each answer's status and X-Cache.
load_once() { # base ids
    sed "s|.*|url = \"$1/api/order/&\"\noutput = \"/dev/null\"\nwrite-out = \"%{http_code} %header{x-cache}\\\\n\"|" "$2" > "$work/once.curl"
    curl -s --no-progress-meter --parallel --parallel-max "$CONNECTIONS" -K "$work/once.curl" \
        | awk '$1 != 200 {b++; next} $2 == "hit" {h++; next} {m++}
               END {printf "loaded: %d misses, %d hits, %d not 200\n", m, h, b}'
}

if [[ -n $oha_install ]]; then
    say "waiting for the oha install"
    wait "$oha_install" || { say "cargo install oha failed"; exit 1; }
    oha_install=""
fi
oha --help | grep -q -- "--urls-from-file" || { say "oha lacks --urls-from-file: cargo install oha --locked --force"; exit 1; }

# nginx: the hot documents as files, one worker per runtime thread of serve; one with its
# access log (nginx's default: the combined format, one write per request) and one without.
workers=$(nproc)
start_nginx() { # label access_log_directive
    local port; port=$(free_port)
    mkdir -p "$work/nginx-$1/logs"
    cat > "$work/nginx-$1/nginx.conf" <<CONF
worker_processes $workers;
pid $work/nginx-$1/nginx.pid;
error_log $work/nginx-$1/logs/error.log warn;
events { worker_connections 4096; }
http {
    $2;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=20000 inactive=60s;
    server {
        listen 127.0.0.1:$port;
        root $work/www;
        location /api/order/ { default_type application/json; }
    }
}
CONF
    "$NGINX" -e "$work/nginx-$1/logs/error.log" -p "$work/nginx-$1" -c "$work/nginx-$1/nginx.conf" -g 'daemon off;' &
    pids+=("$!")
    nginx_base="http://127.0.0.1:$port"
    wait_http "$nginx_base/api/order/$(head -1 "$work/hot.txt")"
}
first=$(head -1 "$work/hot.txt")
start_nginx on "access_log $work/nginx-on/logs/access.log"
nginx_on=$nginx_base
start_nginx off "access_log off"
nginx_off=$nginx_base
cmp -s <(curl -fs "$nginx_on/api/order/$first") "$work/www/api/order/$first" \
    || { say "nginx does not answer the file's bytes"; exit 1; }

# 3. Memory of serve (log off) before and after caching the N orders.
start_serve quiet 1GiB off
quiet_pid=$pid; quiet=$base
threads=$(ls "/proc/$quiet_pid/task" | wc -l)
curl -fs -o /dev/null "$quiet/api/order/$(head -1 "$work/ids.txt")" # one miss: pool and runtime up
sleep 1
rss_before=$(rss_kib "$quiet_pid")
loaded=$(load_once "$quiet" "$work/ids.txt")
sleep 2
rss_after=$(rss_kib "$quiet_pid")
per_order=$(( (rss_after - rss_before) * 1024 / N ))

# 4. serve with the default settings, the hot ids cached.
start_serve default 1GiB default
default_pid=$pid; default=$base
loaded_default=$(load_once "$default" "$work/hot.txt")
for target in "$quiet" "$default"; do
    curl -fs -o /dev/null -w '%header{x-cache}' "$target/api/order/$first" | grep -q hit \
        || { say "the first hot id is not a hit at $target"; exit 1; }
    cmp -s <(curl -fs "$target/api/order/$first") "$work/www/api/order/$first" \
        || { say "serve and the file nginx serves differ"; exit 1; }
done

# The floor: bare hyper, the hot documents in memory, the headers of a hit of serve.
curl -fs -D "$work/hit-headers.txt" -o /dev/null "$quiet/api/order/$first"
floor_port=$(free_port)
"$FLOOR" "127.0.0.1:$floor_port" "$work/www/api/order" "$work/hit-headers.txt" &
pids+=("$!")
floor="http://127.0.0.1:$floor_port"
wait_http "$floor/api/order/$first"
cmp -s <(curl -fs "$floor/api/order/$first") "$work/www/api/order/$first" \
    || { say "the floor server does not answer the file's bytes"; exit 1; }

# 5. Hits against nginx: each pair alternates, ROUNDS times (the machine may be shared, and
# whatever else runs then weighs on both alike): each run's req/s is kept, "a b c" by key. The
# floor joins the log-off keep-alive alternation.
declare -A runs
for conn in keep close; do
    for log in on off; do
        if [[ $log == on ]]; then ours=$default; theirs=$nginx_on; else ours=$quiet; theirs=$nginx_off; fi
        for _ in $(seq "$ROUNDS"); do
            runs[serve-$log-$conn]+="$(run_wrk "serve-$log" "$ours" "$work/hot.txt" "$conn") "
            runs[nginx-$log-$conn]+="$(run_wrk "nginx-$log" "$theirs" "$work/hot.txt" "$conn") "
            if [[ $log == off && $conn == keep ]]; then
                runs[floor-keep]+="$(run_wrk floor "$floor" "$work/hot.txt" keep) "
            fi
        done
    done
done
# Latency of hits: serve and nginx alternated, twice, each keeping its run with the lower p99
# (a burst of the machine's other load in one 10 s run moves a p99 most).
hit_runs=(); nginx_runs=()
for _ in 1 2; do
    hit_runs+=("$(run_oha hit "$default" "$work/hot.txt")")
    nginx_runs+=("$(run_oha nginx "$nginx_on" "$work/hot.txt")")
done
lower_p99() { # "p50 p99 rps" "p50 p99 rps": the one with the lower p99
    calc "min(['$1', '$2'], key=lambda run: float(run.split()[1]))"
}
read -r hit_p50 hit_p99 hit_oha_rps <<< "$(lower_p99 "${hit_runs[0]}" "${hit_runs[1]}")"
read -r nginx_p50 nginx_p99 nginx_oha_rps <<< "$(lower_p99 "${nginx_runs[0]}" "${nginx_runs[1]}")"
each_p99="serve $(cut -d' ' -f2 <<< "${hit_runs[0]}") and $(cut -d' ' -f2 <<< "${hit_runs[1]}"), nginx $(cut -d' ' -f2 <<< "${nginx_runs[0]}") and $(cut -d' ' -f2 <<< "${nginx_runs[1]}")"
rss_end=$(rss_kib "$quiet_pid")

# 6. Misses: default settings, the cache off, every request reads PostgreSQL; each run next to
# a hits run of the default serve, for the rounds' ratios.
start_serve miss 0 default
miss=$base; miss_pid=$pid
for _ in $(seq "$ROUNDS"); do
    runs[miss-keep]+="$(run_wrk miss "$miss" "$work/ids.txt" keep) "
    runs[hit-keep]+="$(run_wrk "serve-on" "$default" "$work/hot.txt" keep) "
done
dropped=$(curl -fs "$default/metrics" | awk '/^access_log_lines_dropped_total/ {print $2}')
access_lines=$(grep -c ' access: ' "$work/serve-default.log" || true)
nginx_lines=$(wc -l < "$work/nginx-on/logs/access.log")
# The misses' latency with that serve alone, as the hits' was measured before it started.
others=()
for p in "${pids[@]}"; do [[ $p == "$miss_pid" ]] || others+=("$p"); done
stop "${others[@]}"; pids=("$miss_pid")
read -r miss_p50 miss_p99 miss_oha_rps <<< "$(run_oha miss "$miss" "$work/ids.txt")"
stop "${pids[@]}"; pids=()

# The median of each key's runs.
declare -A rps
for key in "${!runs[@]}"; do
    read -ra each <<< "${runs[$key]}"
    rps[$key]=$(median "${each[@]}")
done

ratio() { calc "f'{$1 / $2:.2f}'"; }
row() { # label key
    printf '%-38s %9s %9s %6s\n' "$1" "${rps[serve-$2]}" "${rps[nginx-$2]}" "$(paired_ratio "${runs[serve-$2]% }" "${runs[nginx-$2]% }")"
}
each_run() { # key...: "key: a b c" for each
    for key in "$@"; do printf '  %-16s %s\n' "$key:" "${runs[$key]% }"; done
}
mem_ratio=$(ratio "$per_order" "$json_avg")
cat <<OUT
orders: $N in PostgreSQL, $json_avg bytes of JSON each on average; hot set $HOT ids
machine: $machine
load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (ids rotated by a Lua script; serve and nginx alternated $ROUNDS times: req/s the median of each side's runs, ratio the median of the rounds' ratios); oha -z $DURATION -q $RATE --latency-correction -c $CONNECTIONS (after a sync; hits and nginx alternated, lower p99 of 2)
serve: $threads OS threads ($(nproc) runtime workers); log on = the defaults (RUST_LOG unset: access log at INFO to a file), off = RUST_LOG=warn
nginx $($NGINX -v 2>&1 | sed 's/.*\///'): $workers workers, sendfile, open_file_cache; log on = its default access_log (combined, to a file), off = access_log off
cache hits, wrk req/s (medians)         serve     nginx  ratio   (goal)
$(row "access log on, keep-alive" on-keep)   (>= 1.0)
$(row "access log on, new connection each" on-close)   (>= 1.0)
$(row "access log off, keep-alive" off-keep)   (>= 1.1)
$(row "access log off, new connection each" off-close)   (>= 1.1)
floor (bare hyper, serve's headers), log off, keep-alive: $(printf '%9s' "${rps[floor-keep]}")   serve / floor: $(paired_ratio "${runs[serve-off-keep]% }" "${runs[floor-keep]% }")   nginx / floor: $(paired_ratio "${runs[nginx-off-keep]% }" "${runs[floor-keep]% }")
misses (cache off, log on), wrk req/s  $(printf '%9s' "${rps[miss-keep]}")   misses / hits (log on, keep-alive, $(printf '%s' "${rps[hit-keep]}")/s beside them): $(paired_ratio "${runs[miss-keep]% }" "${runs[hit-keep]% }")   (goal >= 0.5)
wrk req/s of each run, in order:
$(each_run serve-on-keep nginx-on-keep serve-on-close nginx-on-close serve-off-keep nginx-off-keep floor-keep serve-off-close nginx-off-close miss-keep hit-keep)
at $RATE req/s (oha)                      p50 ms    p99 ms  achieved req/s   (goal)
$(printf '%-38s %8s %9s %15s' "serve, hits, log on" "$hit_p50" "$hit_p99" "$hit_oha_rps")   (p99 < 1 ms)
$(printf '%-38s %8s %9s %15s' "serve, misses, log on" "$miss_p50" "$miss_p99" "$miss_oha_rps")   (p99 < 5 ms)
$(printf '%-38s %8s %9s %15s' "nginx, log on" "$nginx_p50" "$nginx_p99" "$nginx_oha_rps")
hits' p99 of each run (ms, alternated; the lower one is kept above): $each_p99
access log: $access_lines lines written by serve, ${dropped:-?} dropped (access_log_lines_dropped_total); nginx wrote $nginx_lines
$loaded (log off, all N ids); $loaded_default (log on, the hot ids)
RSS of serve:             $((rss_before / 1024)) MiB before, $((rss_after / 1024)) MiB after caching $N orders ($((rss_end / 1024)) MiB after the hit runs)
memory per cached order:  $per_order bytes = $mem_ratio x its JSON ($json_avg bytes)   (goal <= 1.25)
OUT
