#!/usr/bin/env bash
# StreamNative's KoP (Kafka-on-Pulsar, the Java protocol handler NAR) on a Pulsar standalone, as a
# reference point for benchmarks: Kafka on 127.0.0.1:9192, Pulsar web 8081, broker 6651.
#
#   scripts/kop-nar.sh fetch    get the KoP NAR and the Pulsar it needs into $KOP_CACHE (cached)
#   scripts/kop-nar.sh start    start the standalone with KoP in the background, then wait for it
#   scripts/kop-nar.sh wait     wait until the broker is healthy and Kafka answers on 9192
#   scripts/kop-nar.sh stop     stop the one this script started
#   scripts/kop-nar.sh status   exit 0 when a Pulsar answers at the admin URL
#   scripts/kop-nar.sh home     print the Pulsar directory the NAR runs on
#   scripts/kop-nar.sh tools <MainClass> [args]   run a class of Kafka 3.4.1's Java tools (a client
#       KoP 3.1.1.1 accepts; scripts/kafka-tools.sh's 4.1.2 cannot connect), fetched into $KOP_CACHE, e.g.
#       scripts/kop-nar.sh tools org.apache.kafka.tools.ProducerPerformance --topic t --num-records 20000 \
#         --record-size 1024 --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9192 acks=all
#
# Why it is built here: Maven Central, as this machine reaches it, serves no version of
# io.streamnative.pulsar.handlers:pulsar-protocol-handler-kafka (no maven-metadata.xml, and the
# .pom/.jar of 4.0.6.5, 4.1.0.7, 4.1.0.10, 4.0.6.9, 3.1.1.1, 3.1.1.2, 3.0.0.1, 2.10.1.7, 2.9.1.5 all
# answer 404). `fetch` still asks Central first. Otherwise it builds the last open-source release,
# v3.1.1.1, from a local clone of streamnative/kop (KOP_NAR_SRC_GIT). That NAR does not load on
# Apache Pulsar 4.0.8 (NoClassDefFoundError: org/apache/commons/configuration/Configuration), and
# Central serves no Apache Pulsar 3.1.x distribution, so `fetch` assembles the Pulsar KoP 3.1.1.1 is
# built against, io.streamnative:pulsar-broker:3.1.1.1, from Central into a lib/ directory and
# borrows bin/ and conf/ from the Apache 4.0.8 distribution (scripts/pulsar.sh fetch).
# See benchmarks/kop-nar-findings.md.
#
# Client notes (KoP 3.1.1.1 speaks the Kafka 3.4 protocol): Kafka Java clients 3.9.1 and 4.1.2 (the
# tools of scripts/kafka-tools.sh) and kafka-python 3.x open with ApiVersions v4, which KoP answers by
# closing the connection, so they never connect. librdkafka (confluent-kafka), kafka-python with
# api_version=(2, 8, 0), and Kafka 3.4.1's Java tools work.
#
# Environment:
#   KOP_NAR_VERSION       KoP version (default 3.1.1.1, the only one that loads here)
#   KOP_NAR_SRC_GIT       a git repository of streamnative/kop to build from when Central has no NAR
#                         (default /work/.mirror/streamnative+kop/repo)
#   KOP_NAR_PULSAR_HOME   run the NAR on this Pulsar directory instead (e.g. the Apache 4.0.8 one, to
#                         reproduce the load failure); default: the assembled StreamNative 3.1.1.1
#   KOP_CACHE             cache directory (default ~/.cache/kop)
#   KOP_RUN_DIR           data, logs, pid, protocols dir of the standalone (default <repo>/.run/pulsar-kop)
#   KOP_NAR_WEB_PORT      Pulsar web/admin port (default 8081)
#   KOP_NAR_BROKER_PORT   Pulsar binary protocol port (default 6651)
#   KOP_NAR_KAFKA_PORT    Kafka listener port (default 9192)
#   KOP_NAR_ENTRY_FORMAT  KoP entryFormat: pulsar (KoP's default) or kafka (default pulsar)
#   KOP_NAR_TXN           1 (default): kafkaTransactionCoordinatorEnabled and brokerDeduplicationEnabled,
#                         which KoP needs for idempotent producers (the default of the Java client
#                         since 3.0 and of kafka-python 3.x; without it InitProducerId fails); 0: both off
#   KOP_NAR_FRESH         1: wipe the run dir's data before `start`
#   PULSAR_EXTRA_CONF     extra "key=value" lines appended last to the standalone config
#   PULSAR_HEAP           heap size (default 1g); KOP_NAR_DIRECT_MEM direct memory (default 512m)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${KOP_NAR_VERSION:-3.1.1.1}
cache=${KOP_CACHE:-$HOME/.cache/kop}
run_dir=${KOP_RUN_DIR:-$here/.run/pulsar-kop}
mkdir -p "$run_dir" && run_dir=$(cd "$run_dir" && pwd)
web_port=${KOP_NAR_WEB_PORT:-8081}
broker_port=${KOP_NAR_BROKER_PORT:-6651}
kafka_port=${KOP_NAR_KAFKA_PORT:-9192}
admin_url="http://127.0.0.1:$web_port"
heap=${PULSAR_HEAP:-1g}
direct_mem=${KOP_NAR_DIRECT_MEM:-512m}
src_git=${KOP_NAR_SRC_GIT:-/work/.mirror/streamnative+kop/repo}
dep_plugin=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
nar="$cache/dist/pulsar-protocol-handler-kafka-$version.nar"
sn_home="$cache/sn-pulsar-$version"
pulsar_home=${KOP_NAR_PULSAR_HOME:-$sn_home}

log() { printf '[kop-nar.sh] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- the NAR ----------------------------------------------------------------------------------

nar_from_central() {
  # The deployed main jar of pulsar-protocol-handler-kafka is the NAR (no classifier).
  local out="$cache/dist/central-$version"
  mkdir -p "$out"
  log "asking Maven Central for io.streamnative.pulsar.handlers:pulsar-protocol-handler-kafka:$version"
  # -U: look again even where ~/.m2 remembers an earlier miss. The build below only packages, so
  # ~/.m2 never holds a locally built copy; _remote.repositories must still name central.
  local m2="$HOME/.m2/repository/io/streamnative/pulsar/handlers/pulsar-protocol-handler-kafka/$version"
  if (cd "$cache" && mvn -B -ntp -U "$dep_plugin:copy" \
        -Dartifact="io.streamnative.pulsar.handlers:pulsar-protocol-handler-kafka:$version:jar" \
        -DoutputDirectory="$out" -Dtransitive=false) >"$cache/dist/central-$version.log" 2>&1 \
     && [ -s "$out/pulsar-protocol-handler-kafka-$version.jar" ] \
     && grep -q "pulsar-protocol-handler-kafka-$version.jar>central" "$m2/_remote.repositories" 2>/dev/null; then
    mv "$out/pulsar-protocol-handler-kafka-$version.jar" "$nar"
    rm -rf "$out"
    return 0
  fi
  rm -rf "$out"
  log "Central does not serve it: $(grep -m1 -o 'Could not find artifact.*' "$cache/dist/central-$version.log" | sed 's/ in central .*//' || echo 'see '"$cache/dist/central-$version.log")"
  return 1
}

nar_from_source() {
  [ -d "$src_git" ] || die "no NAR on Central and no streamnative/kop git repository at $src_git (set KOP_NAR_SRC_GIT)"
  git -C "$src_git" rev-parse -q --verify "refs/tags/v$version" >/dev/null \
    || die "$src_git has no tag v$version (KoP's last open-source release is v3.1.1.1)"
  local src="$cache/src/kop-$version" blog="$cache/src/build-$version.log"
  mkdir -p "$cache/src"
  if [ ! -d "$src/.git" ]; then
    rm -rf "$src"
    log "cloning streamnative/kop v$version from $src_git into $src"
    git clone -q -c advice.detachedHead=false --depth 1 --branch "v$version" "file://$src_git" "$src"
  fi
  # org.everit.json.schema 1.14.0 (via apicurio's JSON compatibility checker) is published on JitPack,
  # not on Central; its Central successor com.github.erosb:everit-json-schema has the same packages.
  if ! grep -q 'com.github.erosb' "$src/schema-registry/pom.xml"; then
    python3 - "$src/schema-registry/pom.xml" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
old = """      <artifactId>apicurio-registry-schema-compatibility-json</artifactId>
      <version>${apicurio.version}</version>
    </dependency>"""
new = """      <artifactId>apicurio-registry-schema-compatibility-json</artifactId>
      <version>${apicurio.version}</version>
      <exclusions>
        <exclusion>
          <groupId>com.github.everit-org.json-schema</groupId>
          <artifactId>org.everit.json.schema</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>com.github.erosb</groupId>
      <artifactId>everit-json-schema</artifactId>
      <version>1.14.1</version>
    </dependency>"""
if old not in s:
    sys.exit("schema-registry/pom.xml: apicurio-registry-schema-compatibility-json block not found")
open(p, "w").write(s.replace(old, new))
EOF
  fi
  log "building KoP $version (kafka-impl and the modules it needs; ~5 min, more on a cold ~/.m2; log: $blog)"
  if ! (cd "$src" && mvn -B -ntp package -pl kafka-impl -am -DskipTests -Dmaven.test.skip=true \
          -Dcheckstyle.skip=true -Dspotbugs.skip=true -Dlicense.skip=true \
          -Dmaven.javadoc.skip=true -Dmaven.source.skip=true) >"$blog" 2>&1; then
    grep -E '^\[ERROR\]' "$blog" | head -5 >&2 || true
    die "KoP build failed (see $blog)"
  fi
  local built="$src/kafka-impl/target/pulsar-protocol-handler-kafka-$version.nar"
  [ -s "$built" ] || die "the build left no $built"
  cp "$built" "$nar"
}

fetch_nar() {
  [ -s "$nar" ] && return 0
  mkdir -p "$cache/dist"
  nar_from_central || nar_from_source
  log "NAR: $nar ($(du -h "$nar" | cut -f1))"
}

# ---- the Pulsar it runs on --------------------------------------------------------------------

fetch_sn_pulsar() {
  [ -f "$sn_home/lib/.complete" ] && [ -x "$sn_home/bin/pulsar" ] && return 0
  # bin/ and conf/ come from the Apache distribution that scripts/pulsar.sh fetches.
  local apache_home; apache_home=$("$here/scripts/pulsar.sh" home)
  "$here/scripts/pulsar.sh" fetch
  mkdir -p "$sn_home"
  cat >"$sn_home/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kop-nar.sh: StreamNative Pulsar $version (what KoP $version is built against)
     and its runtime dependencies. The grpc exclusions and the protobuf BOM are the ones KoP's own pom
     applies to pulsar-broker; without them Maven spends many minutes on grpc version ranges. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kop.local</groupId>
  <artifactId>sn-pulsar-runtime</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>com.google.protobuf</groupId><artifactId>protobuf-bom</artifactId><version>3.19.6</version>
        <type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>io.streamnative</groupId><artifactId>pulsar-broker</artifactId><version>$version</version>
      <exclusions>
        <exclusion><groupId>io.grpc</groupId><artifactId>grpc-all</artifactId></exclusion>
        <exclusion><groupId>io.grpc</groupId><artifactId>grpc-core</artifactId></exclusion>
        <exclusion><groupId>io.grpc</groupId><artifactId>grpc-testing</artifactId></exclusion>
        <exclusion><groupId>io.grpc</groupId><artifactId>grpc-auth</artifactId></exclusion>
      </exclusions>
    </dependency>
    <!-- conf/log4j2.yaml of the Apache distribution uses the Prometheus appender. -->
    <dependency><groupId>io.prometheus</groupId><artifactId>simpleclient_log4j2</artifactId><version>0.16.0</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>1.7.32</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.20.0</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.20.0</version></dependency>
  </dependencies>
</project>
EOF
  log "resolving io.streamnative:pulsar-broker:$version and its runtime dependencies into $sn_home/lib"
  rm -rf "$sn_home/lib"
  if ! (cd "$sn_home" && mvn -B -ntp "$dep_plugin:copy-dependencies" -DincludeScope=runtime \
          -DoutputDirectory=lib -Dmdep.prependGroupId=true) >"$sn_home/copy.log" 2>&1; then
    grep -E '^\[ERROR\]' "$sn_home/copy.log" | head -5 >&2 || true
    die "resolving StreamNative Pulsar $version failed (see $sn_home/copy.log)"
  fi
  ls "$sn_home/lib/io.streamnative.pulsar-broker-$version.jar" >/dev/null
  rm -rf "$sn_home/bin" "$sn_home/conf"
  cp -r "$apache_home/bin" "$apache_home/conf" "$sn_home/"
  touch "$sn_home/lib/.complete"
  log "StreamNative Pulsar $version runtime: $sn_home ($(ls "$sn_home/lib" | wc -l) jars)"
}

fetch() {
  fetch_nar
  if [ "$pulsar_home" = "$sn_home" ]; then fetch_sn_pulsar; fi
  [ -x "$pulsar_home/bin/pulsar" ] || die "no bin/pulsar in $pulsar_home"
}

# ---- Kafka 3.4.1's Java tools -------------------------------------------------------------------

tools_dir="$cache/kafka-tools-3.4.1"

fetch_tools() {
  [ -f "$tools_dir/libs/.complete" ] && return 0
  mkdir -p "$tools_dir"
  cat >"$tools_dir/pom.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kop-nar.sh: Kafka 3.4.1's tools (the kafka-clients KoP 3.1.1.1 is built with;
     its ApiVersions request is v3, which KoP 3.1.1.1 parses; 3.9.1 and 4.1.2 send v4). -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kop.local</groupId><artifactId>kafka-tools-classpath</artifactId><version>3.4.1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>3.4.1</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  printf '%s\n' 'log4j.rootLogger=WARN, stderr' 'log4j.appender.stderr=org.apache.log4j.ConsoleAppender' \
    'log4j.appender.stderr.Target=System.err' 'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout' \
    'log4j.appender.stderr.layout.ConversionPattern=[%d{HH:mm:ss,SSS}] %-5p %m (%c{1})%n' \
    >"$tools_dir/log4j.properties"
  log "resolving org.apache.kafka:kafka-tools:3.4.1 into $tools_dir/libs"
  rm -rf "$tools_dir/libs"
  (cd "$tools_dir" && mvn -B -ntp "$dep_plugin:copy-dependencies" -DincludeScope=runtime -DoutputDirectory=libs) \
    >"$tools_dir/copy.log" 2>&1 || die "resolving Kafka 3.4.1's tools failed (see $tools_dir/copy.log)"
  touch "$tools_dir/libs/.complete"
}

run_tools() {
  [ $# -ge 1 ] || die "usage: scripts/kop-nar.sh tools <MainClass> [args]"
  fetch_tools
  local java=java
  if [ -n "${JAVA_HOME:-}" ]; then java="$JAVA_HOME/bin/java"; fi
  exec "$java" -Xmx512m -Dlog4j.configuration="file:$tools_dir/log4j.properties" -cp "$tools_dir/libs/*" "$@"
}

# ---- run ----------------------------------------------------------------------------------------

healthy() { curl -fsS -m 5 "$admin_url/admin/v2/brokers/health" 2>/dev/null | grep -q ok; }
reachable() { curl -fsS -m 3 -o /dev/null "$admin_url/admin/v2/clusters" 2>/dev/null; }
kafka_open() { (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null; }

write_conf() {
  mkdir -p "$run_dir/conf" "$run_dir/logs" "$run_dir/tmp" "$run_dir/protocols"
  rm -f "$run_dir/protocols/"*.nar
  cp "$nar" "$run_dir/protocols/"
  local conf="$run_dir/conf/standalone.conf" txn=${KOP_NAR_TXN:-1}
  cp "$pulsar_home/conf/standalone.conf" "$conf"
  { echo; echo "### ---- config/pulsar/standalone-overrides.conf ----"; cat "$here/config/pulsar/standalone-overrides.conf"
    echo "### ---- scripts/kop-nar.sh ----"
    echo "narExtractionDirectory=$run_dir/tmp/nar"
    echo "webServicePort=$web_port"
    echo "brokerServicePort=$broker_port"
    echo "messagingProtocols=kafka"
    echo "protocolHandlerDirectory=$run_dir/protocols"
    echo "kafkaListeners=PLAINTEXT://127.0.0.1:$kafka_port"
    echo "kafkaAdvertisedListeners=PLAINTEXT://127.0.0.1:$kafka_port"
    echo "brokerEntryMetadataInterceptors=org.apache.pulsar.common.intercept.AppendIndexMetadataInterceptor"
    echo "kafkaTenant=public"
    echo "kafkaNamespace=default"
    echo "kafkaMetadataTenant=public"
    echo "kafkaMetadataNamespace=__kafka"
    echo "kopSchemaRegistryEnable=false"
    echo "entryFormat=${KOP_NAR_ENTRY_FORMAT:-pulsar}"
    if [ "$txn" = 1 ]; then echo "kafkaTransactionCoordinatorEnabled=true"; echo "brokerDeduplicationEnabled=true"
    else echo "kafkaTransactionCoordinatorEnabled=false"; fi
    if [ -n "${PULSAR_EXTRA_CONF:-}" ]; then echo "### ---- PULSAR_EXTRA_CONF ----"; printf '%s\n' "$PULSAR_EXTRA_CONF"; fi
  } >>"$conf"
  echo "$conf"
}

launch() {
  fetch
  local conf; conf=$(write_conf)
  export PULSAR_STANDALONE_CONF="$conf"
  export PULSAR_MEM="-Xms$heap -Xmx$heap -XX:MaxDirectMemorySize=$direct_mem"
  export PULSAR_GC="-XX:+UseG1GC"
  export PULSAR_LOG_DIR="$run_dir/logs"
  # sun.net: Pulsar 3.1's client (which KoP uses for lookups) reads the JVM's DNS cache policy.
  export PULSAR_EXTRA_OPTS="-Djava.io.tmpdir=$run_dir/tmp -Dpulsar.allocator.exit_on_oom=true --add-opens java.base/sun.net=ALL-UNNAMED"
  # The only other listener is the bookie, which this standalone puts on a free ephemeral port
  # (seen: it ignores --bookkeeper-port); the metadata store is RocksDB in the run dir, no ZooKeeper.
  local args=(standalone -nfw -nss -a 127.0.0.1
              --metadata-dir "$run_dir/data/metadata" --bookkeeper-dir "$run_dir/data/bookkeeper")
  log "starting Pulsar ($pulsar_home) with KoP $version: kafka 127.0.0.1:$kafka_port, web $web_port, broker $broker_port (logs: $run_dir/logs/standalone.out)"
  : >"$run_dir/logs/standalone.out"
  date +%s >"$run_dir/started-at"
  (cd "$run_dir" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$run_dir/pulsar.pid" \
     "$pulsar_home/bin/pulsar" "${args[@]}" >"$run_dir/logs/standalone.out" 2>&1 </dev/null) &
  for _ in $(seq 50); do [ -s "$run_dir/pulsar.pid" ] && break; sleep 0.1; done
}

wait_ready() {
  local timeout=${1:-240} start=$SECONDS
  while (( SECONDS - start < timeout )); do
    if healthy && kafka_open; then
      local t0; t0=$(cat "$run_dir/started-at" 2>/dev/null || echo "")
      log "Pulsar healthy and Kafka listening on 127.0.0.1:$kafka_port${t0:+, $(( $(date +%s) - t0 )) s after start}"
      return 0
    fi
    if [ -f "$run_dir/pulsar.pid" ] && ! kill -0 "$(cat "$run_dir/pulsar.pid")" 2>/dev/null; then
      log "Pulsar exited during start; the first errors:"
      grep -m 8 -E 'ERROR|Exception|Error:' "$run_dir/logs/standalone.out" | cut -c1-300 >&2 || true
      return 1
    fi
    sleep 1
  done
  log "not ready after ${timeout} s"; tail -n 40 "$run_dir/logs/standalone.out" >&2 || true
  return 1
}

stop() {
  local pid_file="$run_dir/pulsar.pid"
  local pid; pid=$(cat "$pid_file" 2>/dev/null || true)
  local candidates pids="" p
  candidates=$(echo "$pid"; pgrep -f -- "--metadata-dir $run_dir/data/metadata" || true)
  for p in $(echo "$candidates" | sort -u); do
    if kill -0 "$p" 2>/dev/null; then pids="$pids $p"; fi
  done
  if [ -n "$pids" ]; then
    log "stopping Pulsar with KoP (pid $(echo $pids))"
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
  home) echo "$pulsar_home" ;;
  status) reachable ;;
  wait) wait_ready "${2:-240}" ;;
  start)
    if reachable; then die "something already answers at $admin_url (another Pulsar?); not starting a second one"; fi
    if [ "${KOP_NAR_FRESH:-0}" = 1 ]; then rm -rf "$run_dir/data"; fi
    launch
    if ! wait_ready "${2:-240}"; then
      log "KoP $version did not come up on $pulsar_home"; stop; exit 1
    fi ;;
  stop) stop ;;
  tools) shift; run_tools "$@" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2 ;;
esac
