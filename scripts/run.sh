#!/usr/bin/env bash
# What `make run` runs: the gateway in the foreground, with a Pulsar standalone behind it
# (`kop standalone`; with KOP_SECURE=1 this script manages the secured Pulsar itself).
#
#   scripts/run.sh [kop serve args...]     e.g. scripts/run.sh --config kop.toml
#
# 1. makes sure .venv is installed (`make install`: fast when nothing changed);
# 2. starts a Pulsar standalone with scripts/pulsar.sh (run dir .run/pulsar) unless one already
#    answers at the admin URL, and remembers whether it started it;
# 3. runs `.venv/bin/kop serve "$@"` (Kafka on 127.0.0.1:9092 by default).
# Ctrl-C or SIGTERM stops kop (SIGTERM, then SIGKILL after RUN_STOP_TIMEOUT s or on a second
# Ctrl-C), then the Pulsar this script started, and only that one. Exits with kop's exit code.
#
# KOP_SECURE=1 (`make run-secure`): the Pulsar is scripts/pulsar-secure.sh's (token authentication and
# authorization on, tenants acme and globex, tokens in .run/tokens), scripts/tls.sh makes a CA and
# certificates in .run/tls, and kop serves PLAINTEXT on 127.0.0.1:9092 (kop's own superuser token,
# namespace public/default), SASL_PLAINTEXT on 127.0.0.1:9093 and SASL_SSL on 127.0.0.1:9094.
#
# Environment: PULSAR_AUTOSTART=0 never starts Pulsar (for a remote one: pass --pulsar-url and
# --admin-url to kop); everything scripts/pulsar.sh reads (KOP_CACHE, KOP_PULSAR_ADMIN_URL,
# PULSAR_HEAP, PULSAR_EXTRA_CONF) is passed through.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

log() { printf '[run.sh] %s\n' "$*" >&2; }

make --no-print-directory -s install

# The plain case is `kop standalone`: it starts the Pulsar (unless one answers), serves, and stops
# that Pulsar on Ctrl-C. The secure set-up below needs its own Pulsar, certificates and variables.
if [ "${KOP_SECURE:-0}" != 1 ]; then
  if [ "${PULSAR_AUTOSTART:-1}" = 0 ]; then exec .venv/bin/kop serve "$@"; fi
  exec .venv/bin/kop standalone "$@"
fi

started_pulsar=0
kop_pid=
watchdog_pid=
signals=0

stop_kop() {
  signals=$((signals + 1))
  [ -n "$kop_pid" ] || exit 130
  if [ "$signals" -ge 2 ]; then
    log "killing kop (pid $kop_pid)"; kill -KILL "$kop_pid" 2>/dev/null || true
  else
    log "stopping kop (pid $kop_pid)"; kill -TERM "$kop_pid" 2>/dev/null || true
    # Escalate if kop does not exit in time.
    ( for _ in $(seq "${RUN_STOP_TIMEOUT:-20}"); do sleep 1; kill -0 "$kop_pid" 2>/dev/null || exit 0; done
      log "kop still running after ${RUN_STOP_TIMEOUT:-20} s: killing it"; kill -KILL "$kop_pid" 2>/dev/null || true ) &
    watchdog_pid=$!
  fi
}

cleanup() {
  local rc=$?
  trap '' INT TERM   # a further Ctrl-C must not interrupt stopping Pulsar
  if [ -n "$watchdog_pid" ]; then kill "$watchdog_pid" 2>/dev/null || true; fi
  if [ -n "$kop_pid" ] && kill -0 "$kop_pid" 2>/dev/null; then kill -KILL "$kop_pid" 2>/dev/null || true; fi
  if [ "$started_pulsar" = 1 ]; then $pulsar stop || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap stop_kop INT TERM

pulsar=scripts/pulsar.sh
if [ "${KOP_SECURE:-0}" = 1 ]; then
  pulsar=scripts/pulsar-secure.sh
  scripts/tls.sh "$here/.run/tls"
  export KOP_PULSAR_ADMIN_URL=http://127.0.0.1:${KOP_SECURE_WEB_PORT:-8090}
fi

if [ "${PULSAR_AUTOSTART:-1}" = 0 ]; then
  log "PULSAR_AUTOSTART=0: not starting Pulsar"
elif $pulsar status; then
  log "a Pulsar already answers at ${KOP_PULSAR_ADMIN_URL:-http://127.0.0.1:8080}: using it (it stays running on exit)"
  $pulsar wait
else
  started_pulsar=1
  $pulsar start
fi

if [ "${KOP_SECURE:-0}" = 1 ]; then
  while IFS= read -r line; do export "${line?}"; done < <(scripts/pulsar-secure.sh env)
  export KOP_SERVER_LISTENERS="SASL_PLAINTEXT://127.0.0.1:9093,SASL_SSL://127.0.0.1:9094"
  export KOP_TLS_CERT_FILE="$here/.run/tls/server.pem" KOP_TLS_KEY_FILE="$here/.run/tls/server.key"
  export KOP_TLS_CA_FILE="$here/.run/tls/ca.pem" KOP_TLS_CLIENT_AUTH=requested
  log "SASL users: acme, globex (password token:\$(cat .run/tokens/<user>.jwt)); TLS CA .run/tls/ca.pem"
fi

# In the background, so that this shell can forward INT/TERM to it and then stop Pulsar.
.venv/bin/kop serve "$@" &
kop_pid=$!
rc=0
while :; do
  rc=0; wait "$kop_pid" || rc=$?
  # wait returns early (>128) when a trapped signal arrives; kop may still run (or be a zombie).
  if [ "$rc" -gt 128 ] && kill -0 "$kop_pid" 2>/dev/null; then continue; fi
  break
done
kop_pid=
log "kop exited with code $rc"
exit "$rc"
