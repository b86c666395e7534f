"""Kafka records <-> Pulsar message fields, losslessly (pure: no pulsar import, no I/O).

The ``pulsar`` entry format stores each Kafka record as one Pulsar message, readable by native
Pulsar consumers, and must give the Kafka consumer back exactly what the Kafka producer sent:

| Kafka record | Pulsar message | notes |
|---|---|---|
| key (bytes) | partition key (string) | a UTF-8 key is stored as is, so Pulsar's key routing, Key_Shared and ``getKey()`` see it; a non-UTF-8 (or empty) key is stored base64-encoded with property ``__kafka_key_b64=1`` |
| null key | no partition key | |
| value | payload | |
| null value | empty payload with Pulsar's ``null_value`` flag | Pulsar's own tombstone marker |
| timestamp > 0 | event time | a timestamp <= 0 (Pulsar's "unset") is kept in ``__kafka_ts`` |
| headers | properties (name -> UTF-8 value) | readable by Pulsar consumers; when that map cannot give back the exact list (binary or null values, repeated names, an order other than sorted, a name starting with ``__kafka_``), the exact list is also stored in ``__kafka_headers`` as JSON ``[[name, base64 value or null], ...]`` |

A native Pulsar message read by a Kafka consumer: partition key -> key (UTF-8 bytes), payload ->
value (``None`` if it carries the null-value flag), event time (else publish time) -> timestamp,
properties -> headers in name order (values as UTF-8 bytes). Pulsar schemas are not interpreted:
the payload bytes pass through.

The ``kafka`` entry format stores the whole Kafka batch as one Pulsar message marked with
``__kafka_entry=batch-v2`` and ``__kafka_records=<count>``; its payload is the batch, as sent.

In either format a batch of an idempotent producer carries ``__kafka_producer`` (on its entry, or
on its first message), so a restarted gateway can recognise a retry (producer_recovery.py).

Transactions (kop/txn): every record of a transactional batch carries ``__kafka_txn=<producer
id>:<epoch>`` (in the ``pulsar`` format on each message and on the entry, in the ``kafka`` format on
the entry). A transaction marker is, in both formats, a ``kafka``-format entry holding Kafka's
control batch, with ``__kafka_control=commit|abort`` and ``__kafka_txn``: a native Pulsar consumer
tells a transaction's records by ``__kafka_txn`` and learns its outcome from the marker.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from ..protocol.records import Record

PREFIX = "__kafka_"
KEY_B64 = "__kafka_key_b64"
TIMESTAMP = "__kafka_ts"
HEADERS = "__kafka_headers"
ENTRY = "__kafka_entry"
ENTRY_BATCH_V2 = "batch-v2"
RECORDS = "__kafka_records"
PRODUCER = "__kafka_producer"  # an idempotent batch's identity (producer_recovery.py)
TXN = "__kafka_txn"  # "<producer id>:<epoch>" of a transactional record or marker (kop/txn)
CONTROL = "__kafka_control"  # "commit" or "abort": the entry is a transaction marker


@dataclass(slots=True)
class PulsarFields:
    payload: bytes
    null_value: bool
    partition_key: str | None
    event_timestamp: int  # 0: unset
    properties: dict[str, str]


def _plain_headers(headers: list[tuple[str, bytes | None]]) -> dict[str, str] | None:
    """The properties map, or None when it could not reproduce ``headers`` exactly."""
    props: dict[str, str] = {}
    exact = True
    for name, value in headers:
        if name.startswith(PREFIX) or name in props or value is None:
            exact = False
            if value is None or name.startswith(PREFIX):
                continue
        try:
            props[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            exact = False
    if exact and [name for name, _ in headers] != sorted(props):
        exact = False
    return props if exact else None


def record_to_pulsar(record: Record) -> PulsarFields:
    props: dict[str, str] = {}
    if record.headers:
        plain = _plain_headers(record.headers)
        if plain is None:
            for name, value in record.headers:  # readable copy for Pulsar consumers, best effort
                if value is not None and not name.startswith(PREFIX):
                    props[name] = value.decode("utf-8", "replace")
            props[HEADERS] = json.dumps(
                [[n, None if v is None else base64.b64encode(v).decode("ascii")] for n, v in record.headers],
                separators=(",", ":"))
        else:
            props = plain
    key = None
    if record.key is not None:
        try:
            key = record.key.decode("utf-8")
            if not key:  # an empty key is not "no key": mark it, as Pulsar shows both as ""
                raise UnicodeDecodeError("utf-8", b"", 0, 0, "empty key")
        except UnicodeDecodeError:
            key = base64.b64encode(record.key).decode("ascii")
            props[KEY_B64] = "1"
    timestamp = record.timestamp
    if timestamp <= 0:
        props[TIMESTAMP] = str(timestamp)
        timestamp = 0
    return PulsarFields(record.value if record.value is not None else b"", record.value is None, key,
                        timestamp, props)


def pulsar_to_record(offset_delta: int, payload: bytes, null_value: bool, partition_key: str,
                     event_timestamp: int, publish_timestamp: int, properties: dict[str, str]) -> Record:
    """Rebuild the Kafka record (``partition_key`` is "" when the message has none)."""
    key: bytes | None = None
    if properties.get(KEY_B64) == "1":
        key = base64.b64decode(partition_key)
    elif partition_key:
        key = partition_key.encode()
    if TIMESTAMP in properties:
        timestamp = int(properties[TIMESTAMP])
    else:
        timestamp = event_timestamp if event_timestamp > 0 else publish_timestamp
    if HEADERS in properties:
        headers = [(n, None if v is None else base64.b64decode(v)) for n, v in json.loads(properties[HEADERS])]
    else:
        headers = [(n, v.encode("utf-8")) for n, v in sorted(properties.items()) if not n.startswith(PREFIX)]
    return Record(offset_delta, timestamp, key, None if null_value else payload, headers)


def kafka_entry_properties(records_count: int) -> dict[str, str]:
    return {ENTRY: ENTRY_BATCH_V2, RECORDS: str(records_count)}
