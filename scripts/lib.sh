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
