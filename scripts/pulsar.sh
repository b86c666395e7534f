#!/usr/bin/env bash
# Fetch, start, health-check and stop a real Apache Pulsar standalone for kop.
#
#   scripts/pulsar.sh fetch    download the official binary distribution from Maven Central (cached)
#   scripts/pulsar.sh start    start it in the background (no-op if a Pulsar already answers)
#   scripts/pulsar.sh run      start it in the foreground (SIGTERM/Ctrl-C stops it)
#   scripts/pulsar.sh wait     wait until the broker is healthy
#   scripts/pulsar.sh stop     stop the one this script started
#   scripts/pulsar.sh status   exit 0 when a Pulsar answers at the admin URL
#   scripts/pulsar.sh home     print the unpacked distribution's directory
#
# Environment:
#   PULSAR_VERSION       4.0.8: the newest 4.0.x LTS whose tarball Maven Central serves (4.0.9..4.0.13 are absent)
#   KOP_CACHE            where the tarball and the unpacked distribution live (default ~/.cache/kop)
#   KOP_RUN_DIR          data, logs and pid of the running standalone (default <repo>/.run/pulsar)
#   KOP_PULSAR_ADMIN_URL admin URL probed for health (default http://127.0.0.1:8080)
#   PULSAR_EXTRA_CONF    extra "key=value" lines appended after config/pulsar/standalone-overrides.conf
#   PULSAR_HEAP          heap size (default 768m)
#   KOP_PULSAR_ADMIN_TOKEN_FILE  a JWT sent with the health probes (a Pulsar with authentication on)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${PULSAR_VERSION:-4.0.8}
cache=${KOP_CACHE:-$HOME/.cache/kop}
run_dir=${KOP_RUN_DIR:-$here/.run/pulsar}
mkdir -p "$run_dir" && run_dir=$(cd "$run_dir" && pwd)  # absolute: `start` runs Pulsar from inside it
admin_url=${KOP_PULSAR_ADMIN_URL:-http://127.0.0.1:8080}
heap=${PULSAR_HEAP:-768m}
home="$cache/apache-pulsar-$version"
tarball="$cache/dist/pulsar-server-distribution-$version-bin.tar.gz"

log() { printf '[pulsar.sh] %s\n' "$*" >&2; }

auth=()
if [ -n "${KOP_PULSAR_ADMIN_TOKEN_FILE:-}" ] && [ -s "$KOP_PULSAR_ADMIN_TOKEN_FILE" ]; then
  auth=(-H "Authorization: Bearer $(cat "$KOP_PULSAR_ADMIN_TOKEN_FILE")")
fi

fetch() {
  if [ -x "$home/bin/pulsar" ]; then return 0; fi
  mkdir -p "$cache/dist"
  if [ ! -s "$tarball" ]; then
    log "downloading org.apache.pulsar:pulsar-server-distribution:$version:tar.gz:bin (~245 MB) into $cache/dist"
    # Without -B Maven prints "Progress (1): 120/245 MB" while it downloads.
    mvn -q -ntp -v >/dev/null 2>&1 || true
    (cd "$cache" && mvn org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
        -Dartifact="org.apache.pulsar:pulsar-server-distribution:$version:tar.gz:bin" \
        -DoutputDirectory="$cache/dist" -Dmdep.overWriteReleases=true) \
      | stdbuf -o0 tr '\r' '\n' | stdbuf -o0 awk '/Progress/ { if (NR % 40 == 0) print; next } /ERROR|BUILD/ { print }' >&2
    [ -s "$tarball" ] || { log "download failed (see above)"; exit 1; }
    # The copy in ~/.m2 is not needed once the tarball is in the cache.
    rm -rf "$HOME/.m2/repository/org/apache/pulsar/pulsar-server-distribution/$version"
  fi
  log "unpacking $tarball"
  tar xzf "$tarball" -C "$cache"
  [ -x "$home/bin/pulsar" ] || { log "unpacked distribution has no bin/pulsar"; exit 1; }
}

healthy() {
  curl -fsS -m 5 "${auth[@]}" "$admin_url/admin/v2/brokers/health" 2>/dev/null | grep -q ok
}

reachable() {
  curl -fsS -m 3 -o /dev/null "${auth[@]}" "$admin_url/admin/v2/clusters" 2>/dev/null
}

write_conf() {
  mkdir -p "$run_dir/conf" "$run_dir/logs" "$run_dir/tmp"
  local conf="$run_dir/conf/standalone.conf"
  cp "$home/conf/standalone.conf" "$conf"
  { echo; echo "### ---- config/pulsar/standalone-overrides.conf ----"; cat "$here/config/pulsar/standalone-overrides.conf"
    echo "narExtractionDirectory=$run_dir/tmp/nar"
    if [ -n "${PULSAR_EXTRA_CONF:-}" ]; then echo "### ---- PULSAR_EXTRA_CONF ----"; printf '%s\n' "$PULSAR_EXTRA_CONF"; fi
  } >> "$conf"
  echo "$conf"
}

launch() {  # $1 = fg|bg
  fetch
  local conf; conf=$(write_conf)
  export PULSAR_STANDALONE_CONF="$conf"
  export PULSAR_MEM="-Xms$heap -Xmx$heap -XX:MaxDirectMemorySize=512m"
  export PULSAR_GC="-XX:+UseG1GC"
  export PULSAR_LOG_DIR="$run_dir/logs"
  export PULSAR_EXTRA_OPTS="-Djava.io.tmpdir=$run_dir/tmp -Dpulsar.allocator.exit_on_oom=true -Dio.netty.recycler.maxCapacityPerThread=4096"
  local args=(standalone -nfw -nss -a 127.0.0.1
              --metadata-dir "$run_dir/data/metadata" --bookkeeper-dir "$run_dir/data/bookkeeper")
  if [ "$1" = fg ]; then
    exec "$home/bin/pulsar" "${args[@]}"
  fi
  log "starting Pulsar $version standalone (logs: $run_dir/logs/standalone.out)"
  # setsid keeps terminal signals away from Pulsar (this script stops it in order); it may fork,
  # so the pid is written from inside the new session, by the shell that then execs the JVM.
  # exec: no shell of this script stays behind holding the caller's stdout open.
  (cd "$run_dir" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$run_dir/pulsar.pid" \
     "$home/bin/pulsar" "${args[@]}" >"$run_dir/logs/standalone.out" 2>&1 </dev/null) &
  for _ in $(seq 50); do [ -s "$run_dir/pulsar.pid" ] && break; sleep 0.1; done
}

wait_ready() {
  local timeout=${1:-240} start=$SECONDS
  while (( SECONDS - start < timeout )); do
    if healthy; then log "Pulsar healthy after $((SECONDS - start)) s"; return 0; fi
    if [ -f "$run_dir/pulsar.pid" ] && ! kill -0 "$(cat "$run_dir/pulsar.pid")" 2>/dev/null; then
      log "Pulsar exited during start; last log lines:"; tail -n 40 "$run_dir/logs/standalone.out" >&2 || true
      return 1
    fi
    sleep 1
  done
  log "Pulsar not healthy after ${timeout} s"; tail -n 40 "$run_dir/logs/standalone.out" >&2 || true
  return 1
}

stop() {
  local pid_file="$run_dir/pulsar.pid"
  local pid; pid=$(cat "$pid_file" 2>/dev/null || true)
  # The JVM of this run dir, however it was started (its command line names our data dir).
  local candidates pids="" p
  candidates=$(echo "$pid"; pgrep -f -- "--metadata-dir $run_dir/data/metadata" || true)
  for p in $(echo "$candidates" | sort -u); do
    if kill -0 "$p" 2>/dev/null; then pids="$pids $p"; fi
  done
  if [ -n "$pids" ]; then
    log "stopping Pulsar (pid $(echo $pids))"
    for p in $pids; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 60); do
      alive=0; for p in $pids; do if kill -0 "$p" 2>/dev/null; then alive=1; fi; done
      [ "$alive" = 0 ] && break; sleep 1
    done
    for p in $pids; do
      if kill -0 "$p" 2>/dev/null; then log "Pulsar $p ignored SIGTERM for 60 s: SIGKILL"; kill -KILL "$p"; fi
    done
  else
    log "no Pulsar started from $run_dir is running"
  fi
  rm -f "$pid_file"
}

case "${1:-}" in
  fetch) fetch ;;
  home) echo "$home" ;;
  status) reachable ;;
  wait) wait_ready "${2:-240}" ;;
  start)
    if reachable; then log "a Pulsar already answers at $admin_url; using it"; wait_ready; exit 0; fi
    if [ "${KOP_PULSAR_FRESH:-0}" = 1 ]; then rm -rf "$run_dir/data"; fi
    launch bg; wait_ready ;;
  run) launch fg ;;
  stop) stop ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
