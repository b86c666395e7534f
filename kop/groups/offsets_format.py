"""The ``__offsets`` record format (pure: no I/O, no pulsar): the group-state dataclasses, the
partition of a group, and the keys and values of the messages, as described in store.py's docstring.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_JSON = dict(separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    metadata: str | None
    commit_timestamp: int  # ms
    leader_epoch: int = -1
    # The offsets.mode the offset was committed in, as stored ("" until stored). A record without one
    # was written before contiguous offsets existed: a packed offset (store.py translates it).
    mode: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class MemberRecord:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes  # the chosen protocol's metadata
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupRecord:
    group_id: str
    protocol_type: str | None
    generation_id: int
    protocol_name: str | None
    leader: str | None
    members: tuple[MemberRecord, ...]
    state_timestamp: int


@dataclass(frozen=True, slots=True)
class PendingOffsets:
    """Offsets a transaction committed for a group (TxnOffsetCommit), visible once it commits."""
    transactional_id: str   # scoped
    number: int             # which transaction of that id (kop/txn/state.py)
    producer_id: int
    producer_epoch: int
    offsets: dict[tuple[str, int], CommittedOffset]


@dataclass(slots=True)
class LoadedPartition:
    offsets: dict[tuple[str, str, int], CommittedOffset] = field(default_factory=dict)  # (group, topic, partition)
    groups: dict[str, GroupRecord] = field(default_factory=dict)
    pending: dict[tuple[str, str, int], PendingOffsets] = field(default_factory=dict)  # (group, tid, number)


def partition_for(group_id: str, partitions: int) -> int:
    """The ``__offsets`` partition of a group: stable across processes, hosts and restarts."""
    return zlib.crc32(group_id.encode("utf-8", "surrogatepass")) % partitions


# -- keys and values (pure) -----------------------------------------------------------------------

def offset_key(group_id: str, topic: str, partition: int) -> str:
    return json.dumps(["offset", group_id, topic, partition], **_JSON)


def group_key(group_id: str) -> str:
    return json.dumps(["group", group_id], **_JSON)


def pending_key(group_id: str, transactional_id: str, number: int) -> str:
    return json.dumps(["txn-offsets", group_id, transactional_id, number], **_JSON)


def encode_pending(pending: PendingOffsets, mode: str) -> bytes:
    return json.dumps({"v": FORMAT_VERSION, "pid": pending.producer_id, "epoch": pending.producer_epoch, "mode": mode,
                       "offsets": [[topic, index, c.offset, c.metadata, c.commit_timestamp, c.leader_epoch]
                                   for (topic, index), c in pending.offsets.items()]}, **_JSON).encode()


def decode_pending(transactional_id: str, number: int, value: dict[str, Any]) -> PendingOffsets:
    mode = str(value.get("mode", "packed"))
    return PendingOffsets(transactional_id, number, int(value["pid"]), int(value["epoch"]), {
        (str(topic), int(index)): CommittedOffset(int(offset), metadata, int(ts), int(epoch), mode)
        for topic, index, offset, metadata, ts, epoch in value["offsets"]})


def encode_offset(commit: CommittedOffset, mode: str = "packed") -> bytes:
    return json.dumps({"v": FORMAT_VERSION, "offset": commit.offset, "metadata": commit.metadata,
                       "timestamp": commit.commit_timestamp, "leader_epoch": commit.leader_epoch, "mode": mode},
                      **_JSON).encode()


def decode_offset(value: dict[str, Any]) -> CommittedOffset:
    return CommittedOffset(int(value["offset"]), value.get("metadata"), int(value["timestamp"]),
                           int(value.get("leader_epoch", -1)), str(value.get("mode", "packed")))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_group(record: GroupRecord) -> bytes:
    return json.dumps({
        "v": FORMAT_VERSION, "protocol_type": record.protocol_type, "generation": record.generation_id,
        "protocol": record.protocol_name, "leader": record.leader, "timestamp": record.state_timestamp,
        "members": [{"member_id": m.member_id, "instance_id": m.group_instance_id, "client_id": m.client_id,
                     "client_host": m.client_host, "rebalance_timeout_ms": m.rebalance_timeout_ms,
                     "session_timeout_ms": m.session_timeout_ms, "subscription": _b64(m.subscription),
                     "assignment": _b64(m.assignment)} for m in record.members],
    }, **_JSON).encode()


def decode_group(group_id: str, value: dict[str, Any]) -> GroupRecord:
    members = tuple(MemberRecord(
        str(m["member_id"]), m.get("instance_id"), str(m["client_id"]), str(m["client_host"]),
        int(m["rebalance_timeout_ms"]), int(m["session_timeout_ms"]),
        base64.b64decode(m["subscription"], validate=True), base64.b64decode(m["assignment"], validate=True))
        for m in value["members"])
    return GroupRecord(group_id, value.get("protocol_type"), int(value["generation"]), value.get("protocol"),
                       value.get("leader"), members, int(value["timestamp"]))


def apply_record(loaded: LoadedPartition, key: str, value: bytes | None) -> None:
    """Apply one ``__offsets`` message (``value`` None: a tombstone) to ``loaded``. A message kop did
    not write (malformed key or value, newer format) is logged and skipped."""
    try:
        parts = json.loads(key)
        kind = parts[0]
        if kind == "offset":
            _, group_id, topic, partition = parts
            ident: Any = (str(group_id), str(topic), int(partition))
        elif kind == "group":
            _, group_id = parts
            ident = str(group_id)
        elif kind == "txn-offsets":
            _, group_id, tid, number = parts
            ident = (str(group_id), str(tid), int(number))
        else:
            raise ValueError(f"unknown record kind {kind!r}")
        table: dict = {"offset": loaded.offsets, "group": loaded.groups, "txn-offsets": loaded.pending}[kind]
        if value is None:
            table.pop(ident, None)
            return
        decoded = json.loads(value)
        if decoded.get("v") != FORMAT_VERSION:
            raise ValueError(f"format version {decoded.get('v')!r}")
        if kind == "offset":
            loaded.offsets[ident] = decode_offset(decoded)
        elif kind == "group":
            loaded.groups[ident] = decode_group(ident, decoded)
        else:
            loaded.pending[ident] = decode_pending(ident[1], ident[2], decoded)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        log.warning("__offsets: skipping a record kop cannot read (key %.200r): %s", key, exc)


# -- Pulsar ---------------------------------------------------------------------------------------
