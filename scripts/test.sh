#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, vet, race-enabled tests, a short run of
# every fuzz target, the OpenAI SDK compatibility test against real processes, and the web
# console in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:-}

# Each step's line says when it began (seconds since the start), so that a log shows where
# the suite's time goes.
step() { printf '\n== %s (at %ds)\n' "$*" "$SECONDS"; }

step "gofmt"
out=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$out" ]; then echo "gofmt needed:"; echo "$out"; exit 1; fi

step "go vet"
go vet ./...

step "code-check sandbox tools (bubblewrap, python3, node, g++)"
# The sandbox tests (internal/sandbox, internal/eval) run HumanEval-X's Python, JavaScript and
# Go tests under bubblewrap; under CI=true they fail when it cannot run. Install what is missing.
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v prlimit >/dev/null || need+=(util-linux)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v node >/dev/null || need+=(nodejs)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
  elif [ "${CI:-}" = "true" ]; then
    echo "missing ${need[*]} and cannot install them (need root and apt-get)"; exit 1
  else
    echo "missing ${need[*]}: the sandbox tests will skip"
  fi
fi

step "services (PostgreSQL, Redis on loopback)"
svc=$(mktemp -d)
trap './scripts/services.sh stop "$svc"; rm -rf "$svc"' EXIT
eval "$(./scripts/services.sh start "$svc")"

step "go test -race"
# The multi-process scale-out test runs on its own afterwards: it measures a shared rate limit
# across three server processes, which needs the cores the parallel package tests would take.
# The fault-injection tests also run on their own: they push hundreds of megabytes through
# real processes and stop and start services, which the race detector and parallel packages
# would only slow down.
go test -race -count=1 -timeout 20m $(go list ./... | grep -v -e /tests/scaleout -e /tests/faults)

step "raw socket I/O, without the race detector"
# Under -race internal/sockio reads and writes through package syscall (so that the detector
# sees socket I/O order goroutines); the raw system calls the server runs with are tested here.
go test -count=1 ./internal/sockio/ ./internal/h1/ ./internal/backend/openai/

step "Wasm plugins, without the race detector"
# Compiling a Wasm module with wazero under the race detector takes minutes on two cores, so
# the tests that do (a looping module stopped, one out of memory, a rewrite) run here.
go test -count=1 -run Wasm ./internal/plugin/

step "Helm chart: helm lint --strict and helm template, manifests decoded strictly (deploy/helm)"
# Helm's and Kubernetes' Go packages, in a module of their own so that the server does not
# carry them; no helm binary is needed.
(cd deploy/helm && go vet ./... && go test -count=1 ./...)

step "benchmark baseline builds (scripts/fhproxy)"
# make bench's fasthttp baseline, in a module of its own so that the server does not carry it.
(cd scripts/fhproxy && go vet ./...)

step "engine kernels, portable build (-tags purego)"
# The engine's assembly kernels have portable Go twins, which other CPUs run; test those too.
go test -tags purego -count=1 ./internal/engine/...

step "engine kernels on arm64 under emulation (qemu-user)"
# The arm64 NEON kernels run on an emulated CPU with the dot product extension (the SDOT tiles)
# and on one without it (the plain NEON tiles), and the portable build runs there too. The
# emulation checks results only; it says nothing about speed.
if ! command -v qemu-aarch64 >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user
fi
if command -v qemu-aarch64 >/dev/null; then
  GOARCH=arm64 go vet ./internal/engine/quant/
  mkdir "$svc/arm64"
  GOARCH=arm64 go test -c -o "$svc/arm64/quant.test" ./internal/engine/quant/
  GOARCH=arm64 go test -tags purego -c -o "$svc/arm64/quant-purego.test" ./internal/engine/quant/
  (cd internal/engine/quant &&
    AUTOGLM_TEST_KERNELS=neon-dotprod qemu-aarch64 -cpu max "$svc/arm64/quant.test" &&
    AUTOGLM_TEST_KERNELS=neon qemu-aarch64 -cpu cortex-a53 "$svc/arm64/quant.test" &&
    qemu-aarch64 "$svc/arm64/quant-purego.test")
elif [ "${CI:-}" = "true" ]; then
  echo "qemu-aarch64 is required for the arm64 kernel tests (it comes with Debian's qemu-user)"; exit 1
else
  echo "qemu-aarch64 not found: skipping the arm64 kernel tests (they are required under CI=true)"
fi

step "scale-out: three autoglm processes on one PostgreSQL and one Redis"
go test -count=1 -timeout 10m ./tests/scaleout/

step "faults: restarts, a full disk, misbehaving upstreams and clients, a 3-minute soak"
# docs/RELIABILITY.md says what each test shows; `make soak` runs the soak for an hour.
AUTOGLM_SOAK=${AUTOGLM_SOAK:-3m} go test -count=1 -timeout 20m ./tests/faults/

step "fuzz (${FUZZTIME:-100000x} per target)"
./scripts/fuzz.sh

step "OpenAI SDK compatibility"
if ! command -v npm >/dev/null; then
  if [ "${CI:-}" = "true" ]; then echo "npm is required for the compatibility test"; exit 1; fi
  echo "npm not found: skipping the compatibility test (it is required under CI=true)"
else
  ./tests/compat/run.sh
fi

step "web console: committed assets up to date, then a headless Chromium test"
if ! command -v npm >/dev/null; then
  if [ "${CI:-}" = "true" ]; then echo "npm is required for the console test"; exit 1; fi
  echo "npm not found: skipping the console test (it is required under CI=true)"
else
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null && go run ./build -check)
  ./tests/console/run.sh
fi
echo
echo "all tests passed (${SECONDS}s)"
