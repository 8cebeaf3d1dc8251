#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 100000x: a count of executions,
# not a duration — a duration-based -fuzztime trips a race in Go 1.26's fuzzing coordinator that
# fails a run with "context deadline exceeded" and no failing input, golang/go#75804).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-100000x}
status=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"${line#*:}")
  pkg=./$(dirname "$file")
  echo "fuzz $pkg $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
    cat /tmp/fuzz.$$.log
    status=1
  fi
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' -- '*_test.go' | sed -E 's/^([^:]+):[0-9]+:/\1:/')
rm -f /tmp/fuzz.$$.log
exit $status
