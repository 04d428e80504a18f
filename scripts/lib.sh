# Shared setup for scripts/run and scripts/test. Idempotent: quick when all is in place.

ensure_venv() {  # ensure_venv [dev]
    local want=requirements.txt
    [ "${1:-}" = dev ] && want=requirements-dev.txt
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    local stamp=".venv/.installed-$(cat requirements.txt "$want" | sha256sum | cut -c1-16)-${1:-run}"
    if [ ! -f "$stamp" ]; then
        .venv/bin/pip install --quiet --upgrade pip
        .venv/bin/pip install --quiet -r "$want"
        touch "$stamp"
    fi
}

ensure_services() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
        for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
        for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
    fi
}

ensure_chromium() {  # the browser tests (tests/web) drive Debian's Chromium, not a downloaded one
    if [ ! -x /usr/bin/chromium ]; then
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
}

ensure_nginx() {  # the load-balancer tests run Debian's nginx with their own config (tests/e2e/nginx.py)
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        # Debian's package would start its default site on port 80 right away: forbid any
        # service start during the install (unless a policy is in place already).
        local policy=/usr/sbin/policy-rc.d added=""
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
        fi
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
        if [ -n "$added" ]; then rm -f "$policy"; fi
    fi
}

# A throwaway Redis Cluster of three masters (no replicas, no persistence) for the tests on
# the cluster configuration. start_redis_cluster FIRST_PORT DIR starts redis-server on
# FIRST_PORT..FIRST_PORT+2 (cluster bus: each port + 10000) with their files in DIR, joins
# them (16384 slots over the three), waits for cluster_state:ok on every node and sets
# REDIS_CLUSTER_PIDS. stop_redis_cluster stops exactly those processes, by PID: the ones
# recorded at start, and the PID a node's pidfile names now (a node restarted by a test
# with DEBUG RESTART is the same server re-executed, daemonized again under a new PID).
REDIS_CLUSTER_PIDS=()
REDIS_CLUSTER_DIR=

start_redis_cluster() {  # start_redis_cluster FIRST_PORT DIR
    local first=$1 dir=$2 port node server
    local ports=("$first" "$((first + 1))" "$((first + 2))")
    # An absolute path: DEBUG RESTART re-executes the server by the path it was started with.
    server=$(command -v redis-server) || return 1
    REDIS_CLUSTER_PIDS=()
    REDIS_CLUSTER_DIR=$dir
    for port in "${ports[@]}"; do
        if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
            echo "start_redis_cluster: port $port is taken" >&2
            return 1
        fi
    done
    for port in "${ports[@]}"; do
        node="$dir/$port"
        mkdir -p "$node"
        # DEBUG only from loopback: the tests restart a master with it (DEBUG RESTART).
        "$server" --bind 127.0.0.1 --port "$port" --dir "$node" \
            --cluster-enabled yes --cluster-config-file "$node/nodes.conf" \
            --cluster-node-timeout 2000 --enable-debug-command local \
            --save '' --appendonly no --daemonize yes \
            --pidfile "$node/redis.pid" --logfile "$node/redis.log" || { stop_redis_cluster; return 1; }
    done
    for port in "${ports[@]}"; do
        for _ in $(seq 50); do [ -s "$dir/$port/redis.pid" ] && break; sleep 0.1; done
        REDIS_CLUSTER_PIDS+=("$(cat "$dir/$port/redis.pid")")
        for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes \
        >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; stop_redis_cluster; return 1; }
    for port in "${ports[@]}"; do
        for _ in $(seq 100); do
            redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
            sleep 0.1
        done
        redis-cli -h 127.0.0.1 -p "$port" cluster info | grep -q '^cluster_state:ok' || {
            echo "start_redis_cluster: node $port never reached cluster_state:ok" >&2
            stop_redis_cluster
            return 1
        }
    done
}

stop_redis_cluster() {
    local pid pidfile port pids=()
    for pidfile in "${REDIS_CLUSTER_DIR:-/nonexistent}"/*/redis.pid; do
        [ -s "$pidfile" ] && REDIS_CLUSTER_PIDS+=("$(cat "$pidfile")")
    done
    for pid in "${REDIS_CLUSTER_PIDS[@]}"; do
        # Only a live redis-server of one of our nodes' ports (a recorded PID whose server
        # was re-executed may since belong to another process).
        for pidfile in "$REDIS_CLUSTER_DIR"/*/redis.pid; do
            port=$(basename "$(dirname "$pidfile")")
            if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q "redis-server.*:$port\b"; then
                kill "$pid" 2>/dev/null && pids+=("$pid")
                break
            fi
        done
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    REDIS_CLUSTER_PIDS=()
}
