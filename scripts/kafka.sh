#!/usr/bin/env bash
# Apache Kafka for order-service without Docker: the broker from Maven Central's jars, run
# as KRaft nodes (broker and controller in one process) on 127.0.0.1.
#
#   scripts/kafka.sh up     [--nodes 1|3] [--port P] [--node ID]   start (or reuse) and wait
#   scripts/kafka.sh down   [--nodes 1|3] [--port P] [--node ID] [--kill]
#   scripts/kafka.sh status [--nodes 1|3] [--port P]              pid, ports, RSS; exit 1 if down
#   scripts/kafka.sh bootstrap [--nodes 1|3] [--port P]           print the bootstrap servers
#   scripts/kafka.sh version                                       print the pinned version
#   scripts/kafka.sh fetch                                         fetch the jars only
#
# The version is pinned once, as kafka.version in scripts/kafka/pom.xml; compose.yaml's
# apache/kafka image must carry the same tag (checked at every `up`). The jars are copied
# by Maven (maven-dependency-plugin) into .run/kafka/libs-<version>/ (git-ignored) the first
# time, from ~/.m2 or Maven Central.
#
# A cluster is its number of nodes and its first port: node i (1-based) serves clients on
# P+2(i-1) and its controller on P+2(i-1)+1. The default is one node on 9092 (controller
# 9093); `--nodes 3` gives 9092, 9094, 9096 (controllers 9093, 9095, 9097). Each cluster
# keeps its state in .run/kafka/<nodes>x<port>/: cluster.id, and per node server.properties,
# data/ (KRaft metadata and topics, kept across restarts), kafka.log and kafka.pid.
# `--node ID` starts or stops one node alone (a fault test kills and restarts brokers).
#
# Idempotent: a node that runs is reused; a stale pid file is removed; a data directory
# that was never fully formatted is formatted again (Kafka's own lock file is released by
# the kernel when its process dies). Java 17+ and Maven come from Debian's packages when
# missing (as root, or through sudo); otherwise the script says what to install.
#
# Environment: KAFKA_NODES, KAFKA_PORT (defaults for --nodes, --port); KAFKA_WAIT (default
# 60) bounds the start-up wait in seconds; KAFKA_HEAP_OPTS (default -Xms256m -Xmx1g) and
# KAFKA_JVM_OPTS (extra JVM flags) are the JVM's.
#
# SASL_SSL mode (opt-in, for the security tests): with all four of
#   KAFKA_SASL_SSL_CERT  the broker's certificate (PEM; its names must include 127.0.0.1)
#   KAFKA_SASL_SSL_KEY   its private key (PEM, PKCS#8, unencrypted)
#   KAFKA_SASL_SSL_CA    the CA that signed it (PEM; the broker trusts it for its own
#                        inter-broker connections)
#   KAFKA_SASL_USERS     user:password,user:password,... (letters, digits, '.', '_', '-')
# the client listener of each node is SASL_SSL instead of PLAINTEXT, with SCRAM-SHA-256,
# SCRAM-SHA-512 and PLAIN enabled and every user known to all three (SCRAM credentials are
# created when the storage is formatted, `StorageTool format --add-scram`; PLAIN's come
# from the listener's JAAS configuration); the brokers talk to each other on it as the
# first user, with PLAIN. The controller listener stays PLAINTEXT. The keystore is a PEM
# file (key, then certificate) written next to server.properties. Because the credentials
# are written at format time, a node in this mode is formatted afresh at every start (its
# topics do not survive a restart). Use a port of its own (a cluster is its node count and
# port), never the shared plaintext node's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
POM="$ROOT/scripts/kafka/pom.xml"
LOG4J="$ROOT/scripts/kafka/log4j2.properties"
BASE_DIR="$ROOT/.run/kafka"
HOST=127.0.0.1

say() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: ERROR: %s\n' "$*" >&2; exit 1; }

# The version pinned in the pom (the text of its one <kafka.version> element).
kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n 1; }

# True when something accepts TCP connections on $HOST:$1.
# shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$HOST" "$1" 2>/dev/null; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

apt_install() {
    say "installing $* from Debian's packages"
    if ! { as_root apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"; }; then
        die "could not install $*: install them yourself (apt-get install $*)"
    fi
}

# ---------------------------------------------------------------------------- tools
# Java 17 or newer: JAVA_HOME's, else java on PATH, else a JDK under /usr/lib/jvm, else
# Debian's openjdk-17-jre-headless.
java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
find_java() {
    local candidate major
    for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
        [[ -n $candidate && -x $candidate ]] || continue
        major=$(java_major "$candidate")
        if [[ $major =~ ^[0-9]+$ ]] && ((major >= 17)); then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}
need_java() {
    JAVA=$(find_java) && return 0
    apt_install openjdk-17-jre-headless
    JAVA=$(find_java) || die "no Java 17 or newer after installing openjdk-17-jre-headless"
}
need_maven() {
    command -v mvn >/dev/null 2>&1 && return 0
    apt_install maven
    command -v mvn >/dev/null 2>&1 || die "mvn is not on PATH after installing maven"
}

# Copies the broker's runtime classpath into $LIBS once per version.
fetch_jars() {
    VERSION=$(kafka_version)
    [[ -n $VERSION ]] || die "no <kafka.version> in $POM"
    LIBS="$BASE_DIR/libs-$VERSION"
    [[ -f $LIBS/.complete ]] && return 0
    need_maven
    need_java
    say "fetching Apache Kafka $VERSION's jars with Maven into ${LIBS#"$ROOT/"}"
    rm -rf "$LIBS.partial"
    # Maven runs on the Java found above, which may not be the one on PATH; its quiet output
    # still carries colour resets, which sed drops.
    JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$JAVA")")") \
        mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$LIBS.partial" -DincludeScope=runtime 2>&1 |
        sed 's/\x1b\[[0-9;]*m//g' >&2 ||
        die "Maven could not fetch org.apache.kafka:kafka_2.13:$VERSION (is Maven Central reachable?)"
    [[ -f "$LIBS.partial/kafka_2.13-$VERSION.jar" ]] || die "kafka_2.13-$VERSION.jar is missing after the fetch"
    rm -rf "$LIBS"
    mv "$LIBS.partial" "$LIBS"
    touch "$LIBS/.complete"
}

# compose.yaml runs the official image of the same version.
check_compose_version() {
    local tags
    tags=$(sed -n 's/^ *image: *apache\/kafka:\([^ ]*\).*/\1/p' "$ROOT/compose.yaml" | sort -u)
    [[ -z $tags || $tags == "$VERSION" ]] ||
        die "compose.yaml runs apache/kafka:$(echo "$tags" | tr '\n' ' ')but scripts/kafka/pom.xml pins $VERSION: make them equal"
}

# ---------------------------------------------------------------------------- arguments
cmd=${1:-}
[[ $# -gt 0 ]] && shift
NODES=${KAFKA_NODES:-1}
PORT=${KAFKA_PORT:-9092}
ONLY=
KILL=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --nodes) NODES=${2:?--nodes needs a value}; shift 2 ;;
        --port) PORT=${2:?--port needs a value}; shift 2 ;;
        --node) ONLY=${2:?--node needs a value}; shift 2 ;;
        --kill) KILL=1; shift ;;
        *) die "unknown argument '$1' (see the top of scripts/kafka.sh)" ;;
    esac
done
[[ $NODES == 1 || $NODES == 3 ]] || die "--nodes must be 1 or 3, not '$NODES'"
if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT + 2 * NODES > 65535)); then
    die "--port must be a TCP port, not '$PORT'"
fi
[[ -z $ONLY ]] || { [[ $ONLY =~ ^[0-9]+$ ]] && ((ONLY >= 1 && ONLY <= NODES)); } || die "--node must be 1..$NODES, not '$ONLY'"
CLUSTER_DIR="$BASE_DIR/${NODES}x$PORT"
WAIT_SECS=${KAFKA_WAIT:-60}

# SASL_SSL mode: all four variables, or none.
SASL_SSL=0
SASL_NAMES=()
SASL_PASSWORDS=()
if [[ -n ${KAFKA_SASL_SSL_CERT:-}${KAFKA_SASL_SSL_KEY:-}${KAFKA_SASL_SSL_CA:-}${KAFKA_SASL_USERS:-} ]]; then
    for var in KAFKA_SASL_SSL_CERT KAFKA_SASL_SSL_KEY KAFKA_SASL_SSL_CA KAFKA_SASL_USERS; do
        [[ -n ${!var:-} ]] || die "SASL_SSL mode needs $var too (see the top of scripts/kafka.sh)"
    done
    for var in KAFKA_SASL_SSL_CERT KAFKA_SASL_SSL_KEY KAFKA_SASL_SSL_CA; do
        [[ -r ${!var} ]] || die "$var: cannot read ${!var}"
    done
    IFS=, read -r -a entries <<<"$KAFKA_SASL_USERS"
    for entry in "${entries[@]}"; do
        # No password in the message: only its user's name.
        [[ $entry =~ ^([A-Za-z0-9._-]+):([A-Za-z0-9._-]+)$ ]] ||
            die "KAFKA_SASL_USERS: each entry must be user:password of letters, digits, '.', '_' and '-' (the entry of user '${entry%%:*}' is not)"
        SASL_NAMES+=("${BASH_REMATCH[1]}")
        SASL_PASSWORDS+=("${BASH_REMATCH[2]}")
    done
    SASL_SSL=1
fi

client_port() { echo $((PORT + 2 * ($1 - 1))); }
controller_port() { echo $((PORT + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$CLUSTER_DIR/node-$1"; }
selected_nodes() { if [[ -n $ONLY ]]; then echo "$ONLY"; else seq "$NODES"; fi; }
bootstrap() {
    local id list=()
    for id in $(seq "$NODES"); do list+=("$HOST:$(client_port "$id")"); done
    (IFS=,; echo "${list[*]}")
}

# The pid of node $1 if it runs (the pid file names a live JVM started on this node's
# configuration), else nothing and status 1.
node_pid() {
    local pid file
    file="$(node_dir "$1")/kafka.pid"
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(node_dir "$1")/server.properties" || return 1
    printf '%s\n' "$pid"
}

rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------------------- configuration
write_config() {
    local id=$1 dir voters="" i rf=$NODES min_isr
    dir=$(node_dir "$id")
    for i in $(seq "$NODES"); do voters+="${voters:+,}$i@$HOST:$(controller_port "$i")"; done
    min_isr=$((NODES > 1 ? 2 : 1))
    local listener=PLAINTEXT
    ((SASL_SSL)) && listener=SASL_SSL
    mkdir -p "$dir"
    # In SASL_SSL mode the file holds the passwords: for its owner only.
    (umask 077 && : >"$dir/server.properties")
    cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh (node $id of $NODES); rewritten at every start.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=$listener://$HOST:$(client_port "$id"),CONTROLLER://$HOST:$(controller_port "$id")
advertised.listeners=$listener://$HOST:$(client_port "$id"),CONTROLLER://$HOST:$(controller_port "$id")
listener.security.protocol.map=$listener:$listener,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=$listener
log.dirs=$dir/data

# Topics a client creates without saying (and the broker's internal topics) are replicated
# on every node, up to 3; writes need 2 replicas in sync on a cluster.
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr

# Light for one machine: fewer internal partitions (50 by default), a small dedupe buffer
# for the log cleaner (128 MiB on the heap by default), no initial rebalance delay.
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6
log.cleaner.dedupe.buffer.size=2097152
group.initial.rebalance.delay.ms=0

# A killed node is fenced after 3 s instead of 9 s; followers catch up within 10 s.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=10000

# Consumer groups of the KIP-848 protocol (group.protocol=consumer) take their session timeout
# and heartbeat from the broker, not the client: 10 s and 3 s, as order-service's classic
# default (KAFKA_SESSION_TIMEOUT) and its heartbeat, instead of 45 s and 5 s (each bounded by
# a minimum of the same value, lowered here too).
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=10000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=3000
EOF
    ((SASL_SSL)) || return 0
    local i jaas plain_users=""
    for i in "${!SASL_NAMES[@]}"; do plain_users+=" user_${SASL_NAMES[$i]}=\"${SASL_PASSWORDS[$i]}\""; done
    jaas="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"${SASL_NAMES[0]}\" password=\"${SASL_PASSWORDS[0]}\"$plain_users;"
    (umask 077 && cat "$KAFKA_SASL_SSL_KEY" "$KAFKA_SASL_SSL_CERT" >"$dir/keystore.pem")
    cat >>"$dir/server.properties" <<EOF

# SASL_SSL mode (KAFKA_SASL_SSL_* and KAFKA_SASL_USERS): TLS with a PEM keystore (key, then
# certificate) and the given CA as the truststore; SCRAM-SHA-256/512 (credentials created at
# format time) and PLAIN (the users below); brokers authenticate to each other with PLAIN.
ssl.keystore.type=PEM
ssl.keystore.location=$dir/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_SASL_SSL_CA
ssl.client.auth=none
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
}

# A cluster id as `StorageTool random-uuid` makes one, without starting a JVM for it: 16
# random bytes in URL-safe base64 without padding (22 characters), not starting with '-'.
new_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ $id == -* ]] || break
    done
    printf '%s\n' "$id"
}

# Formats node $1's storage unless done already (meta.properties is written last); in
# SASL_SSL mode always, with the SCRAM credentials of KAFKA_SASL_USERS.
format_node() {
    local id=$1 dir i scram=()
    dir=$(node_dir "$id")
    if ((SASL_SSL)); then
        for i in "${!SASL_NAMES[@]}"; do
            scram+=(--add-scram "SCRAM-SHA-256=[name=${SASL_NAMES[$i]},password=${SASL_PASSWORDS[$i]}]")
            scram+=(--add-scram "SCRAM-SHA-512=[name=${SASL_NAMES[$i]},password=${SASL_PASSWORDS[$i]}]")
        done
    elif [[ -f $dir/data/meta.properties ]]; then
        return 0
    fi
    rm -rf "$dir/data"
    if [[ ! -f $CLUSTER_DIR/cluster.id ]]; then
        mkdir -p "$CLUSTER_DIR"
        new_cluster_id >"$CLUSTER_DIR/cluster.id.new"
        mv "$CLUSTER_DIR/cluster.id.new" "$CLUSTER_DIR/cluster.id"
    fi
    "$JAVA" -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J" kafka.tools.StorageTool format \
        -t "$(<"$CLUSTER_DIR/cluster.id")" -c "$dir/server.properties" "${scram[@]}" >>"$dir/kafka.log" 2>&1 ||
        { tail -n 20 "$dir/kafka.log" >&2; die "formatting node $id's storage failed"; }
}

# Starts node $1 in the background; the byte offset of its log where this start begins is
# printed, for wait_started.
start_node() {
    local id=$1 dir offset pid
    dir=$(node_dir "$id")
    offset=$(stat -c %s "$dir/kafka.log" 2>/dev/null || echo 0)
    printf '\n=== %s scripts/kafka.sh: starting node %s\n' "$(date -u +%FT%TZ)" "$id" >>"$dir/kafka.log"
    # shellcheck disable=SC2086 # the JVM options are word lists
    (
        # Detach fully: own session, no terminal, no inherited descriptors beyond 0-2, so
        # that it outlives make and CI and does not hold their pipes open.
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        cd "$dir"
        exec setsid nohup "$JAVA" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
            ${KAFKA_JVM_OPTS:-} \
            -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$dir" \
            -cp "$LIBS/*" kafka.Kafka "$dir/server.properties"
    ) </dev/null >>"$dir/kafka.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/kafka.pid"
    echo "$offset"
}

# Waits until node $1 (pid $2) logs that it started, after byte $3 of its log.
wait_started() {
    local id=$1 pid=$2 offset=$3 dir deadline
    dir=$(node_dir "$id")
    deadline=$((SECONDS + WAIT_SECS))
    while ((SECONDS < deadline)); do
        # Not `grep -q`: it exits at the first match, and tail, still writing a long log,
        # then dies of SIGPIPE, which pipefail turns into a failed test (seen on a cluster).
        if tail -c +"$((offset + 1))" "$dir/kafka.log" | grep -F 'Kafka Server started' >/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$dir/kafka.pid"
            tail -n 30 "$dir/kafka.log" >&2
            die "node $id exited during start-up (log: ${dir#"$ROOT/"}/kafka.log)"
        fi
        sleep 0.1
    done
    tail -n 30 "$dir/kafka.log" >&2
    die "node $id did not start within ${WAIT_SECS}s (still running as pid $pid; log: ${dir#"$ROOT/"}/kafka.log)"
}

# ---------------------------------------------------------------------------- commands
up() {
    local id pid started=() offsets=() began=$SECONDS
    fetch_jars
    need_java
    check_compose_version
    for id in $(selected_nodes); do
        if pid=$(node_pid "$id"); then
            say "node $id already running (pid $pid) on $HOST:$(client_port "$id")"
            continue
        fi
        rm -f "$(node_dir "$id")/kafka.pid"
        if port_open "$(client_port "$id")" || port_open "$(controller_port "$id")"; then
            # Not in SASL_SSL mode: what listens there is not a node with this run's users.
            if [[ $NODES == 1 ]] && ((!SASL_SSL)) && port_open "$(client_port "$id")"; then
                say "something else already listens on $HOST:$(client_port "$id"): reusing it as the broker"
                continue
            fi
            die "port $(client_port "$id") or $(controller_port "$id") is taken by another process: stop it or pick --port"
        fi
        write_config "$id"
        format_node "$id"
        started+=("$id")
        offsets+=("$(start_node "$id")")
    done
    ((${#started[@]} > 0)) || return 0
    say "Apache Kafka $VERSION: starting node(s) ${started[*]} (logs under ${CLUSTER_DIR#"$ROOT/"}/)"
    for i in "${!started[@]}"; do
        id=${started[$i]}
        wait_started "$id" "$(<"$(node_dir "$id")/kafka.pid")" "${offsets[$i]}"
    done
    for id in "${started[@]}"; do
        pid=$(<"$(node_dir "$id")/kafka.pid")
        say "node $id started in $((SECONDS - began))s: pid $pid, $HOST:$(client_port "$id"), RSS $(rss_mib "$pid") MiB"
    done
    say "bootstrap servers: $(bootstrap)"
}

down() {
    local id pid signal=TERM signalled=()
    ((KILL)) && signal=KILL
    for id in $(selected_nodes); do
        if ! pid=$(node_pid "$id"); then
            [[ -f $(node_dir "$id")/kafka.pid ]] && say "node $id: not running (stale pid file removed)"
            rm -f "$(node_dir "$id")/kafka.pid"
            continue
        fi
        say "node $id: SIG$signal to pid $pid"
        kill -"$signal" "$pid" 2>/dev/null || true
        signalled+=("$id:$pid")
    done
    for entry in "${signalled[@]}"; do
        id=${entry%%:*} pid=${entry#*:}
        # A controlled shutdown moves leadership away first; a lone node is quick.
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "node $id: still alive after 30s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$(node_dir "$id")/kafka.pid"
        say "node $id: stopped"
    done
}

status() {
    local id pid down=0
    for id in $(seq "$NODES"); do
        if pid=$(node_pid "$id"); then
            say "node $id: running, pid $pid, $HOST:$(client_port "$id") (controller $(controller_port "$id")), RSS $(rss_mib "$pid") MiB"
        else
            say "node $id: not running"
            down=1
        fi
    done
    return "$down"
}

case $cmd in
    up) up ;;
    down) down ;;
    status) status ;;
    bootstrap) bootstrap ;;
    version) kafka_version ;;
    fetch) fetch_jars; say "jars of Apache Kafka $VERSION in ${LIBS#"$ROOT/"}" ;;
    *) die "usage: scripts/kafka.sh up|down|status|bootstrap|version|fetch [--nodes 1|3] [--port P] [--node ID] [--kill]" ;;
esac
