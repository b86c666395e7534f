"""The records of ``__transactions`` (pure): keys and values, as UTF-8 JSON.

Keys are compact JSON arrays (no separator to escape, whatever the names hold)::

    ["txn", transactional_id]                              the transactional id's state (state.py)
    ["aborted", namespace, topic, partition, pid, first]   one aborted transaction in one partition

Compaction keeps the latest record of each key. A transactional id's record is overwritten by its
next transaction, so the aborted ranges a ``read_committed`` Fetch needs for as long as the data is
kept (Kafka's transaction index) have keys of their own: written once, when the abort completes.

Values (``"v": 1``)::

    txn:     {"v":1,"pid":..,"epoch":..,"timeout_ms":..,"state":"Ongoing",
              "previous_pids":[..],"partitions":[[namespace,topic,partition,start_bound],..],
              "groups":[..],"started_ms":..,"updated_ms":..,"number":..,
              "outcomes":[[number,committed],..],"markers":[[namespace,topic,partition,offset],..],
              "timed_out":false}
    aborted: {"v":1,"last":<the ABORT marker's offset>,"ms":<when it was written>}
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .state import PartitionKey, Txn, TxnState

FORMAT_VERSION = 1


class RecordError(ValueError):
    """A record of ``__transactions`` kop cannot read (another format, or damaged)."""


@dataclass(frozen=True, slots=True)
class AbortedRange:
    partition: PartitionKey
    producer_id: int
    first_offset: int    # the start bound: at or below the transaction's first record there
    last_offset: int     # its ABORT marker


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def txn_key(transactional_id: str) -> str:
    return _dumps(["txn", transactional_id]).decode()


def aborted_key(partition: PartitionKey, producer_id: int, first_offset: int) -> str:
    return _dumps(["aborted", *partition, producer_id, first_offset]).decode()


def encode_txn(txn: Txn) -> bytes:
    return _dumps({
        "v": FORMAT_VERSION, "pid": txn.producer_id, "epoch": txn.producer_epoch, "timeout_ms": txn.timeout_ms,
        "state": txn.state.value, "previous_pids": txn.previous_producer_ids,
        "partitions": [[*key, bound] for key, bound in txn.partitions.items()], "groups": txn.groups,
        "started_ms": txn.started_ms, "updated_ms": txn.updated_ms, "number": txn.number,
        "outcomes": [list(o) for o in txn.outcomes],
        "markers": [[*key, offset] for key, offset in txn.markers.items()], "timed_out": txn.timed_out})


def encode_aborted(last_offset: int, now_ms: int) -> bytes:
    return _dumps({"v": FORMAT_VERSION, "last": last_offset, "ms": now_ms})


def _key3(item: list) -> PartitionKey:
    namespace, topic, partition = item[0], item[1], item[2]
    if not isinstance(namespace, str) or not isinstance(topic, str) or type(partition) is not int:
        raise RecordError(f"not a partition: {item!r}")
    return namespace, topic, partition


def decode(key: str, value: bytes | None) -> tuple[str, object]:
    """("txn", (transactional_id, Txn or None)) or ("aborted", (partition, producer id, first offset,
    last offset or None)); None stands for a tombstone (the key is deleted)."""
    try:
        parts = json.loads(key)
        kind = parts[0]
        body = None if not value else json.loads(value)
        if body is not None and body.get("v") != FORMAT_VERSION:
            raise RecordError(f"format version {body.get('v')!r}")
        if kind == "txn":
            tid = parts[1]
            if body is None:
                return "txn", (tid, None)
            txn = Txn(tid, int(body["pid"]), int(body["epoch"]), int(body["timeout_ms"]), TxnState(body["state"]),
                      [int(p) for p in body["previous_pids"]],
                      {_key3(item): int(item[3]) for item in body["partitions"]}, [str(g) for g in body["groups"]],
                      int(body["started_ms"]), int(body["updated_ms"]), int(body["number"]),
                      [(int(n), bool(c)) for n, c in body["outcomes"]],
                      {_key3(item): int(item[3]) for item in body["markers"]}, bool(body.get("timed_out", False)))
            return "txn", (tid, txn)
        if kind == "aborted":
            partition = _key3(parts[1:4])
            pid, first = int(parts[4]), int(parts[5])
            last = None if body is None else int(body["last"])
            return "aborted", (partition, pid, first, last)
    except RecordError:
        raise
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RecordError(f"{key!r}: {exc}") from exc
    raise RecordError(f"unknown record kind in key {key!r}")
