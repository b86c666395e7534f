"""kop's configuration: frozen dataclasses, loaded once, passed explicitly.

Precedence, lowest first: the defaults below < one TOML file < ``KOP_<SECTION>_<KEY>`` environment
variables < command-line flags. Every problem (unknown key, wrong type, bad value) is collected and
reported at once in a single :class:`ConfigError`. config/kop.example.toml documents every key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .config_checks import validate



class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ServerConfig:
    # Loopback by default: a gateway is exposed on purpose, not by accident.
    listen_host: str = "127.0.0.1"
    listen_port: int = 9092
    # What Metadata tells clients to connect to; an IPv4 literal, never "localhost" (librdkafka may
    # resolve that to ::1 first). Port 0 means "the listen port".
    advertised_host: str = "127.0.0.1"
    advertised_port: int = 0
    # Kafka broker id, unique in the fleet; -1 derives it from the advertised host:port.
    node_id: int = -1
    # Shown to clients in Metadata (librdkafka and Kafka's tools want a non-null cluster id).
    cluster_id: str = "kop-cluster"
    # Checked before buffering: 100 MiB like Kafka's socket.request.max.bytes.
    max_frame_size: int = 104_857_600
    # Pipelined requests one connection may have in progress; reading pauses beyond it.
    max_inflight_requests: int = 100
    # Open connections, in total and from one client address (Kafka: max.connections,
    # max.connections.per.ip); one more is closed at once, with a log line.
    max_connections: int = 10_000
    max_connections_per_address: int = 1_000
    # Bytes of requests received and not yet answered, over all connections (Kafka:
    # queued.max.request.bytes); beyond it every connection stops reading until answers catch up.
    queued_max_request_bytes: int = 268_435_456
    # A connection with nothing in flight that sends nothing this long is closed (Kafka:
    # connections.max.idle.ms, the same 10 minutes); 0 keeps idle connections forever.
    connections_max_idle_ms: int = 600_000
    # Security protocol of the listener above: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    security_protocol: str = "PLAINTEXT"
    # More listeners, Kafka's syntax: "SASL_PLAINTEXT://127.0.0.1:9093,SASL_SSL://127.0.0.1:9094"
    # (one per security protocol; the protocol is the listener's name).
    listeners: str = ""
    # Advertised addresses of those listeners when they differ: "SASL_SSL://kafka.example.com:9094".
    advertised_listeners: str = ""
    # Gateway processes (one Python process uses one core); 0: one per core. With more than one,
    # every listener's port is shared by all of them (new connections spread over the workers), and
    # worker i also listens on that port + worker_port_offset + i, which is what Metadata advertises
    # for it: each worker is a member of the fleet, with partitions and groups spread over them.
    workers: int = 0
    worker_port_offset: int = 1000


@dataclass(frozen=True)
class PulsarConfig:
    service_url: str = "pulsar://127.0.0.1:6650"
    admin_url: str = "http://127.0.0.1:8080"
    tenant: str = "public"
    namespace: str = "default"
    # Where kop keeps its own topics (producer ids now, group state later); created on start.
    system_namespace: str = "public/__kop"
    # Pulsar token for kop's own client (empty: no authentication).
    auth_token: str = ""
    operation_timeout_s: float = 30.0


@dataclass(frozen=True)
class TopicsConfig:
    # Kafka's auto.create.topics.enable, default true like Kafka: many clients' tests depend on it.
    auto_create: bool = True
    # Kafka's num.partitions default.
    default_partitions: int = 1
    # `pulsar`: each Kafka record is a Pulsar message (native Pulsar consumers can read them);
    # `kafka`: each Kafka batch is stored as one opaque Pulsar message (fastest, no interop).
    entry_format: str = "pulsar"
    # Kafka's log.retention.ms: the retention.ms of a topic that does not set its own. A topic kop
    # creates gets it as its Pulsar retention policy and message TTL, unless the namespace keeps data
    # by itself (a retention policy whose time and size are not 0): on a stock Pulsar (retention 0)
    # closed ledgers no subscription needs are deleted, so unconsumed Kafka data would be lost.
    # -1: forever.
    retention_ms: int = 604_800_000


@dataclass(frozen=True)
class OffsetsConfig:
    # "contiguous": Kafka offsets 0, 1, 2, ... per partition, from Pulsar's broker entry index (the
    # brokers need brokerEntryMetadataInterceptors=org.apache.pulsar.common.intercept.AppendIndexMetadataInterceptor
    # and exposingBrokerEntryMetadataToClientEnabled=true; kop refuses to start without them).
    # "packed": the Pulsar position packed into the offset, for a Pulsar kop cannot configure.
    mode: str = "contiguous"


@dataclass(frozen=True)
class FetchConfig:
    # Largest Fetch answer (Kafka's broker setting fetch.max.bytes, same default); a request asking
    # more gets this much. The first batch of a partition still goes whole (KIP-74).
    max_response_bytes: int = 57_671_680
    # Cached Pulsar readers per partition not used for this long are closed.
    reader_idle_s: float = 60.0
    # Upper bound on readers kept open per Pulsar client (kop's own, and each SASL principal's).
    max_readers: int = 2000
    # ... and on one partition (consumers of several groups each need one; more is a client fetching
    # the same offset over and over).
    max_readers_per_partition: int = 8
    # Pulsar entries each reader may prefetch (its receiver queue). A kafka-format entry is a whole
    # Kafka batch (up to ~1 MiB from librdkafka), so this times max_readers bounds prefetched data.
    reader_prefetch: int = 64
    # Cap on a client's max_wait_ms, so a misbehaving client cannot park a request for hours.
    max_wait_cap_ms: int = 30_000


@dataclass(frozen=True)
class GroupsConfig:
    # Kafka's group.initial.rebalance.delay.ms: members starting together land in one generation.
    initial_rebalance_delay_ms: int = 3000
    # Kafka's group.min/max.session.timeout.ms.
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    # Partitions of the compacted __offsets topic in the system namespace (fixed once created).
    offsets_partitions: int = 8
    # Kafka's offset.metadata.max.bytes.
    max_metadata_size: int = 4096
    # Committed offsets also move a durable Pulsar subscription named <prefix><group>, so Pulsar
    # shows the group's backlog (= Kafka lag) and retention keeps what it has not consumed.
    subscription_prefix: str = "kafka-group-"
    # How often pending commits are written to those subscriptions (the commit -> cursor delay).
    cursor_sync_interval_s: float = 1.0
    # An Empty group with no committed offsets is forgotten after this long (checked every 10 s), as
    # Kafka's offsets cleaner drops such groups; otherwise every group id ever named stays in memory.
    empty_group_retention_s: float = 60.0
    # Kafka's offsets.retention.minutes (7 days): the committed offsets of a group that has been Empty
    # this long (of a group that never had members: each offset this long after its commit) are
    # deleted, with the group's Pulsar subscriptions, so an abandoned group holds no data back.
    offsets_retention_minutes: float = 10080.0


@dataclass(frozen=True)
class TransactionsConfig:
    # Kafka's transaction.max.timeout.ms (15 minutes): InitProducerId asking a longer
    # transaction.timeout.ms gets INVALID_TRANSACTION_TIMEOUT. A transaction open longer than its
    # timeout is aborted by its coordinator (kop/txn/coordinator.py).
    max_timeout_ms: int = 900_000
    # How often a coordinator looks for timed-out transactions (Kafka: every 10 s).
    timeout_check_interval_s: float = 1.0


@dataclass(frozen=True)
class TlsConfig:
    # PEM files for SSL and SASL_SSL listeners: the server certificate (chain) and its key.
    cert_file: str = ""
    key_file: str = ""
    # CA bundle that client certificates must chain to (mTLS).
    ca_file: str = ""
    # Client certificates: "none", "requested" (verified when sent) or "required" (mTLS).
    client_auth: str = "none"


@dataclass(frozen=True)
class SaslConfig:
    # Mechanisms offered on SASL_PLAINTEXT and SASL_SSL listeners. PLAIN: username "tenant" or
    # "tenant/namespace", password "token:<Pulsar JWT>"; OAUTHBEARER: the Pulsar JWT as bearer token
    # (tenant/namespace from the "tenant" and "namespace" SASL extensions, else the defaults).
    mechanisms: str = "PLAIN,OAUTHBEARER"
    # Principals (distinct token, tenant, namespace) with a Pulsar client open at once.
    max_principals: int = 64
    # SCRAM users (hashed credentials, tenant, namespace, Pulsar token), written by `kop scram add`;
    # needed when mechanisms include SCRAM-SHA-256 or SCRAM-SHA-512.
    scram_credentials_file: str = ""


@dataclass(frozen=True)
class ClusterConfig:
    # How often the live gateways and the holders of the __offsets partitions are read from Pulsar:
    # the failover reaction time, at the cost of two admin calls per gateway per interval.
    refresh_interval_s: float = 1.0
    # How long a newly seen gateway must stay live before groups are handed over to it.
    handover_delay_s: float = 2.0


@dataclass(frozen=True)
class MetricsConfig:
    # The HTTP endpoint of /metrics, /health and /ready (server/status_http.py). Loopback by
    # default, like Kafka's JMX: exposing it is the operator's decision. Port 0: any free port.
    enabled: bool = True
    listen_host: str = "127.0.0.1"
    listen_port: int = 9404
    # Distinct topic / group label values per metric before the rest are counted as "__other__":
    # a client creating topics in a loop must not grow memory or the scrape without bound.
    max_topic_labels: int = 500
    max_group_labels: int = 500
    # Consumer lag (groups/lag.py): one Pulsar stats call per partition a group of this gateway has
    # committed on, every interval; at most lag_max_partitions per round. 0 turns lag off.
    lag_interval_s: float = 30.0
    lag_max_partitions: int = 1000
    # Count the messages inside batch entries (Pulsar reads the backlog to count them) rather than
    # entries: records in the pulsar entry format, batches in the kafka format either way.
    lag_precise: bool = True


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    pulsar: PulsarConfig = field(default_factory=PulsarConfig)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    offsets: OffsetsConfig = field(default_factory=OffsetsConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    transactions: TransactionsConfig = field(default_factory=TransactionsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    sasl: SaslConfig = field(default_factory=SaslConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log_level: str = "INFO"
    # "text" (one line per event, the connection's client in brackets) or "json" (one object per line).
    log_format: str = "text"

    @property
    def advertised_port(self) -> int:
        return self.server.advertised_port or self.server.listen_port


_TOP_KEYS = ("log_level", "log_format")
_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name not in _TOP_KEYS}
_SECTION_CLASSES = {"server": ServerConfig, "pulsar": PulsarConfig, "topics": TopicsConfig,
                    "offsets": OffsetsConfig, "fetch": FetchConfig, "groups": GroupsConfig,
                    "transactions": TransactionsConfig, "cluster": ClusterConfig,
                    "tls": TlsConfig, "sasl": SaslConfig, "metrics": MetricsConfig}


def _coerce(value: Any, target: type, where: str, problems: list[str]) -> Any:
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
    elif target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isascii():
            try:
                return int(value, 10)
            except ValueError:
                pass
    elif target is float and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number):
            return number
    elif target is str:
        if isinstance(value, str):
            return value
    problems.append(f"{where}: expected {target.__name__}, got {value!r}")
    return None


# KOP_* variables read by scripts/, not by kop itself.
SCRIPT_VARIABLES = frozenset({"KOP_CACHE", "KOP_RUN_DIR", "KOP_PULSAR_FRESH", "KOP_TOKENS_DIR", "KOP_SECURE",
                              "KOP_SECURE_WEB_PORT", "KOP_SECURE_BROKER_PORT", "KOP_PULSAR_ADMIN_TOKEN_FILE"})
def load(path: str | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the configuration. ``overrides`` maps "section.key" (or "log_level") to CLI values."""
    env = os.environ if env is None else env
    problems: list[str] = []
    layered: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    top: dict[str, Any] = {}

    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"{path}: {exc}"]) from exc
        for key, value in data.items():
            if key in _SECTIONS and isinstance(value, dict):
                layered[key].update({k: (v, f"{path}: [{key}] {k}") for k, v in value.items()})
            elif key in _TOP_KEYS:
                top[key] = (value, f"{path}: {key}")
            else:
                problems.append(f"{path}: unknown key or section {key!r}")

    for name, value in env.items():
        if not name.startswith("KOP_") or name in SCRIPT_VARIABLES:
            continue
        rest = name[4:].lower()
        if rest in _TOP_KEYS:
            top[rest] = (value, name)
            continue
        section, _, key = rest.partition("_")
        if section in _SECTIONS and key:
            layered[section][key] = (value, name)
        else:
            problems.append(f"{name}: unknown setting")

    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        if dotted in _TOP_KEYS:
            top[dotted] = (value, f"--{dotted.replace('_', '-')}")
            continue
        section, _, key = dotted.partition(".")
        if section not in layered:
            problems.append(f"override {dotted!r}: unknown section {section!r}")
            continue
        layered[section][key] = (value, f"--{key.replace('_', '-')}")

    sections: dict[str, Any] = {}
    for name, cls in _SECTION_CLASSES.items():
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, (value, where) in layered[name].items():
            if key not in known:
                problems.append(f"{where}: unknown key {name}.{key}")
                continue
            target = {"int": int, "str": str, "bool": bool, "float": float}[known[key]]
            coerced = _coerce(value, target, where, problems)
            if coerced is not None:
                kwargs[key] = coerced
        sections[name] = cls(**kwargs)
    tops = {key: str(value) for key, (value, _) in top.items()}
    cfg = Config(**sections, **tops)
    validate(cfg, problems)
    if problems:
        raise ConfigError(problems)
    return cfg
