#!/usr/bin/env bash
# A whole stackgate cluster on one machine, every process on 127.0.0.1 (deploy/README.md,
# "A local cluster"): a PostgreSQL primary, a streaming standby made with `pg_basebackup -R`,
# optionally nats-server with JetStream, three `stackgate serve` replicas reading from the
# standby, and haproxy in front of them checking `/readyz`.
#
#   deploy/local/cluster.sh up DIR [options]   start it all under DIR (which must not exist)
#   deploy/local/cluster.sh down DIR           stop everything started under DIR and remove DIR
#   deploy/local/cluster.sh kill DIR NAME      SIGKILL one process (replica-1..3, haproxy, nats)
#   deploy/local/cluster.sh stop-pg DIR NAME   stop one PostgreSQL cluster (primary, standby)
#
# Options of `up`:
#   --base-port N     ports N (primary), N+1 (standby), N+2 (nats), N+3..N+5 (replicas),
#                     N+6 (haproxy); default 26400
#   --bus B           `postgres` (default) or `nats` (starts nats-server, STACKGATE_EVENT_BUS)
#   --lifetime S      everything stops by itself after S seconds (default 900, at most 86400)
#   --bin FILE        the stackgate binary (default: target/release/stackgate, else target/debug)
#   --replicas N      stackgate replicas, 1 to 3 (default 3)
#   --serve-env K=V   one more environment variable for every replica (repeatable)
#   --keys off        no credential key: the replicas run no sync scheduler (benchmarks)
#
# Everything a client needs is written to DIR/cluster.env (mode 600): STACKGATE_URL (haproxy),
# REPLICA_URLS, DATABASE_URL (the primary's superuser), STACKGATE_APP_DATABASE_URL (the
# serving login), STANDBY_URL, NATS_URL, and
# STACKGATE_JWT_SECRET for `stackgate token`. Logs are DIR/*.log and DIR/pg/*.log. The PostgreSQL clusters run
# without fsync: this is a cluster to test and measure on, not to keep data in.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$ROOT/deploy/local/cluster.sh"
DATABASE=stackgate

die() { echo "cluster: $*" >&2; exit 1; }

pg_bin() {
  local d
  for d in ${STACKGATE_POSTGRES_BIN:-} /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  die "PostgreSQL's server binaries (pg_ctl) not found: run tests/setup.sh or set STACKGATE_POSTGRES_BIN"
}

# Runs a PostgreSQL tool as `postgres` when we are root (the server refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Waits up to $2 seconds until the command in the remaining arguments succeeds.
wait_until() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out waiting for $what"
    sleep 0.2
  done
}

http_ok() { curl -fsS -m 2 -o /dev/null "$1"; }

# Starts a command in the background, in its own session, logging to DIR/NAME.log, and records
# its pid in DIR/pids/NAME.
spawn() {
  local name="$1"; shift
  setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/pids/$name"
}

pg_start() {
  local data="$1" port="$2" log="$3"
  as_pg "$PG_BIN/pg_ctl" -D "$data" -w -t 60 -l "$log" -o \
    "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
}

up() {
  local base=26400 bus=postgres lifetime=900 bin="" replicas=3 with_keys=on
  local -a serve_env=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --base-port) base="$2"; shift 2 ;;
      --bus) bus="$2"; shift 2 ;;
      --lifetime) lifetime="$2"; shift 2 ;;
      --bin) bin="$2"; shift 2 ;;
      --replicas) replicas="$2"; shift 2 ;;
      --serve-env) serve_env+=("$2"); shift 2 ;;
      --keys) with_keys="$2"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ "$base" =~ ^[0-9]+$ ]] && [ "$base" -ge 1024 ] && [ "$base" -le 65000 ] || die "--base-port must be 1024-65000"
  [[ "$lifetime" =~ ^[0-9]+$ ]] && [ "$lifetime" -ge 1 ] && [ "$lifetime" -le 86400 ] || die "--lifetime must be 1-86400 seconds"
  [[ "$replicas" =~ ^[1-3]$ ]] || die "--replicas must be 1, 2 or 3"
  case "$bus" in postgres|nats) ;; *) die "--bus must be postgres or nats" ;; esac
  case "$with_keys" in on|off) ;; *) die "--keys must be on or off" ;; esac
  if [ -z "$bin" ]; then
    for bin in "$ROOT/target/release/stackgate" "$ROOT/target/debug/stackgate"; do [ -x "$bin" ] && break; done
  fi
  [ -x "$bin" ] || die "no stackgate binary (build it, or pass --bin)"
  command -v haproxy >/dev/null || die "haproxy is missing: run tests/setup.sh (Debian's haproxy)"
  command -v curl >/dev/null || die "curl is missing"
  if [ "$bus" = nats ]; then command -v nats-server >/dev/null || die "nats-server is missing: run tests/setup.sh"; fi
  PG_BIN="$(pg_bin)"

  local p_primary=$base p_standby=$((base + 1)) p_nats=$((base + 2)) p_lb=$((base + 6))
  [ ! -e "$DIR" ] || die "$DIR exists"
  mkdir -p "$DIR/pids" "$DIR/pg"
  chmod 711 "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/pg"

  # Stop by itself: a watchdog brings everything down after the lifetime, whatever happens to us.
  setsid bash -c "sleep $lifetime; exec '$SELF' down '$DIR'" >/dev/null 2>&1 </dev/null &
  echo $! >"$DIR/pids/watchdog"
  # A failed start leaves nothing running.
  trap 'echo "cluster: start failed; stopping what started" >&2; "$SELF" down "$DIR" >/dev/null 2>&1 || true' ERR

  # 1. The primary: a cluster of its own, password logins only.
  local password server_password
  password="$(random_hex 16)"
  server_password="$(random_hex 16)"
  (umask 077; echo "$password" >"$DIR/pg/password")
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/pg/password"
  as_pg "$PG_BIN/initdb" -D "$DIR/pg/primary" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth=scram-sha-256 --pwfile="$DIR/pg/password" --no-sync >"$DIR/initdb.log" 2>&1
  pg_start "$DIR/pg/primary" "$p_primary" "$DIR/pg/primary.log"
  local owner_url="postgres://postgres:$password@127.0.0.1:$p_primary/$DATABASE"
  PGPASSWORD="$password" psql -qX -h 127.0.0.1 -p "$p_primary" -U postgres -d postgres \
    -c "create database $DATABASE" >/dev/null
  DATABASE_URL="$owner_url" "$bin" migrate >"$DIR/migrate.log" 2>&1
  # The serving login: granted stackgate_app, owns nothing, no superuser, no BYPASSRLS.
  PGPASSWORD="$password" psql -qX -h 127.0.0.1 -p "$p_primary" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "create role stackgate_server login inherit nosuperuser nobypassrls nocreatedb nocreaterole noreplication password '$server_password'" \
    -c "grant stackgate_app to stackgate_server" >/dev/null

  # 2. The standby: a base backup that streams from the primary (-R writes primary_conninfo).
  as_pg env PGPASSWORD="$password" "$PG_BIN/pg_basebackup" \
    -D "$DIR/pg/standby" -R -X stream --no-sync --checkpoint=fast \
    -h 127.0.0.1 -p "$p_primary" -U postgres >"$DIR/basebackup.log" 2>&1
  pg_start "$DIR/pg/standby" "$p_standby" "$DIR/pg/standby.log"
  local app_url="postgres://stackgate_server:$server_password@127.0.0.1:$p_primary/$DATABASE"
  local standby_url="postgres://stackgate_server:$server_password@127.0.0.1:$p_standby/$DATABASE"

  # 3. NATS with JetStream, when asked for.
  local bus_url=postgres nats_url=""
  if [ "$bus" = nats ]; then
    mkdir -p "$DIR/nats"
    spawn nats nats-server -a 127.0.0.1 -p "$p_nats" -js -sd "$DIR/nats"
    nats_url="nats://127.0.0.1:$p_nats"
    bus_url="$nats_url"
    wait_until "nats-server" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p_nats"
  fi

  # 4. The replicas: one JWT secret and one credential key between them.
  local jwt_secret keys
  jwt_secret="$(random_hex 32)"
  keys="k1:$(head -c 32 /dev/urandom | base64 -w0)"
  local -a key_env=("STACKGATE_ENCRYPTION_KEYS=$keys")
  [ "$with_keys" = on ] || key_env=()
  local i port urls=""
  for i in $(seq 1 "$replicas"); do
    port=$((base + 2 + i))
    spawn "replica-$i" env -i PATH="$PATH" HOSTNAME="replica-$i" RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
      DATABASE_URL="$owner_url" STACKGATE_APP_DATABASE_URL="$app_url" \
      STACKGATE_READ_DATABASE_URLS="$standby_url" STACKGATE_EVENT_BUS="$bus_url" \
      STACKGATE_JWT_SECRET="$jwt_secret" "${key_env[@]}" \
      STACKGATE_LISTEN="127.0.0.1:$port" "${serve_env[@]}" "$bin" serve
    urls="$urls${urls:+,}http://127.0.0.1:$port"
  done
  for i in $(seq 1 "$replicas"); do
    wait_until "replica-$i to be ready (see $DIR/replica-$i.log)" 60 http_ok "http://127.0.0.1:$((base + 2 + i))/readyz"
  done

  # 5. haproxy: round robin over ready replicas; a refused connection is retried on another
  # (never a request a replica may have begun, so a mutation is not sent twice).
  {
    cat <<EOF
global
    maxconn 4096
defaults
    mode http
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend stackgate
    bind 127.0.0.1:$p_lb
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 500ms fall 2 rise 1
EOF
    for i in $(seq 1 "$replicas"); do
      echo "    server replica-$i 127.0.0.1:$((base + 2 + i)) check"
    done
  } >"$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg" >/dev/null
  spawn haproxy haproxy -db -f "$DIR/haproxy.cfg"
  wait_until "haproxy" 30 http_ok "http://127.0.0.1:$p_lb/readyz"

  (umask 077; cat >"$DIR/cluster.env" <<EOF
STACKGATE_URL=http://127.0.0.1:$p_lb
REPLICA_URLS=$urls
DATABASE_URL=$owner_url
STACKGATE_APP_DATABASE_URL=$app_url
STANDBY_URL=postgres://postgres:$password@127.0.0.1:$p_standby/$DATABASE
NATS_URL=$nats_url
STACKGATE_JWT_SECRET=$jwt_secret
EOF
  )
  trap - ERR
  echo "cluster: up at http://127.0.0.1:$p_lb ($replicas replicas, bus $bus), stops by itself in ${lifetime}s; settings in $DIR/cluster.env"
}

# SIGTERM, then SIGKILL after 5 s, to the process group of each recorded process.
stop_pid_file() {
  local file="$1" pid
  pid="$(cat "$file" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

down() {
  [ -d "$DIR" ] || return 0
  [ -f "$DIR/pg/password" ] || [ -d "$DIR/pids" ] || die "$DIR is not a cluster directory"
  local f
  for f in "$DIR"/pids/haproxy "$DIR"/pids/replica-* "$DIR"/pids/nats; do
    [ -e "$f" ] && stop_pid_file "$f"
  done
  local name bin
  bin="$(pg_bin)"
  for name in standby primary; do
    if [ -f "$DIR/pg/$name/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$DIR/pg/$name" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  # The watchdog last: it may be the one running this.
  local watchdog
  watchdog="$(cat "$DIR/pids/watchdog" 2>/dev/null || true)"
  rm -rf "$DIR"
  if [ -n "$watchdog" ] && [ "$watchdog" != "$PPID" ] && [ "$watchdog" != "$$" ]; then
    kill -TERM -- "-$watchdog" 2>/dev/null || true
  fi
}

[ $# -ge 2 ] || die "usage: cluster.sh up|down|kill|stop-pg DIR [...] (see the head of this file)"
COMMAND="$1"
DIR="$(realpath -m "$2")"
shift 2
case "$COMMAND" in
  up) up "$@" ;;
  down) down ;;
  kill)
    [ $# = 1 ] && [[ "$1" =~ ^(replica-[1-3]|haproxy|nats)$ ]] || die "kill takes replica-1..3, haproxy or nats"
    pid="$(cat "$DIR/pids/$1" 2>/dev/null)" || die "$1 is not running"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    rm -f "$DIR/pids/$1"
    ;;
  stop-pg)
    [ $# = 1 ] && [[ "$1" =~ ^(primary|standby)$ ]] || die "stop-pg takes primary or standby"
    as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg/$1" -m fast -w stop >/dev/null
    ;;
  *) die "unknown command $COMMAND" ;;
esac
