"""Apache Kafka 4.1's topic configs, as facts: name, type, default, valid values, the broker setting
that supplies the default, and what kop does with each. Pure data (mapping/topic_configs.py parses
and validates with it).

The names, types, defaults and ranges are Kafka's (its LogConfig definition, as printed by Kafka
4.1.2's own jars); the one-line descriptions are kop's. ``kop`` says what kop does with a value:

- ``pulsar``: mapped onto a Pulsar topic policy (backend/policies.py);
- ``enforced``: kop applies its meaning to records itself (backend/record_rules.py);
- ``stored``: kept with the topic (a Pulsar topic property) and described back, but Pulsar's own
  machinery does the job (ledgers, BookKeeper replication, compaction triggers), so the value
  changes nothing; ``note`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kafka's ConfigType ids (DescribeConfigs v3+).
BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD = range(1, 10)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Validator:
    """Kafka's validators: a Range (``low``/``high``, None = open), a list of allowed strings
    (``one_of``; for LIST configs each element), or a special rule by name."""
    low: float | None = None
    high: float | None = None
    one_of: tuple[str, ...] = ()
    rule: str = ""  # "gzip_level" ([1..9] or -1), "replicas" (throttled replica list)


@dataclass(frozen=True)
class Spec:
    name: str
    config_type: int
    default: str | None  # as DescribeConfigs renders it; None: no default
    validator: Validator | None
    synonym: str  # the broker setting that supplies the default ("" if none)
    kop: str  # "pulsar", "enforced" or "stored"
    doc: str
    internal: bool = False


def _s(name, config_type, default, validator, synonym, kop, doc, internal=False) -> Spec:
    return Spec(name, config_type, default, validator, synonym, kop, doc, internal)


def at_least(n: int) -> Validator:
    return Validator(low=n)


_LIST = str(LONG_MAX)
_REPLICAS = Validator(rule="replicas")
_STORED_LOG = "stored: Pulsar rolls, indexes and syncs ledgers by its own broker and bookie settings"
_STORED_REPL = "stored: replication is BookKeeper's (the namespace's persistence policy)"
_STORED_COMPACT = "stored: Pulsar compacts once the backlog passes the compaction threshold"
_STORED_TIERED = "stored: tiered storage is Pulsar's offload policy, not set through Kafka configs"

SPECS: dict[str, Spec] = {s.name: s for s in (
    _s("cleanup.policy", LIST, "delete", Validator(one_of=("compact", "delete")), "log.cleanup.policy", "pulsar",
       "delete and/or compact. kop: compact turns Pulsar's compaction on (compactionThreshold) and makes "
       "the topic refuse records without a key; kop's Fetch still reads the full log."),
    _s("compression.gzip.level", INT, "-1", Validator(rule="gzip_level"), "compression.gzip.level", "stored",
       "gzip level when the broker recompresses. kop: stored; batches are kept as the producer compressed them."),
    _s("compression.lz4.level", INT, "9", Validator(1, 17), "compression.lz4.level", "stored",
       "lz4 level when the broker recompresses. kop: stored; batches are kept as the producer compressed them."),
    _s("compression.type", STRING, "producer",
       Validator(one_of=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")), "compression.type", "stored",
       "Codec the broker stores batches with. kop: stored; batches are kept as the producer compressed them."),
    _s("compression.zstd.level", INT, "3", Validator(-131072, 22), "compression.zstd.level", "stored",
       "zstd level when the broker recompresses. kop: stored; batches are kept as the producer compressed them."),
    _s("delete.retention.ms", LONG, "86400000", at_least(0), "log.cleaner.delete.retention.ms", "stored",
       "How long tombstones survive compaction. kop: " + _STORED_COMPACT + ", dropping tombstones."),
    _s("file.delete.delay.ms", LONG, "60000", at_least(0), "log.segment.delete.delay.ms", "stored",
       "Delay before a deleted segment's file goes. kop: " + _STORED_LOG + "."),
    _s("flush.messages", LONG, _LIST, at_least(1), "log.flush.interval.messages", "stored",
       "Messages between forced fsyncs. kop: " + _STORED_LOG + " (every entry is journaled)."),
    _s("flush.ms", LONG, _LIST, at_least(0), "log.flush.interval.ms", "stored",
       "Time between forced fsyncs. kop: " + _STORED_LOG + " (every entry is journaled)."),
    _s("follower.replication.throttled.replicas", LIST, "", _REPLICAS, "", "stored",
       "Replicas throttled as followers. kop: " + _STORED_REPL + "."),
    _s("index.interval.bytes", INT, "4096", at_least(0), "log.index.interval.bytes", "stored",
       "Bytes between offset index entries. kop: " + _STORED_LOG + "."),
    _s("internal.segment.bytes", INT, None, None, "", "stored", "Kafka's testing-only segment size.", internal=True),
    _s("leader.replication.throttled.replicas", LIST, "", _REPLICAS, "", "stored",
       "Replicas throttled as leaders. kop: " + _STORED_REPL + "."),
    _s("local.retention.bytes", LONG, "-2", at_least(-2), "log.local.retention.bytes", "stored",
       "Local part of tiered retention by size. kop: " + _STORED_TIERED + "."),
    _s("local.retention.ms", LONG, "-2", at_least(-2), "log.local.retention.ms", "stored",
       "Local part of tiered retention by time. kop: " + _STORED_TIERED + "."),
    _s("max.compaction.lag.ms", LONG, _LIST, at_least(1), "log.cleaner.max.compaction.lag.ms", "stored",
       "Longest a record stays uncompacted. kop: " + _STORED_COMPACT + "."),
    _s("max.message.bytes", INT, "1048588", at_least(0), "message.max.bytes", "pulsar",
       "Largest record batch. kop: refuses larger batches (MESSAGE_TOO_LARGE) and sets Pulsar's maxMessageSize; "
       "unset, Pulsar's maxMessageSize applies."),
    _s("message.timestamp.after.max.ms", LONG, "3600000", at_least(0), "log.message.timestamp.after.max.ms",
       "enforced", "How far ahead of the broker's clock a CreateTime timestamp may be. kop: enforced "
                   "(INVALID_TIMESTAMP)."),
    _s("message.timestamp.before.max.ms", LONG, _LIST, at_least(0), "log.message.timestamp.before.max.ms",
       "enforced", "How far behind the broker's clock a CreateTime timestamp may be. kop: enforced "
                   "(INVALID_TIMESTAMP)."),
    _s("message.timestamp.type", STRING, "CreateTime", Validator(one_of=("CreateTime", "LogAppendTime")),
       "log.message.timestamp.type", "stored",
       "CreateTime or LogAppendTime. kop: stored; records keep the producer's timestamps (Pulsar's publish "
       "time is what ListOffsets searches either way)."),
    _s("min.cleanable.dirty.ratio", DOUBLE, "0.5", Validator(0, 1), "log.cleaner.min.cleanable.ratio", "stored",
       "Dirty ratio that triggers cleaning. kop: " + _STORED_COMPACT + "."),
    _s("min.compaction.lag.ms", LONG, "0", at_least(0), "log.cleaner.min.compaction.lag.ms", "stored",
       "Shortest a record stays uncompacted. kop: " + _STORED_COMPACT + "."),
    _s("min.insync.replicas", INT, "1", at_least(1), "min.insync.replicas", "stored",
       "Replicas an acks=all write needs. kop: " + _STORED_REPL + "; acks=all waits for its ack quorum."),
    _s("preallocate", BOOLEAN, "false", None, "log.preallocate", "stored",
       "Preallocate segment files. kop: " + _STORED_LOG + "."),
    _s("remote.log.copy.disable", BOOLEAN, "false", None, "", "stored",
       "Stop copying to tiered storage. kop: " + _STORED_TIERED + "."),
    _s("remote.log.delete.on.disable", BOOLEAN, "false", None, "", "stored",
       "Delete tiered data when tiering is turned off. kop: " + _STORED_TIERED + "."),
    _s("remote.storage.enable", BOOLEAN, "false", None, "", "stored",
       "Tiered storage for the topic. kop: refused when true, as by a Kafka broker without tiered storage; "
       "Pulsar's offload policies do that job."),
    _s("retention.bytes", LONG, "-1", None, "log.retention.bytes", "pulsar",
       "Size kept per partition; -1: no limit. kop: Pulsar retention size (whole MiB; above the namespace's "
       "backlog quota)."),
    _s("retention.ms", LONG, "604800000", at_least(-1), "log.retention.ms", "pulsar",
       "Time kept; -1: forever. kop: Pulsar retention time (whole minutes) and message TTL (seconds); unset, "
       "kop's topics.retention_ms, or the namespace's retention where it keeps data."),
    _s("segment.bytes", INT, "1073741824", at_least(1048576), "log.segment.bytes", "stored",
       "Segment size. kop: " + _STORED_LOG + " (managedLedgerMaxEntriesPerLedger and friends)."),
    _s("segment.index.bytes", INT, "10485760", at_least(4), "log.index.size.max.bytes", "stored",
       "Offset index size. kop: " + _STORED_LOG + "."),
    _s("segment.jitter.ms", LONG, "0", at_least(0), "log.roll.jitter.ms", "stored",
       "Random jitter on segment rolls. kop: " + _STORED_LOG + "."),
    _s("segment.ms", LONG, "604800000", at_least(1), "log.roll.ms", "stored",
       "Time before a segment rolls. kop: " + _STORED_LOG + " (managedLedgerMaxLedgerRolloverTimeMinutes)."),
    _s("unclean.leader.election.enable", BOOLEAN, "false", None, "unclean.leader.election.enable", "stored",
       "Let an out-of-sync replica lead. kop: " + _STORED_REPL + "."),
)}
