#!/usr/bin/env bash
# Runs every check of orderflow against real Postgres and NATS, the way CI does (.ci/run calls it):
# infrastructure (reused when running, otherwise started and stopped again at exit), a debug build
# with tests, the database bootstrap, removal of test databases and JetStream streams that earlier
# runs left, the docker-compose.yml check, `cargo test --workspace`, the python end-to-end tests
# in deploy/local/e2e/ when there are any, (full runs) `cargo fmt --check` and clippy, and at the
# end the removal of the databases and streams this run's tests created.
#
#   deploy/local/test.sh                      everything
#   deploy/local/test.sh -p order             extra arguments go to `cargo test`
#   deploy/local/test.sh -- --nocapture
#
# Tests are quiet; ORDERFLOW_TEST_LOG (unset here) is passed through when you set it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
INFRA_OWNER_PID=$$
# shellcheck source=deploy/local/infra.sh
source "$ROOT/deploy/local/infra.sh"

if [[ -n "${CI:-}" ]]; then export CARGO_TERM_COLOR=never; fi

FAILED=()

say() { printf '[test] %s\n' "$*"; }
die() {
  printf '[test] error: %s\n' "$*" >&2
  exit 1
}

on_exit() {
  local status=$?
  set +e
  if [[ -n "${TESTS_STARTED:-}" ]]; then remove_this_runs_leftovers; fi
  if ((${#INFRA_STARTED[@]})); then infra_stop "${INFRA_STARTED[@]}"; fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Per-test databases (oftest_*) that a crashed or interrupted run left behind. A database that has
# a connection, or that changed in the last two minutes, may belong to a run in progress on this
# machine and is kept.
drop_leftover_test_databases() {
  local sql drops dropped=0 stmt
  sql="SELECT format('DROP DATABASE IF EXISTS %I', d.datname)
         FROM pg_database d
        WHERE d.datname LIKE 'oftest\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
          AND coalesce((pg_stat_file('base/' || d.oid, true)).modification, '-infinity')
              < now() - interval '2 minutes'"
  if ! drops="$("$INFRA_PSQL" "$ORDERFLOW_ADMIN_DATABASE_URL" -Atqc "$sql" 2>&1)"; then
    say "warning: could not list leftover test databases: $drops"
    return 0
  fi
  while IFS= read -r stmt; do
    [[ -n "$stmt" ]] || continue
    if "$INFRA_PSQL" "$ORDERFLOW_ADMIN_DATABASE_URL" -qc "$stmt" >/dev/null 2>&1; then
      dropped=$((dropped + 1))
    fi
  done <<<"$drops"
  if ((dropped)); then say "dropped $dropped leftover test database(s)"; fi
}

# Per-test JetStream streams that earlier runs left: cargo tests use a namespace `t<16 hex>` (8 of
# them the run's tag; 12 before the tag was widened), streams T<16 HEX>_INGEST ... T<16 HEX>_DLQ,
# the python suite `e2e<16 hex>` (E2E..._*). A test
# deletes nothing when it fails or is killed, and thousands of idle streams slow every JetStream
# call down. A namespace goes as a whole, and only when it is surely abandoned: created more than
# 10 minutes ago (no single test runs that long), or more than 2 minutes ago with no message in
# the last 2 minutes and no consumer holding unprocessed or unacknowledged messages. Younger ones
# may belong to a test running right now on this machine. ORDERFLOW_* streams are never touched.
#
# With a run tag (`delete_leftover_test_streams <tag>`), every namespace of that run goes, whatever
# its age: the run is over and nothing else uses its tag.
delete_leftover_test_streams() {
  local out
  if ! out="$(python3 - "$NATS_URL" "${1:-}" 2>&1 <<'PY'
import asyncio, json, re, sys, time
from datetime import datetime, timezone

import nats

NAME = re.compile(r"^(T[0-9A-F]{16}|T[0-9A-F]{12}|E2E[0-9A-F]{16})_[A-Z]+$")
OLD_S, IDLE_S = 600, 120
RUN = ("T" + sys.argv[2].upper()) if len(sys.argv) > 2 and sys.argv[2] else None

def seconds(ts):
    """An RFC 3339 time from the server (nanoseconds, Z) as a Unix timestamp; 0 when unset."""
    if not ts or ts.startswith("0001-"):
        return 0.0
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", ts)
    if not m:
        return 0.0
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return base.timestamp() + float("0." + (m.group(2) or "0"))

async def api(nc, subject, body=None):
    msg = await nc.request(subject, json.dumps(body or {}).encode(), timeout=10)
    reply = json.loads(msg.data)
    if "error" in reply:
        raise RuntimeError(f"{subject}: {reply['error']}")
    return reply

async def main():
    nc = await nats.connect(sys.argv[1], connect_timeout=5, max_reconnect_attempts=0)
    try:
        streams, offset = [], 0
        while True:
            page = await api(nc, "$JS.API.STREAM.LIST", {"offset": offset})
            streams += page.get("streams") or []
            offset += len(page.get("streams") or [])
            if not page.get("streams") or offset >= page.get("total", 0):
                break
        namespaces = {}
        for s in streams:
            name = s["config"]["name"]
            if name.startswith("ORDERFLOW_") or not NAME.match(name):
                continue
            namespaces.setdefault(name.split("_", 1)[0], []).append(s)
        now = time.time()
        doomed = []
        for ns, members in namespaces.items():
            if RUN:
                if ns.startswith(RUN):
                    doomed += [s["config"]["name"] for s in members]
                continue
            created = min(seconds(s.get("created")) for s in members)
            if created <= 0:
                continue
            if now - created < OLD_S:
                if now - created < IDLE_S:
                    continue
                last = max([seconds(s["state"].get("last_ts")) for s in members] + [created])
                if now - last < IDLE_S:
                    continue
                busy = False
                for s in members:
                    if s["state"].get("consumer_count", 0) == 0:
                        continue
                    listing = await api(nc, "$JS.API.CONSUMER.LIST." + s["config"]["name"])
                    if any(c.get("num_pending", 0) or c.get("num_ack_pending", 0) for c in listing.get("consumers") or []):
                        busy = True
                        break
                if busy:
                    continue
            doomed += [s["config"]["name"] for s in members]
        gate = asyncio.Semaphore(16)
        failed = 0
        async def delete(name):
            nonlocal failed
            async with gate:
                try:
                    await api(nc, "$JS.API.STREAM.DELETE." + name)
                except Exception:
                    failed += 1
        await asyncio.gather(*(delete(n) for n in doomed))
        kept = sum(len(m) for m in namespaces.values()) - len(doomed)
        print(f"{len(doomed) - failed} {kept} {failed}")
    finally:
        await nc.close()

asyncio.run(main())
PY
)"; then
    say "warning: could not clean up leftover test streams: $(printf '%s' "$out" | tail -n 1)"
    return 0
  fi
  local deleted kept failed
  read -r deleted kept failed <<<"$(printf '%s' "$out" | tail -n 1)"
  if [[ -n "${1:-}" ]]; then
    say "deleted this run's $deleted test stream(s)$( ((failed)) && printf '; %s could not be deleted' "$failed")"
  elif ((deleted || failed)); then
    say "deleted $deleted leftover test stream(s); kept $kept that may be in use$( ((failed)) && printf '; %s could not be deleted' "$failed")"
  fi
}

# What this run's tests created (databases `oftest_<tag>...`, namespaces `t<tag>...`), removed when
# the run ends, passed or failed: tests leave both behind, and thousands of idle streams slow
# JetStream (and the benchmarks run on the same server) down.
remove_this_runs_leftovers() {
  local stmt dropped=0
  while IFS= read -r stmt; do
    [[ -n "$stmt" ]] || continue
    if "$INFRA_PSQL" "$ORDERFLOW_ADMIN_DATABASE_URL" -qc "$stmt" >/dev/null 2>&1; then
      dropped=$((dropped + 1))
    fi
  done < <("$INFRA_PSQL" "$ORDERFLOW_ADMIN_DATABASE_URL" -Atqc \
    "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database
      WHERE datname LIKE 'oftest\\_${ORDERFLOW_TEST_RUN}%'" 2>/dev/null)
  say "dropped this run's $dropped test database(s)"
  delete_leftover_test_streams "$ORDERFLOW_TEST_RUN"
}

validate_compose() {
  if ! command -v docker-compose >/dev/null 2>&1; then
    if ! infra_is_root; then
      say "warning: docker-compose is not installed; skipping the docker-compose.yml check (sudo apt-get install docker-compose)"
      return 0
    fi
    say "installing Debian's docker-compose (to check docker-compose.yml offline)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  fi
  say "checking docker-compose.yml (docker-compose config -q)"
  docker-compose -f docker-compose.yml config -q
}

run_e2e() {
  local dir="$ROOT/deploy/local/e2e" status=0
  [[ -d "$dir" ]] || return 0
  if [[ -z "$(find "$dir" -name 'test_*.py' -o -name '*_test.py' | head -n1)" ]]; then
    return 0
  fi
  python3 -c 'import pytest' 2>/dev/null || infra_pip_install pytest
  say "running end-to-end tests (pytest deploy/local/e2e)"
  export ORDERFLOW_REPO_ROOT="$ROOT" ORDERFLOW_BIN_DIR="$ROOT/target/debug"
  python3 -m pytest -q -p no:cacheprovider "$dir" || status=$?
  # 5 is pytest's "no tests were collected": nothing failed.
  ((status == 0 || status == 5))
}

infra_ensure

say "building (cargo build --workspace --bins --tests)"
# --bins too: the e2e suite runs binaries (orderflow-token) of crates that have no integration tests.
cargo build --workspace --bins --tests

[[ -x "$ROOT/target/debug/orderflow-db-bootstrap" ]] ||
  die "target/debug/orderflow-db-bootstrap was not built (the workspace must provide that binary)"
say "bootstrapping roles, database and schemas"
"$ROOT/target/debug/orderflow-db-bootstrap"

drop_leftover_test_databases
delete_leftover_test_streams

validate_compose || FAILED+=("docker-compose.yml check")

# `--workspace` would override a `-p` given here (cargo then tests every package): leave it out then.
scope=(--workspace)
for arg in "$@"; do
  case "$arg" in
    --) break ;;
    -p | -p* | --package | --package=*) scope=() ;;
  esac
done
# The run's tag prefixes every test database and namespace name (libs/testkit), so that the run's
# leftovers can be removed when it ends.
ORDERFLOW_TEST_RUN="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export ORDERFLOW_TEST_RUN
TESTS_STARTED=1
say "running cargo test${scope[*]:+ ${scope[*]}}${*:+ $*}"
cargo test "${scope[@]}" "$@" || FAILED+=("cargo test")
# The draft parser's exact-match rate on its corpus (the test asserts a floor; this prints the rate).
if [[ $# -eq 0 ]]; then
  cargo test --workspace --lib -q -- corpus --nocapture 2>/dev/null | grep -E '^parser corpus:' || true
fi

run_e2e || FAILED+=("end-to-end tests")

# Formatting and lints, warnings as errors (full runs only).
if [[ $# -eq 0 ]]; then
  say "checking formatting (cargo fmt --check) and lints (cargo clippy --workspace --all-targets)"
  cargo fmt --all --check >/dev/null || FAILED+=("cargo fmt --check")
  cargo clippy --workspace --all-targets -q -- -D warnings || FAILED+=("cargo clippy")
fi

if ((${#FAILED[@]})); then
  say "FAILED: $(IFS=,; printf '%s' "${FAILED[*]}" | sed 's/,/, /g')"
  exit 1
fi
say "all checks succeeded"
