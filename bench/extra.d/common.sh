# Helpers shared by bench/extra and bench/profile (sourced, not run).
# The caller sets `me` (its name for messages) and `work` (its temp dir)
# before calling anything here.

log() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { log "$*"; exit 1; }

pids=() # every process we start; cleanup stops these and only these
nginx_pids=() # the nginx masters among them (their workers go with them)

# forget PID: drops PID from `pids` (it has exited and been waited for).
forget() {
    local p keep=()
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL. The PID leaves
# `pids`, so cleanup never signals a number the system may have reused.
stop_pid() {
    local pid=$1
    forget "$pid"
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        local n
        for n in "${nginx_pids[@]}"; do
            [[ $n == "$pid" ]] && pkill -KILL -P "$pid" 2>/dev/null
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    set +e # best effort, all of it
    local pid
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $work"; else rm -rf "$work"; fi
}

# need TOOL...: installs the missing ones with apt-get when root, else fails.
# A TOOL may be CMD=PACKAGE when the package has another name.
need() {
    local missing=() t cmd pkg
    for t in "$@"; do
        cmd=${t%%=*} pkg=${t#*=}
        command -v "$cmd" >/dev/null || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    ((EUID == 0)) || die "missing ${missing[*]} (apt-get install ${missing[*]})"
    log "installing ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# free_ports N: N free loopback ports below the ephemeral range.
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
ports = []
while len(ports) < int(sys.argv[1]):
    p = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in ports:
            ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*ports)
PY
}

# wait_listening ADDR: until ADDR (HOST:PORT or unix:PATH) accepts, 10 s at most.
wait_listening() {
    python3 - "$1" <<'PY'
import socket, sys, time
a = sys.argv[1]
for _ in range(100):
    try:
        if a.startswith("unix:"):
            s = socket.socket(socket.AF_UNIX); s.connect(a[5:])
        else:
            h, p = a.rsplit(":", 1); s = socket.create_connection((h, int(p)), 1)
        s.close(); sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

# target_dir: where cargo puts its builds (honours CARGO_TARGET_DIR).
target_dir() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# start NAME CMD...: runs CMD in the background, logging to $work/logs/NAME.log;
# its PID is left in $started.
start() {
    local name=$1
    shift
    mkdir -p "$work/logs"
    "$@" </dev/null >"$work/logs/$name.log" 2>&1 &
    started=$!
    pids+=("$started")
}

# start_nginx NAME CONF: starts nginx (daemon off) with prefix $work/NAME;
# its master's PID is left in $started.
start_nginx() {
    local prefix=$work/$1 conf=$2
    mkdir -p "$prefix/logs" "$prefix/tmp"
    nginx -t -q -p "$prefix" -e "$prefix/logs/error.log" -c "$conf" || die "nginx -t failed on $conf"
    start "nginx-$1" nginx -p "$prefix" -e "$prefix/logs/error.log" -c "$conf"
    nginx_pids+=("$started")
}

# nginx_http_head PREFIX: the start of an nginx config (1 worker, no access
# log, temp paths under PREFIX), up to and including `http {`.
nginx_http_head() {
    local prefix=$1
    ((EUID == 0)) && echo "user root;  # workers may read the temp dir and its sockets"
    cat <<EOF
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
worker_rlimit_nofile 20000;
worker_shutdown_timeout 3s;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    scgi_temp_path $prefix/tmp/scgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
EOF
}

# status_kib PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) in KiB.
status_kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# machine_info: Markdown lines describing the machine, for result headers.
machine_info() {
    local model
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | awk 'NR == 1')
    printf -- '- Machine: %s CPUs (%s), Linux %s, load average %s at the start\n' \
        "$(nproc)" "${model:-unknown CPU}" "$(uname -r)" "${load_start:-$(cut -d' ' -f1-3 /proc/loadavg)}"
    printf -- '- Date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- Versions: %s; %s; %s; gatekit %s\n' \
        "$(nginx -v 2>&1 | sed 's/^nginx version: //')" \
        "$(curl --version | awk 'NR == 1 { print $1, $2 }')" \
        "$(rustc --version | cut -d' ' -f1-2)" \
        "$(git rev-parse --short HEAD 2>/dev/null || echo '(no git)')"
}
