#!/usr/bin/env bash
# Compatibility test: real clients from npm (openai, @anthropic-ai/sdk, the Vercel AI SDK with
# @ai-sdk/openai, LangChain's @langchain/openai; versions pinned in package.json) against a
# real autoglm in front of a real mockllm, both on loopback. Needs node and npm; installs the
# clients from the registry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
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
gw_port=$(freeport)
"$work/autoglm" mockllm --addr "127.0.0.1:$mock_port" --tokens 12 --embedding-dim 16 --tool-calls 2>"$work/mock.log" &
pids+=($!)
cat >"$work/config.yaml" <<YAML
models:
  - name: glm-4-flash
    backends:
      - type: openai
        base_url: http://127.0.0.1:$mock_port/v1
  - name: stories260k
    backends:
      - type: local
        path: $root/models/stories260K.gguf
        context_length: 512
YAML
"$work/autoglm" serve --config "$work/config.yaml" --addr "127.0.0.1:$gw_port" --data-dir "$work/data" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

# curl streams a story from the bundled demo model through the gateway.
story=$(curl -fsSN "http://127.0.0.1:$gw_port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"stories260k","stream":true,"temperature":0,"max_tokens":24,"messages":[{"role":"user","content":"Once upon a time"}]}')
grep -q '^data: \[DONE\]' <<<"$story" || { echo "curl: the story stream did not finish"; echo "$story"; exit 1; }
grep -q '"content":" Lily' <<<"$story" || { echo "curl: the story stream lacks the expected words"; echo "$story"; exit 1; }
echo "curl streamed a story from stories260k: $(grep -o '"content":"[^"]*"' <<<"$story" | sed 's/"content":"//; s/"$//' | tr -d '\n')"

cd "$here"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
AUTOGLM_URL="http://127.0.0.1:$gw_port/v1" node --test compat.test.mjs apis.test.mjs || { cat "$work/serve.log"; exit 1; }
