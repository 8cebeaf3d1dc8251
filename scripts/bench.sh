#!/usr/bin/env bash
# End-to-end gateway benchmark: mockllm and autoglm on loopback, the same load sent to both,
# so the latency autoglm adds is measured against the upstream in the same run.
#   DURATION=10s ./scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

go build -o "$work/autoglm" ./cmd/autoglm
mock_port=$(freeport); gw_port=$(freeport)
"$work/autoglm" mockllm --addr "127.0.0.1:$mock_port" --tokens 16 2>/dev/null &
pids+=($!)
cat >"$work/config.yaml" <<YAML
log:
  level: warn
models:
  - name: bench
    backends:
      - type: openai
        base_url: http://127.0.0.1:$mock_port/v1
YAML
"$work/autoglm" serve --config "$work/config.yaml" --addr "127.0.0.1:$gw_port" --data-dir "$work/data" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

run() { "$work/autoglm" bench --json --duration "$duration" --warmup 2s --model bench "$@"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(go version | cut -d' ' -f3-)"
for mode in "" "--stream"; do
  direct=$(run --url "http://127.0.0.1:$mock_port/v1" --concurrency 1 $mode)
  via=$(run --url "http://127.0.0.1:$gw_port/v1" --concurrency 1 $mode)
  python3 - "$direct" "$via" "${mode:-non-stream}" <<'PY'
import json, sys
d, g, mode = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"\n{mode}, 1 client, closed loop")
print(f"{'':10}{'direct':>12}{'via autoglm':>14}{'added':>10}")
for q in ("p50", "p90", "p99", "p999"):
    a, b = d["latency_us"][q], g["latency_us"][q]
    print(f"{q:10}{a:>10}µs{b:>12}µs{b-a:>8}µs")
if "ttft_us" in d:
    for q in ("p50", "p99"):
        a, b = d["ttft_us"][q], g["ttft_us"][q]
        print(f"ttft {q:5}{a:>10}µs{b:>12}µs{b-a:>8}µs")
print(f"{'rps':10}{d['rps']:>12.0f}{g['rps']:>14.0f}")
print(f"{'errors':10}{d['errors']:>12}{g['errors']:>14}")
PY
done
