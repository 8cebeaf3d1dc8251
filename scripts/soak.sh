#!/usr/bin/env bash
# The soak: mixed chat, streamed chat, task, embeddings and admin traffic at a steady rate
# through two autoglm replicas on PostgreSQL and Redis, with the upstream killed (SIGKILL)
# and started again every few minutes (TestSoak in tests/faults; docs/RELIABILITY.md).
#
#   scripts/soak.sh [DURATION]     # default 1h; any Go duration of at least 1m, e.g. 20m
#
# It starts PostgreSQL and Redis (scripts/services.sh) and writes its report to
# soak-report.txt (RSS and goroutines of each replica over time, outcomes per kind of
# request, failures explained by an upstream outage or not, tasks by final state).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-${DURATION:-1h}}
report=${AUTOGLM_SOAK_REPORT:-$PWD/soak-report.txt}

svc=$(mktemp -d)
trap './scripts/services.sh stop "$svc"; rm -rf "$svc"' EXIT
eval "$(./scripts/services.sh start "$svc")"

# The test's own limit: the soak, three minutes to account for the tasks, and the setup.
secs=$(python3 -c "
import re,sys
d='$duration'; t=0
for n,u in re.findall(r'([0-9.]+)(h|ms|m|s)', d): t+=float(n)*{'h':3600,'m':60,'s':1,'ms':0.001}[u]
print(int(t))")
status=0
AUTOGLM_SOAK=$duration AUTOGLM_SOAK_REPORT=$report \
  go test -count=1 -run '^TestSoak$' -timeout "$((secs + 900))s" -v ./tests/faults/ || status=$?
echo
if [ -f "$report" ]; then echo "report: $report"; cat "$report"; fi
exit "$status"
