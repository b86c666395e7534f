#!/usr/bin/env bash
# A native Apache Kafka 4.1.2 broker (KRaft, one combined broker+controller node), run from the
# jars scripts/kafka-tools.sh fetches from Maven Central: the reference `make bench` compares kop with.
#
#   scripts/kafka-broker.sh start    format the log dir (first time) and start it in the background
#   scripts/kafka-broker.sh wait     wait until it answers on its port
#   scripts/kafka-broker.sh stop     stop the broker this script started
#   scripts/kafka-broker.sh status   exit 0 when the broker's port answers
#
# Environment:
#   KOP_KAFKA_RUN_DIR   data, config, log and pid (default <repo>/.run/kafka)
#   KOP_KAFKA_PORT      client port on 127.0.0.1 (default 19092; the controller uses port + 1)
#   KAFKA_BROKER_HEAP   broker heap (default 1g)
#   KAFKA_BROKER_EXTRA_CONF  more server.properties lines, whitespace-separated and appended (a
#                       later key wins), e.g. "num.partitions=4" (`make conformance`)
#
# Kafka's defaults are kept where they matter for a comparison: acks=all with one replica is
# acknowledged once the batch is in the page cache (Kafka does not fsync per write by default,
# a BookKeeper journal does); the offsets and transaction topics get replication factor 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run_dir=${KOP_KAFKA_RUN_DIR:-$here/.run/kafka}
port=${KOP_KAFKA_PORT:-19092}
controller_port=$((port + 1))
mkdir -p "$run_dir" && run_dir=$(cd "$run_dir" && pwd)
pid_file="$run_dir/kafka.pid"

log() { printf '[kafka-broker.sh] %s\n' "$*" >&2; }

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

write_config() {
  cat >"$run_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$run_dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  if [ -n "${KAFKA_BROKER_EXTRA_CONF:-}" ]; then
    printf '%s\n' $KAFKA_BROKER_EXTRA_CONF >>"$run_dir/server.properties"
  fi
}

start() {
  if answering; then log "a broker already answers on 127.0.0.1:$port"; return 0; fi
  "$here/scripts/kafka-tools.sh" fetch
  write_config
  if [ ! -f "$run_dir/data/meta.properties" ]; then
    # A cluster id is 16 random bytes, URL-safe base64 without padding (22 characters).
    cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    "$here/scripts/kafka-tools.sh" run kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$run_dir/server.properties" >"$run_dir/format.log" 2>&1 \
      || { log "formatting failed:"; cat "$run_dir/format.log" >&2; exit 1; }
  fi
  log "starting Kafka 4.1.2 (KRaft) on 127.0.0.1:$port, logs in $run_dir/kafka.log"
  KAFKA_TOOLS_HEAP=${KAFKA_BROKER_HEAP:-1g} KAFKA_TOOLS_LOG_LEVEL=${KAFKA_TOOLS_LOG_LEVEL:-WARN} \
    setsid "$here/scripts/kafka-tools.sh" run kafka.Kafka "$run_dir/server.properties" \
    >"$run_dir/kafka.log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  wait_up
}

wait_up() {
  for _ in $(seq 1 120); do
    if answering; then log "up"; return 0; fi
    if [ -f "$pid_file" ] && ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      log "the broker exited; last lines of $run_dir/kafka.log:"; tail -20 "$run_dir/kafka.log" >&2; exit 1
    fi
    sleep 0.5
  done
  log "no answer on 127.0.0.1:$port after 60 s"; exit 1
}

stop() {
  [ -f "$pid_file" ] || { log "no pid file in $run_dir: nothing started here"; return 0; }
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "still running after 30 s: SIGKILL"; kill -KILL "$pid"; fi
  fi
  rm -f "$pid_file"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  wait) wait_up ;;
  stop) stop ;;
  status) answering ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
