#!/usr/bin/env bash
# CPU time per proxied request, measured in a way that holds on a busy machine: each endpoint
# gets the same open-loop load (RATE requests/s for DURATION, keep-alive, 16-token answers from
# `autoglm mockllm`) in turn, ROUNDS times, and the CPU time its process (with its children:
# nginx's workers) spent is read from /proc/PID/stat before and after and divided by the
# requests answered. A neighbour's load inflates every endpoint's figure alike, so compare
# endpoints within one run, never across runs.
#
#   scripts/benchcpu.sh [NAME=AUTOGLM_BINARY ...]
#
# Endpoints: nginx (when installed; one worker, proxy_pass with an upstream keep-alive pool),
# go-floor (scripts/benchproxy -direct: net/http's server and autoglm's upstream transport with
# no chain), lean-floor (benchproxy -lean: the same on internal/h1, the lean HTTP/1.1 server),
# autoglm built from this tree, and each extra autoglm binary named (say, main's
# build) for a before/after in the same run. Environment: RATE (default 700), DURATION
# (default 4s), ROUNDS (default 3), STREAM=1 for streamed requests.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${RATE:-700}; duration=${DURATION:-4s}; rounds=${ROUNDS:-3}
stream=(); [ -n "${STREAM:-}" ] && stream=(--stream)
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
ready() { for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }
ticks() { # utime+stime of a process and its children, in clock ticks
  local t=0 q
  for q in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14+$15}' "/proc/$q/stat"))); done
  echo $t
}
go build -o "$work/autoglm" ./cmd/autoglm
go build -o "$work/benchproxy" ./scripts/benchproxy
ab=$work/autoglm
mock=$(freeport)
"$ab" mockllm --addr "127.0.0.1:$mock" --tokens 16 2>/dev/null &
pids+=($!)
names=(); declare -A url pid
if command -v nginx >/dev/null; then
  p=$(freeport); mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
error_log stderr error;
pid $work/nginx/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream mock { server 127.0.0.1:$mock; keepalive 256; }
  server {
    listen 127.0.0.1:$p backlog=4096;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
NGINX
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e stderr -g 'daemon off;' 2>/dev/null &
  pids+=($!); pid[nginx]=$!; url[nginx]=http://127.0.0.1:$p/v1; names+=(nginx)
fi
p=$(freeport)
"$work/benchproxy" -direct -addr "127.0.0.1:$p" -upstream "http://127.0.0.1:$mock" 2>/dev/null &
pids+=($!); pid[go-floor]=$!; url[go-floor]=http://127.0.0.1:$p/v1; names+=(go-floor)
p=$(freeport)
"$work/benchproxy" -lean -addr "127.0.0.1:$p" -upstream "http://127.0.0.1:$mock" 2>/dev/null &
pids+=($!); pid[lean-floor]=$!; url[lean-floor]=http://127.0.0.1:$p/v1; names+=(lean-floor)
for spec in "autoglm=$ab" "$@"; do
  n=${spec%%=*}; bin=${spec#*=}; p=$(freeport)
  printf 'log: {level: warn}\nmodels:\n  - name: bench\n    backends: [{type: openai, base_url: "http://127.0.0.1:%s/v1"}]\n' "$mock" >"$work/$n.yaml"
  "$bin" serve --config "$work/$n.yaml" --addr "127.0.0.1:$p" --data-dir "$work/$n-data" 2>/dev/null &
  pids+=($!); pid[$n]=$!; url[$n]=http://127.0.0.1:$p/v1; names+=("$n")
  ready "http://127.0.0.1:$p/readyz"
done
for n in "${names[@]}"; do ready "${url[$n]}/models"; done
for n in "${names[@]}"; do "$ab" bench --url "${url[$n]}" --model bench --rate 200 --duration 1s --warmup 0s "${stream[@]}" >/dev/null; done
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(go version | cut -d' ' -f3-); ${rate} req/s, ${duration} per endpoint, ${rounds} rounds${stream:+, streamed}"
echo
echo "| round | endpoint | requests | CPU µs per request | p50 µs | p99 µs | errors |"
echo "|---|---|---|---|---|---|---|"
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
  for n in "${names[@]}"; do
    t0=$(ticks "${pid[$n]}")
    out=$("$ab" bench --json --url "${url[$n]}" --model bench --rate "$rate" --concurrency 4000 --duration "$duration" --warmup 0s "${stream[@]}")
    t1=$(ticks "${pid[$n]}")
    python3 - "$out" "$r" "$n" $((t1 - t0)) "$hz" <<'PY'
import json, sys
res, r, n, ticks, hz = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
reqs = res["requests"]
cpu = f"{ticks / hz * 1e6 / reqs:.0f}" if reqs else "-"
l = res["latency_us"]
errs = f"{res['errors']} {res.get('errors_by_kind') or ''}".strip()
print(f"| {r} | {n} | {reqs} | {cpu} | {l['p50']} | {l['p99']} | {errs} |")
PY
  done
done
