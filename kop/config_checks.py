"""Checks of a loaded configuration that span keys (ranges, listeners, TLS, SASL): each problem is
appended to a list, so config.load reports every one at once in a single ConfigError."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config

ENTRY_FORMATS = ("pulsar", "kafka")
OFFSET_MODES = ("contiguous", "packed")


def validate(cfg: Config, problems: list[str]) -> None:
    s, t = cfg.server, cfg.topics
    for name, port in (("server.listen_port", s.listen_port), ("server.advertised_port", s.advertised_port)):
        if not 0 <= port <= 65535:
            problems.append(f"{name}: {port} is not a TCP port")
    if not 0 <= s.workers <= 256:
        problems.append(f"server.workers: {s.workers} outside 0..256 (0: one per core)")
    if not 1 <= s.worker_port_offset <= 60000:
        problems.append(f"server.worker_port_offset: {s.worker_port_offset} outside 1..60000")
    txn = cfg.transactions
    if txn.max_timeout_ms < 1:
        problems.append(f"transactions.max_timeout_ms: {txn.max_timeout_ms} is not a positive duration")
    if txn.timeout_check_interval_s <= 0:
        problems.append(f"transactions.timeout_check_interval_s: {txn.timeout_check_interval_s} is not positive")
    if s.max_frame_size < 1024:
        problems.append(f"server.max_frame_size: {s.max_frame_size} is below 1024 bytes")
    if s.max_inflight_requests < 1:
        problems.append("server.max_inflight_requests: must be at least 1")
    for key in ("max_connections", "max_connections_per_address"):
        if getattr(s, key) < 1:
            problems.append(f"server.{key}: must be at least 1")
    if s.queued_max_request_bytes < s.max_frame_size:
        problems.append(f"server.queued_max_request_bytes: {s.queued_max_request_bytes} is below "
                        f"server.max_frame_size ({s.max_frame_size}): a largest request could never be read")
    if s.connections_max_idle_ms < 0:
        problems.append("server.connections_max_idle_ms: must be 0 (never) or more")
    if cfg.fetch.max_readers_per_partition < 1:
        problems.append("fetch.max_readers_per_partition: must be at least 1")
    if cfg.fetch.reader_prefetch < 1:
        problems.append("fetch.reader_prefetch: must be at least 1")
    if cfg.fetch.max_response_bytes < 1024:
        problems.append(f"fetch.max_response_bytes: {cfg.fetch.max_response_bytes} is below 1024 bytes")
    if cfg.offsets.mode not in OFFSET_MODES:
        problems.append(f"offsets.mode: {cfg.offsets.mode!r} is not one of {', '.join(OFFSET_MODES)}")
    if t.entry_format not in ENTRY_FORMATS:
        problems.append(f"topics.entry_format: {t.entry_format!r} is not one of {', '.join(ENTRY_FORMATS)}")
    if t.retention_ms < -1:
        problems.append(f"topics.retention_ms: {t.retention_ms} is below -1 (-1 keeps data forever)")
    if not 1 <= t.default_partitions <= 10_000:
        problems.append(f"topics.default_partitions: {t.default_partitions} outside 1..10000")
    if not cfg.pulsar.service_url.startswith(("pulsar://", "pulsar+ssl://")):
        problems.append(f"pulsar.service_url: {cfg.pulsar.service_url!r} is not a pulsar:// URL")
    if cfg.pulsar.system_namespace.count("/") != 1:
        problems.append(f"pulsar.system_namespace: {cfg.pulsar.system_namespace!r} is not tenant/namespace")
    if not cfg.pulsar.admin_url.startswith(("http://", "https://")):
        problems.append(f"pulsar.admin_url: {cfg.pulsar.admin_url!r} is not an http(s):// URL")
    g = cfg.groups
    if not 0 < g.min_session_timeout_ms <= g.max_session_timeout_ms:
        problems.append("groups.min_session_timeout_ms must be positive and <= groups.max_session_timeout_ms")
    if g.initial_rebalance_delay_ms < 0:
        problems.append("groups.initial_rebalance_delay_ms must not be negative")
    if not 1 <= g.offsets_partitions <= 1024:
        problems.append(f"groups.offsets_partitions: {g.offsets_partitions} outside 1..1024")
    if g.empty_group_retention_s < 0:
        problems.append("groups.empty_group_retention_s must not be negative")
    if g.offsets_retention_minutes <= 0:
        problems.append("groups.offsets_retention_minutes must be positive")
    if g.cursor_sync_interval_s <= 0:
        problems.append("groups.cursor_sync_interval_s must be positive")
    if not -1 <= s.node_id <= 2**31 - 1:
        problems.append(f"server.node_id: {s.node_id} outside 0..2147483647 (-1 derives it from the advertised address)")
    c = cfg.cluster
    if not 0 < c.refresh_interval_s <= 60:
        problems.append(f"cluster.refresh_interval_s: {c.refresh_interval_s} outside (0, 60]")
    if c.handover_delay_s < 0:
        problems.append("cluster.handover_delay_s must not be negative")
    _validate_security(cfg, problems)
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"log_level: {cfg.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
    if cfg.log_format not in ("text", "json"):
        problems.append(f"log_format: {cfg.log_format!r} is not text or json")
    m = cfg.metrics
    if not 0 <= m.listen_port <= 65535:
        problems.append(f"metrics.listen_port: {m.listen_port} is not a TCP port")
    for key in ("max_topic_labels", "max_group_labels"):
        if getattr(m, key) < 1:
            problems.append(f"metrics.{key}: must be at least 1")
    if m.lag_interval_s < 0:
        problems.append("metrics.lag_interval_s: must be 0 (off) or more")
    if m.lag_max_partitions < 1:
        problems.append("metrics.lag_max_partitions: must be at least 1")


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "OAUTHBEARER", "SCRAM-SHA-256", "SCRAM-SHA-512")


def parse_listeners(text: str) -> list[tuple[str, str, int]]:
    """"PROTO://host:port,..." -> [(protocol, host, port)]; ValueError names what is wrong."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        protocol, sep, address = item.partition("://")
        host, _, port = address.rpartition(":")
        if not sep or protocol not in SECURITY_PROTOCOLS or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{item!r} is not PROTOCOL://host:port with PROTOCOL one of {', '.join(SECURITY_PROTOCOLS)}")
        out.append((protocol, host.strip("[]") or "0.0.0.0", int(port)))
    return out


def _validate_security(cfg: Config, problems: list[str]) -> None:
    s, tls, sasl = cfg.server, cfg.tls, cfg.sasl
    protocols = [s.security_protocol]
    if s.security_protocol not in SECURITY_PROTOCOLS:
        problems.append(f"server.security_protocol: {s.security_protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}")
    for key in ("listeners", "advertised_listeners"):
        try:
            parsed = parse_listeners(getattr(s, key))
        except ValueError as exc:
            problems.append(f"server.{key}: {exc}")
            continue
        if key == "listeners":
            protocols += [p for p, _, _ in parsed]
        elif not {p for p, _, _ in parsed} <= set(protocols):
            problems.append("server.advertised_listeners: names a protocol that has no listener")
    if len(set(protocols)) != len(protocols):
        problems.append(f"server.listeners: one listener per security protocol (got {', '.join(protocols)})")
    if any(p.endswith("SSL") for p in protocols) and not (tls.cert_file and tls.key_file):
        problems.append("tls.cert_file and tls.key_file are needed by an SSL or SASL_SSL listener")
    if tls.client_auth not in ("none", "requested", "required"):
        problems.append(f"tls.client_auth: {tls.client_auth!r} is not none, requested or required")
    elif tls.client_auth != "none" and not tls.ca_file:
        problems.append("tls.ca_file is needed to verify client certificates (tls.client_auth)")
    mechanisms = [m.strip() for m in sasl.mechanisms.split(",") if m.strip()]
    unknown = [m for m in mechanisms if m not in SASL_MECHANISMS]
    if unknown or not mechanisms:
        problems.append(f"sasl.mechanisms: {sasl.mechanisms!r}; supported: {', '.join(SASL_MECHANISMS)}")
    if any(m.startswith("SCRAM-") for m in mechanisms) and not sasl.scram_credentials_file:
        problems.append("sasl.scram_credentials_file is needed for the SCRAM mechanisms")
    if sasl.max_principals < 1:
        problems.append("sasl.max_principals must be at least 1")
