#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `scripts/pg.sh start` creates a cluster under
# target/pg-test/ (trust authentication, loopback and a unix socket only, a free port), starts
# it and prints its URL (also written to target/pg-test/url); `scripts/pg.sh stop` stops it and
# deletes the cluster. Installs Debian's PostgreSQL when it is missing (as root only).
# PostgreSQL refuses to run as root: as root the cluster belongs to the system user
# leakaudit-pg, created on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=target/pg-test
PG_USER=leakaudit-pg
# The database role the tests connect as (a superuser: they create and drop databases).
ROLE=leakaudit

note() { echo "pg.sh: $*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

ensure_installed() {
  if find_bindir >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    note "PostgreSQL (initdb) is missing and cannot be installed here (needs root and apt-get)"
    return 1
  fi
  note "installing PostgreSQL (needed by the PostgreSQL store tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  find_bindir >/dev/null
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

# Where the cluster lives: target/pg-test/cluster when the owner can reach it and the socket
# path fits in a sockaddr_un (107 bytes), else a private folder under /tmp (recorded in
# target/pg-test/home so `stop` finds it).
cluster_home() {
  local abs
  abs="$(cd "$STATE" && pwd)"
  if [ ${#abs} -lt 80 ] && as_owner test -x "$abs" 2>/dev/null; then
    echo "$abs"
  else
    mktemp -d /tmp/leakaudit-pg.XXXXXX
  fi
}

# A port nothing listens on (the start is retried on another one if it was taken meanwhile).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if command -v ss >/dev/null 2>&1; then
      ss -Htln "sport = :$p" 2>/dev/null | grep -q . && continue
    elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      continue
    fi
    echo "$p"
    return 0
  done
  return 1
}

start() {
  ensure_installed
  local bin home port url
  bin="$(find_bindir)"
  if [ -f "$STATE/url" ] && [ -f "$STATE/home" ] &&
    as_owner "$bin/pg_ctl" status -D "$(cat "$STATE/home")/data" >/dev/null 2>&1; then
    cat "$STATE/url"
    return 0
  fi
  stop >/dev/null 2>&1 || true
  if [ "$(id -u)" = 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
  fi
  mkdir -p "$STATE"
  chmod 0755 "$STATE"
  if [ "$(id -u)" = 0 ]; then
    chown "$PG_USER" "$STATE"
  fi
  home="$(cluster_home)"
  if [ "$(id -u)" = 0 ]; then
    chown "$PG_USER" "$home"
  fi
  echo "$home" >"$STATE/home"
  as_owner "$bin/initdb" -D "$home/data" --username="$ROLE" --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 ||
    { cat "$STATE/initdb.log" >&2; return 1; }
  for _ in 1 2 3 4 5; do
    port="$(free_port)"
    # A test cluster: durability is the client's concern here, not the server's.
    if as_owner "$bin/pg_ctl" start -w -t 60 -D "$home/data" -l "$home/server.log" \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$home -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null; then
      url="postgresql://$ROLE@127.0.0.1:$port/postgres"
      echo "$url" >"$STATE/url"
      echo "$url"
      return 0
    fi
    note "could not start on port $port; trying another"
  done
  tail -20 "$home/server.log" >&2 || true
  return 1
}

stop() {
  [ -f "$STATE/home" ] || return 0
  local home bin
  home="$(cat "$STATE/home")"
  bin="$(find_bindir)" || return 0
  if [ -d "$home/data" ]; then
    as_owner "$bin/pg_ctl" stop -m fast -w -D "$home/data" >/dev/null 2>&1 || true
  fi
  rm -rf "$home/data" "$home/server.log" "$STATE/url" "$STATE/home"
  case "$home" in /tmp/leakaudit-pg.*) rm -rf "$home" ;; esac
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: scripts/pg.sh start|stop" >&2
    exit 2
    ;;
esac
