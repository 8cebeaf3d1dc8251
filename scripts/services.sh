#!/usr/bin/env bash
# Starts the real servers the tests need — PostgreSQL and Redis — on loopback, on free ports,
# in a private directory, and prints `export` lines for their addresses:
#
#   eval "$(scripts/services.sh start DIR)"   # exports AUTOGLM_TEST_POSTGRES_DSN, AUTOGLM_TEST_REDIS_ADDR
#   scripts/services.sh stop DIR
#
# Missing packages are installed from Debian's archive (apt-get; needs root). Any failure is
# fatal: under CI=true the tests must never run without their services.
set -euo pipefail
cmd=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}

log() { echo "services: $*" >&2; }
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
}

ensure_packages() {
  local need=()
  [ -n "$(pg_bin)" ] || need+=(postgresql)
  command -v redis-server >/dev/null || need+=(redis-server)
  [ ${#need[@]} -eq 0 ] && return
  log "installing ${need[*]} from Debian packages"
  if [ "$(id -u)" != 0 ]; then log "need root to install ${need[*]}"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

start() {
  ensure_packages
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir" # the postgres user must reach its cluster inside
  local bin pg_port redis_port
  bin=$(pg_bin)
  pg_port=$(freeport)
  redis_port=$(freeport)

  # PostgreSQL: a private cluster owned by the postgres user (initdb refuses to run as root).
  install -d -o postgres -g postgres "$dir/pg"
  local as_pg=(env)
  if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$bin/initdb" -D "$dir/pg/data" -A trust -U postgres >"$dir/pg-initdb.log" 2>&1 ||
    { cat "$dir/pg-initdb.log" >&2; exit 1; }
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/pg/data" -w -t 60 -l "$dir/pg/log" \
    -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2 || { cat "$dir/pg/log" >&2; exit 1; }
  log "postgresql on 127.0.0.1:$pg_port"

  # Redis: no persistence, loopback only.
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" >&2
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  redis-cli -p "$redis_port" ping >/dev/null || { cat "$dir/redis.log" >&2; exit 1; }
  log "redis on 127.0.0.1:$redis_port"

  echo "export AUTOGLM_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable'"
  echo "export AUTOGLM_TEST_REDIS_ADDR='127.0.0.1:$redis_port'"
}

stop() {
  [ -d "$dir" ] || return 0
  local bin
  bin=$(pg_bin)
  if [ -f "$dir/pg/data/postmaster.pid" ] && [ -n "$bin" ]; then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
    else "$bin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true; fi
  fi
  if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: services.sh start|stop DIR" >&2; exit 2 ;;
esac
