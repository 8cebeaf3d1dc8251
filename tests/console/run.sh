#!/usr/bin/env bash
# Browser test of the web console: headless Chromium (Debian's package, driven by npm's
# playwright-core; no browser download) against a real `autoglm serve` with authentication on,
# in front of a real mockllm and the bundled demo model, all on loopback.
#
#   tests/console/run.sh               run the test
#   SCREENSHOTS=1 tests/console/run.sh also write a screenshot of each page to docs/console/
#
# Chromium is installed with apt-get when it is missing and this runs as root; without it the
# test is skipped, except under CI=true, where a missing browser is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The console's pure functions (code tokenizer, CSV) first: plain node, no browser.
node --test "$root/web/src/"

find_chromium() { command -v chromium || command -v chromium-browser || true; }
browser=${CHROMIUM:-$(find_chromium)}
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium with apt-get"
  (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }) || true
  browser=$(find_chromium)
fi
if [ -z "$browser" ]; then
  if [ "${CI:-}" = "true" ]; then echo "chromium is required for the console test"; exit 1; fi
  echo "chromium not found: skipping the console test (it is required under CI=true)"
  exit 0
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

(cd "$root" && go build -o "$work/autoglm" ./cmd/autoglm)
mock_port=$(freeport)
slow_port=$(freeport)
gw_port=$(freeport)
# The mock streams slowly enough for the test to see the answer arrive in pieces.
"$work/autoglm" mockllm --addr "127.0.0.1:$mock_port" --tokens 24 --itl 15ms --model glm-4-flash 2>"$work/mock.log" &
pids+=($!)
# A model that takes a minute to start answering: its tasks stay running until canceled.
"$work/autoglm" mockllm --addr "127.0.0.1:$slow_port" --ttft 60s --model glm-slow 2>"$work/slow.log" &
pids+=($!)
cat >"$work/config.yaml" <<YAML
auth:
  jwt:
    secret: \${CONSOLE_JWT_SECRET}
models:
  - name: glm-4-flash
    backends:
      - type: openai
        base_url: http://127.0.0.1:$mock_port/v1
  - name: glm-slow
    backends:
      - type: openai
        base_url: http://127.0.0.1:$slow_port/v1
  - name: stories260k
    backends:
      - type: local
        path: $root/models/stories260K.gguf
        context_length: 512
YAML
admin_key="console-test-admin-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
jwt_secret="console-test-jwt-$(od -An -N16 -tx8 /dev/urandom | tr -d ' ')"
AUTOGLM_ADMIN_KEY="$admin_key" CONSOLE_JWT_SECRET="$jwt_secret" "$work/autoglm" serve --config "$work/config.yaml" --addr "127.0.0.1:$gw_port" \
  --data-dir "$work/data" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

cd "$here"
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
export CONSOLE_URL="http://127.0.0.1:$gw_port" CONSOLE_ADMIN_KEY="$admin_key" CONSOLE_JWT_SECRET="$jwt_secret" CHROMIUM="$browser"
if [ -n "${SCREENSHOTS:-}" ]; then export SCREENSHOT_DIR="$root/docs/console"; mkdir -p "$SCREENSHOT_DIR"; fi
node --test --test-reporter=spec console.test.mjs || { echo "--- serve log"; tail -50 "$work/serve.log"; exit 1; }
