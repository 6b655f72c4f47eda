#!/usr/bin/env bash
# Runs the whole of orderflow on this machine, in the foreground like `docker compose up`:
# Postgres and NATS (reused when already running), a debug build, the database bootstrap, the six
# services with their logs followed in this terminal, the demo tenant (deploy/local/seed.sh), and
# ready-to-paste commands that walk a WhatsApp message to an approved order. Ctrl-C (or SIGTERM)
# stops the services, ingest first, then whatever infrastructure this run started.
#
# Environment: RUST_LOG (info), ORDERFLOW_LOG_FORMAT (pretty), ORDERFLOW_JWT_SECRET,
# OTEL_EXPORTER_OTLP_ENDPOINT, and those of infra.sh (ORDERFLOW_PG_PORT, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
INFRA_OWNER_PID=$$
# shellcheck source=deploy/local/infra.sh
source "$ROOT/deploy/local/infra.sh"

SERVICES=(ingest draft order inventory shipping notifier)
declare -A HTTP_PORT=([ingest]=8080 [draft]=8081 [order]=8082 [inventory]=8083 [shipping]=8084 [notifier]=8085)
declare -A GRPC_PORT=([ingest]=50050 [draft]=50051 [order]=50052 [inventory]=50053 [shipping]=50054 [notifier]=50055)
DEMO_TENANT=11111111-1111-4111-8111-111111111111
BIN="$ROOT/target/debug"
HEALTH_TIMEOUT_S=60
# Services get ORDERFLOW_SHUTDOWN_DEADLINE_MS (20 s) to finish in-flight work after SIGTERM.
STOP_TIMEOUT_S=25

declare -A PID=()
TAIL_PID=""
CLEANED_UP=0
FORCE_STOP=0

say() { printf '[up] %s\n' "$*"; }
die() {
  printf '[up] error: %s\n' "$*" >&2
  exit 1
}

pidfile() { printf '%s/svc-%s.pid' "$INFRA_RUN" "$1"; }

# True when $1 runs one of this checkout's builds of service $2 (debug or release).
is_our_service() {
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  exe="${exe% (deleted)}"
  [[ "$exe" == "$ROOT/target/debug/$2" || "$exe" == "$ROOT/target/release/$2" ]]
}

# A previous run that crashed (or was killed with -9) leaves services behind; they hold the ports.
kill_leftovers() {
  local svc pid port owner
  for svc in "${SERVICES[@]}"; do
    if [[ -f "$(pidfile "$svc")" ]]; then
      pid="$(tr -d '[:space:]' <"$(pidfile "$svc")")"
      if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_service "$pid" "$svc"; then
        say "stopping $svc left over from an earlier run (pid $pid)"
        infra_kill_pid "$pid" "$STOP_TIMEOUT_S"
      fi
      rm -f "$(pidfile "$svc")"
    fi
  done
  for svc in "${SERVICES[@]}"; do
    for port in "${HTTP_PORT[$svc]}" "${GRPC_PORT[$svc]}"; do
      infra_port_open 127.0.0.1 "$port" || continue
      owner="$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
      if [[ -n "$owner" ]] && is_our_service "$owner" "$svc"; then
        say "stopping a stray $svc on port $port (pid $owner)"
        infra_kill_pid "$owner" "$STOP_TIMEOUT_S"
      else
        die "port $port (for $svc) is taken by ${owner:+pid $owner, }another program; stop it and rerun"
      fi
    done
  done
}

# Stops services in this order, each stage against its own deadline: ingest first (no new
# webhooks come in; its committers finish the batches requests wait for), then draft (its
# approvals in flight still need inventory and order), then the rest. A second Ctrl-C kills
# whatever still runs at once.
STOP_ORDER=(ingest draft "order inventory shipping notifier")

stop_stage() {
  local svc pid i alive names=()
  for svc in "$@"; do
    pid="${PID[$svc]:-}"
    [[ -n "$pid" ]] || continue
    names+=("$svc")
    if ((FORCE_STOP)); then kill -KILL "$pid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
  done
  ((${#names[@]})) || return 0
  say "stopping ${names[*]}"
  for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
    alive=0
    for svc in "${names[@]}"; do kill -0 "${PID[$svc]}" 2>/dev/null && alive=1; done
    ((alive == 0)) && break
    if ((FORCE_STOP)); then
      for svc in "${names[@]}"; do kill -KILL "${PID[$svc]}" 2>/dev/null; done
    fi
    sleep 0.1
  done
  for svc in "${names[@]}"; do
    pid="${PID[$svc]}"
    if kill -0 "$pid" 2>/dev/null; then
      say "$svc did not stop within ${STOP_TIMEOUT_S}s; killing it"
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    unset "PID[$svc]"
    rm -f "$(pidfile "$svc")"
  done
}

cleanup() {
  local status=$?
  ((CLEANED_UP)) && return
  CLEANED_UP=1
  trap 'FORCE_STOP=1' INT TERM
  set +e
  local stage
  if ((${#PID[@]})); then
    say "stopping services: ingest first, then draft, then the rest (Ctrl-C again to kill them at once)"
    for stage in "${STOP_ORDER[@]}"; do
      # shellcheck disable=SC2086 # a stage is a space-separated list of services
      stop_stage $stage
    done
  fi
  if [[ -n "$TAIL_PID" ]]; then
    sleep 0.3 # let the log follower print the services' last lines
    kill "$TAIL_PID" 2>/dev/null
  fi
  if ((${#INFRA_STARTED[@]})); then infra_stop "${INFRA_STARTED[@]}"; fi
  say "stopped"
  exit "$status"
}

on_signal() {
  printf '\n'
  say "received $1, shutting down"
  exit $((128 + $2))
}

trap cleanup EXIT
trap 'on_signal SIGINT 2' INT
trap 'on_signal SIGTERM 15' TERM
trap 'on_signal SIGHUP 1' HUP
# A closed output pipe (`up.sh | tee`, then Ctrl-C) must end in cleanup, not in a silent death.
trap '' PIPE

infra_ensure

# One up.sh per checkout: a second one would take the first one's services for leftovers. The lock
# is taken after infra_ensure so that Postgres and NATS never inherit it.
exec {UP_LOCK_FD}>"$INFRA_RUN/up.lock"
if ! flock -n "$UP_LOCK_FD"; then
  die "another deploy/local/up.sh is running (pid $(cat "$INFRA_RUN/up.pid" 2>/dev/null || echo '?')); stop it first"
fi
echo $$ >"$INFRA_RUN/up.pid"

kill_leftovers

say "building (cargo build --workspace)"
cargo build --workspace {UP_LOCK_FD}>&-

[[ -x "$BIN/orderflow-db-bootstrap" ]] || die "target/debug/orderflow-db-bootstrap was not built (the workspace must provide that binary)"
say "bootstrapping roles, database and schemas"
"$BIN/orderflow-db-bootstrap" {UP_LOCK_FD}>&-

export ORDERFLOW_ENV="${ORDERFLOW_ENV:-development}"
export ORDERFLOW_LOG_FORMAT="${ORDERFLOW_LOG_FORMAT:-pretty}"
export RUST_LOG="${RUST_LOG:-info}"
export NATS_URL

for svc in "${SERVICES[@]}"; do
  [[ -x "$BIN/$svc" ]] || die "target/debug/$svc was not built"
  log="$INFRA_LOGS/$svc.log"
  [[ -f "$log" ]] && mv -f "$log" "$log.prev"
  : >"$log"
done

# Follow every log with a [service] prefix, using the headers tail prints when it switches files;
# --pid ends the follower if this script dies without cleaning up.
log_files=()
for svc in "${SERVICES[@]}"; do log_files+=("$INFRA_LOGS/$svc.log"); done
tail -n +1 -F --pid=$$ "${log_files[@]}" 2>/dev/null {UP_LOCK_FD}>&- | {
  # bash, not awk: mawk would hold lines back in its input buffer.
  name=log
  while IFS= read -r line; do
    case "$line" in
      '==> '*' <==') name="${line#==> }" name="${name% <==}" name="${name##*/}" name="${name%.log}" ;;
      '') ;;
      *) printf '%-12s %s\n' "[$name]" "$line" ;;
    esac
  done
} &
TAIL_PID=$!
sleep 0.2

for svc in "${SERVICES[@]}"; do
  (
    # The Postgres port only needs spelling out when it is not the services' default.
    if [[ "$INFRA_PG_PORT" != 5432 || "$INFRA_PG_HOST" != 127.0.0.1 ]]; then
      export DATABASE_URL="postgres://orderflow_$svc:orderflow_${svc}_dev@$INFRA_PG_HOST:$INFRA_PG_PORT/orderflow"
    fi
    export ORDERFLOW_HTTP_ADDR="127.0.0.1:${HTTP_PORT[$svc]}"
    export ORDERFLOW_GRPC_ADDR="127.0.0.1:${GRPC_PORT[$svc]}"
    # draft calls inventory and order at INVENTORY_GRPC_URL / ORDER_GRPC_URL, whose defaults
    # (http://127.0.0.1:50053, :50052) are the ports above; set them only if those change.
    # setsid: Ctrl-C reaches only this script, which then stops the services in order.
    exec setsid "$BIN/$svc" >>"$INFRA_LOGS/$svc.log" 2>&1 </dev/null {UP_LOCK_FD}>&-
  ) &
  PID[$svc]=$!
  echo "${PID[$svc]}" >"$(pidfile "$svc")"
done
say "started: $(for svc in "${SERVICES[@]}"; do printf '%s(%s) ' "$svc" "${PID[$svc]}"; done)"

fail_service() {
  local svc="$1" why="$2"
  say "$svc $why; last lines of .orderflow/logs/$svc.log:"
  tail -n 40 "$INFRA_LOGS/$svc.log" | sed 's/^/    /' >&2
  exit 1
}

pending=("${SERVICES[@]}")
deadline=$((SECONDS + HEALTH_TIMEOUT_S))
while ((${#pending[@]})); do
  still=()
  for svc in "${pending[@]}"; do
    if infra_http_ok "http://127.0.0.1:${HTTP_PORT[$svc]}/healthz"; then
      say "$svc is healthy on http://127.0.0.1:${HTTP_PORT[$svc]}"
    elif ! kill -0 "${PID[$svc]}" 2>/dev/null; then
      wait "${PID[$svc]}" && code=0 || code=$?
      fail_service "$svc" "exited with status $code before it was healthy"
    else
      still+=("$svc")
    fi
  done
  pending=("${still[@]}")
  if ((${#pending[@]})); then
    ((SECONDS < deadline)) || fail_service "${pending[0]}" "was not healthy within ${HEALTH_TIMEOUT_S}s (pending: ${pending[*]})"
    sleep 0.5
  fi
done

seed_note="deploy/local/seed.sh is missing; no demo data was loaded"
if [[ -x "$ROOT/deploy/local/seed.sh" ]]; then
  say "seeding the demo tenant (deploy/local/seed.sh)"
  if ORDERFLOW_DEMO_TENANT="$DEMO_TENANT" \
    ORDERFLOW_SEED_INGEST="127.0.0.1:${GRPC_PORT[ingest]}" \
    ORDERFLOW_SEED_DRAFT="127.0.0.1:${GRPC_PORT[draft]}" \
    ORDERFLOW_SEED_INVENTORY="127.0.0.1:${GRPC_PORT[inventory]}" \
    "$ROOT/deploy/local/seed.sh" {UP_LOCK_FD}>&-; then
    seed_note="seeded: WhatsApp channel 106540352242922, a USD jewellery catalog with stock"
  else
    seed_note="deploy/local/seed.sh FAILED (see above); the services still run"
  fi
fi

token="(target/debug/orderflow-token was not built)"
if [[ -x "$BIN/orderflow-token" ]]; then
  token="$("$BIN/orderflow-token" --tenant "$DEMO_TENANT" --role admin --sub demo-admin --ttl-hours 12 {UP_LOCK_FD}>&-)" ||
    token="(orderflow-token failed)"
fi

cat <<EOF

[up] orderflow is running.
    demo tenant:  $DEMO_TENANT ($seed_note)
    admin token:  export TOKEN='$token'
    logs:         .orderflow/logs/<service>.log   database: $ORDERFLOW_ADMIN_DATABASE_URL   bus: $NATS_URL
    ports:        HTTP 8080-8085 (/healthz /readyz /metrics; ingest takes the webhooks on 8080)
                  gRPC ingest 50050, draft 50051, order 50052, inventory 50053, shipping 50054, notifier 50055

[up] Try it: paste these lines into another shell at $ROOT
EOF
# The try-it block is pasted into another shell, so it needs only what that shell has:
# target/debug/orderflow-token, grpcurl, openssl, curl, awk, grep and cut. Quoted here-document:
# nothing in it expands now except the @...@ placeholders sed fills in.
sed -e "s/@TENANT@/$DEMO_TENANT/g" -e "s/@INGEST_HTTP@/${HTTP_PORT[ingest]}/g" \
  -e "s/@DRAFT@/${GRPC_PORT[draft]}/g" -e "s/@ORDER@/${GRPC_PORT[order]}/g" <<'EOF'

# 1. A customer writes on WhatsApp. The webhook is signed the way Meta signs it: HMAC-SHA256 of
#    the raw body with the app secret (dev-meta-app-secret locally, META_APP_SECRET). The message
#    id is fresh on every paste, so ingest takes it as a new message; but the draft service treats
#    the same text from the same customer within 5 minutes as a resend and creates nothing.
BODY=$(printf '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Ada Obi"},"wa_id":"2348012345678"}],"messages":[{"from":"2348012345678","id":"wamid.DEMO%s","timestamp":"%s","type":"text","text":{"body":"Hi! 2 gold hoops size 7 and the silver chain pls"}}]},"field":"messages"}]}]}' "$(date +%s%N)" "$(date +%s)")
SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac dev-meta-app-secret | awk '{print $NF}')
curl -sS -X POST http://127.0.0.1:@INGEST_HTTP@/webhooks/whatsapp -H "X-Hub-Signature-256: sha256=$SIG" -H 'content-type: application/json' -d "$BODY"; echo

# 2. A moment later it is a draft waiting for review: 2 x HOOP-G-7 and 1 x CHAIN-S, priced from the catalog.
AGENT=$(target/debug/orderflow-token --tenant @TENANT@ --role agent --sub demo-agent); sleep 1
grpcurl -plaintext -H "authorization: Bearer $AGENT" -d '{"statuses":["DRAFT_STATUS_PENDING_REVIEW"]}' 127.0.0.1:@DRAFT@ orderflow.draft.v1.DraftService/ListDrafts

# 3. Approve the newest one: inventory reserves the stock, the order service creates exactly one order.
DRAFT_ID=$(grpcurl -plaintext -H "authorization: Bearer $AGENT" -d '{"statuses":["DRAFT_STATUS_PENDING_REVIEW"],"page_size":1}' 127.0.0.1:@DRAFT@ orderflow.draft.v1.DraftService/ListDrafts | grep -m1 -o '"id": "[^"]*"' | cut -d'"' -f4)
grpcurl -plaintext -H "authorization: Bearer $AGENT" -d "{\"id\":\"$DRAFT_ID\"}" 127.0.0.1:@DRAFT@ orderflow.draft.v1.DraftService/ApproveDraft | tee /tmp/orderflow-approved.json

# 4. The order, by the code the approval returned (ORD-000001, ...), with its items and history:
ORDER_CODE=$(grep -m1 -o '"orderCode": "[^"]*"' /tmp/orderflow-approved.json | cut -d'"' -f4)
grpcurl -plaintext -H "authorization: Bearer $AGENT" -d "{\"id\":\"$ORDER_CODE\"}" 127.0.0.1:@ORDER@ orderflow.order.v1.OrderService/GetOrder

EOF
cat <<EOF
[up] More (editing and rejecting drafts, payments, the order lifecycle, TikTok Shop): README.md, "Try it".
[up] Ctrl-C stops everything this run started.

EOF

# Poll rather than `wait`, so that a signal is handled within a second.
while :; do
  for svc in "${SERVICES[@]}"; do
    if ! kill -0 "${PID[$svc]}" 2>/dev/null; then
      wait "${PID[$svc]}" && code=0 || code=$?
      unset "PID[$svc]"
      rm -f "$(pidfile "$svc")"
      fail_service "$svc" "exited unexpectedly with status $code; shutting everything down"
    fi
  done
  sleep 1
done
