#!/usr/bin/env bash
# Runs every check of orderflow against real Postgres and NATS, the way CI does (.ci/run calls it):
# infrastructure (reused when running, otherwise started and stopped again at exit), a debug build
# with tests, the database bootstrap, the docker-compose.yml check, `cargo test --workspace`, and the
# python end-to-end tests in deploy/local/e2e/ when there are any.
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

say "building (cargo build --workspace --tests)"
cargo build --workspace --tests

[[ -x "$ROOT/target/debug/orderflow-db-bootstrap" ]] ||
  die "target/debug/orderflow-db-bootstrap was not built (the workspace must provide that binary)"
say "bootstrapping roles, database and schemas"
"$ROOT/target/debug/orderflow-db-bootstrap"

drop_leftover_test_databases

validate_compose || FAILED+=("docker-compose.yml check")

say "running cargo test --workspace $*"
cargo test --workspace "$@" || FAILED+=("cargo test")

run_e2e || FAILED+=("end-to-end tests")

if ((${#FAILED[@]})); then
  say "FAILED: $(IFS=,; printf '%s' "${FAILED[*]}" | sed 's/,/, /g')"
  exit 1
fi
say "all checks succeeded"
