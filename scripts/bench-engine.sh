#!/usr/bin/env bash
# Engine benchmark (what `make bench-engine` runs): writes random-weight Qwen2.5-0.5B-shaped GGUF
# files (F16, Q8_0, Q4_0, Q4_K_M, Q6_K) with the project's own writer into build/bench-engine
# (kept between runs, never committed), measures them with `autoglm bench-engine` and, when
# ../shared/reference/llama.cpp is there, with llama-bench and llama-batched-bench in the same
# run, at 1 and 2 threads, and prints the figures side by side. Settings: see the comment at the
# top of scripts/benchengine/main.go (TYPES, THREADS, REPS, PROMPT, GEN, BATCH, BENCH_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/autoglm" ./cmd/autoglm
go build -o "$work/benchengine" ./scripts/benchengine
AUTOGLM="$work/autoglm" "$work/benchengine"
