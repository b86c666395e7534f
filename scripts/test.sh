#!/usr/bin/env bash
# What `make test` runs: the test suite against a real Pulsar standalone.
#
#   scripts/test.sh [pytest args...]     (default: the whole tests/ directory)
#
# When no Pulsar answers at the admin URL, starts a fresh one for this run only, in its own run
# dir (.run/pulsar-test) and with test overrides: managedLedgerMaxEntriesPerLedger=200 makes
# ledgers roll over often, so offsets that span ledgers are exercised. That Pulsar is stopped on
# exit (also on Ctrl-C); one that was already answering is reused and left running (then the
# test overrides are not in effect). Exits with pytest's exit code.
#
# Environment: TEST_PULSAR_CONF replaces the test overrides; everything scripts/pulsar.sh
# reads (KOP_CACHE, KOP_PULSAR_ADMIN_URL, PULSAR_HEAP) is passed through.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

log() { printf '[test.sh] %s\n' "$*" >&2; }

[ -x .venv/bin/pytest ] || { log ".venv/bin/pytest missing: run 'make install' first"; exit 1; }

export KOP_RUN_DIR="$here/.run/pulsar-test"
export PULSAR_EXTRA_CONF="${TEST_PULSAR_CONF:-managedLedgerMaxEntriesPerLedger=200}"
export KOP_PULSAR_FRESH=1

started_pulsar=0
cleanup() {
  local rc=$?
  trap '' INT TERM
  if [ "$started_pulsar" = 1 ]; then
    scripts/pulsar.sh stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if scripts/pulsar.sh status; then
  log "a Pulsar already answers at ${KOP_PULSAR_ADMIN_URL:-http://127.0.0.1:8080}: reusing it (test overrides not applied, it stays running)"
  scripts/pulsar.sh wait
else
  log "starting a test Pulsar (run dir $KOP_RUN_DIR, extra conf: $(echo $PULSAR_EXTRA_CONF))"
  started_pulsar=1
  t0=$SECONDS
  scripts/pulsar.sh start
  log "Pulsar started in $((SECONDS - t0)) s"
fi

[ $# -gt 0 ] || set -- tests
rc=0
.venv/bin/pytest -ra "$@" || rc=$?
if [ "$rc" = 5 ]; then log "pytest collected no tests (exit 5)"; fi
exit "$rc"
