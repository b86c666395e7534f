"""A frame fuzzer for a running kop: valid requests of every served API and version, mutated.

Seeds are requests of every API kop serves, at its lowest and highest version (kafka.protocol's
classes with their default fields), plus richer ones for the hot and stateful APIs (Produce with a
real record batch in every compression codec, Fetch, Metadata, ListOffsets, JoinGroup,
OffsetCommit). Each frame sent is one of:

    valid        the seed as it is
    truncated    the body cut short (the length prefix says so)
    flipped      1-8 random bytes of the body changed
    garbage      a random body behind a valid header
    version      a version kop does not serve; or an API key it does not know
    varint       a run of 0xFF continuation bytes (a varint that never ends) inside the body
    length       a length prefix that lies: oversized, negative, or shorter than the body
    bad_crc      a Produce whose batch CRC is wrong
    bad_codec    a Produce whose batch says gzip/snappy/lz4/zstd but holds garbage (CRC made valid)
    bomb         a Produce whose batch inflates to 64 MiB of zeros
    sasl         SaslHandshake with a random mechanism, SaslAuthenticate with random bytes

Every frame must get an answer or a closed connection, except where Kafka gives neither: a frame
whose length prefix promises more than was sent (kop waits for the rest) and a Produce with acks=0
(no answer by design); for those the fuzzer waits 50 ms and hangs up.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import crc32c
from kafka.protocol.consumer import FetchRequest, JoinGroupRequest, ListOffsetsRequest, OffsetCommitRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.producer import ProduceRequest

from kop.handlers.registry import load_all
from kop.protocol.messages import CODECS
from kop.protocol.records import Record, build_batch

# How often each mutation is picked (a bomb costs kop ~20 ms of inflating: rare, or a million frames take hours).
MUTATIONS = {"valid": 10, "truncated": 10, "flipped": 30, "garbage": 10, "version": 8, "varint": 8, "length": 4,
             "bad_crc": 6, "bad_codec": 6, "bomb": 0.3, "sasl": 8}
_KINDS, _WEIGHTS = list(MUTATIONS), list(MUTATIONS.values())


@dataclass
class Seed:
    api_key: int
    version: int
    flexible: bool
    body: bytes


@dataclass
class Stats:
    sent: int = 0
    outcomes: Counter = field(default_factory=Counter)  # answered / closed / waited
    by_mutation: Counter = field(default_factory=Counter)
    unexpected: list = field(default_factory=list)  # frames that got neither answer nor close


def _header(api_key: int, version: int, correlation_id: int, flexible: bool) -> bytes:
    cid = b"fuzz"
    head = struct.pack(">hhih", api_key, version, correlation_id, len(cid)) + cid
    return head + b"\x00" if flexible else head


def _frame(api_key: int, version: int, correlation_id: int, flexible: bool, body: bytes) -> bytes:
    payload = _header(api_key, version, correlation_id, flexible) + body
    return struct.pack(">i", len(payload)) + payload


def _produce(topic: str, records: bytes) -> ProduceRequest:
    return ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
        name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=records)])])


def seeds(topic: str) -> list[Seed]:
    out = []
    handlers = load_all()
    for key, entry in sorted(handlers.items()):
        cls = CODECS[key][0]
        for version in sorted({entry.min_version, entry.max_version}):
            out.append(Seed(key, version, cls.flexible_version_q(version), bytes(cls().encode(version=version))))
    rich = []
    for codec in range(5):
        batch = build_batch([Record(i, 1_700_000_000_000 + i, b"k%d" % i, b"v" * (i * 10), [("h", b"x")])
                             for i in range(5)], compression=codec)
        rich.append((0, _produce(topic, bytes(batch))))
    rich.append((1, FetchRequest(replica_id=-1, max_wait_ms=10, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                                 topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                                     FetchRequest.FetchTopic.FetchPartition(partition=0, fetch_offset=0,
                                                                            partition_max_bytes=1 << 16)])])))
    rich.append((3, MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                    allow_auto_topic_creation=False)))
    rich.append((2, ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
        name=topic, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
            partition_index=0, timestamp=-2)])])))
    rich.append((11, JoinGroupRequest(group_id=GROUP.decode(), session_timeout_ms=6000, rebalance_timeout_ms=6000,
                                      member_id="", protocol_type="consumer", protocols=[
                                          JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"")])))
    rich.append((8, OffsetCommitRequest(group_id="fuzz-group", generation_id_or_member_epoch=-1, member_id="",
                                        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name=topic, partitions=[
                                            OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
                                                partition_index=0, committed_offset=0)])])))
    for key, request in rich:
        entry = handlers[key]
        cls = CODECS[key][0]
        for version in sorted({entry.min_version, entry.max_version}):
            out.append(Seed(key, version, cls.flexible_version_q(version), bytes(request.encode(version=version))))
    return out


def _batch_with_valid_crc(raw: bytearray) -> bytes:
    raw[17:21] = struct.pack(">I", crc32c.crc32c(bytes(raw[21:])))
    return bytes(raw)


def mutate(rng: random.Random, seeds_: list[Seed], topic: str, correlation_id: int) -> tuple[str, bytes, bool]:
    """(mutation, frame bytes, whether kop is expected to wait for more bytes)."""
    kind = rng.choices(_KINDS, _WEIGHTS)[0]
    seed = rng.choice(seeds_)
    body = bytearray(seed.body)
    key, version, flexible = seed.api_key, seed.version, seed.flexible
    if key == 11:
        # A group of its own for every JoinGroup: in a shared group, the members earlier frames left
        # behind (a mutated one may carry a 30 min session and a 24 day rebalance timeout) hold every
        # later join for as long as those timeouts, in Kafka as in kop: waits no fuzzer can tell from a hang.
        body = body.replace(GROUP, b"fz-%07x" % rng.getrandbits(28))
    if kind == "truncated" and body:
        body = body[:rng.randrange(len(body))]
    elif kind == "flipped" and body:
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    elif kind == "garbage":
        body = bytearray(rng.randbytes(rng.randint(0, 300)))
    elif kind == "version":
        if rng.random() < 0.5:
            version = rng.choice([rng.randint(-32768, -1), rng.randint(20, 32767)])
        else:
            key = rng.choice([rng.randint(70, 32767), rng.randint(-32768, -1), 4, 5, 6, 7, 21, 23, 24, 25, 26])
    elif kind == "varint":
        pos = rng.randrange(len(body) + 1)
        body[pos:pos] = b"\xff" * rng.randint(5, 12)
    elif kind == "length":
        frame = _frame(key, version, correlation_id, flexible, bytes(body))
        lie = rng.choice(["huge", "negative", "short", "long"])
        size = {"huge": rng.randint(200 << 20, 2**31 - 1), "negative": rng.randint(-2**31, -1),
                "short": max(0, len(frame) - 4 - rng.randint(1, 20)), "long": len(frame) - 4 + rng.randint(1, 1000)}[lie]
        return f"length-{lie}", struct.pack(">i", size) + frame[4:], lie == "long"
    elif kind in ("bad_crc", "bad_codec", "bomb"):
        key, version = 0, rng.choice([3, 7, 9, 12])
        flexible = version >= 9
        if kind == "bomb":
            if len(_BOMBS) < 3:  # built once each (gzip, lz4, zstd): 64 MiB of zeros takes a moment
                _BOMBS.append(bytes(build_batch([Record(0, 1, None, bytes(64 << 20), [])],
                                                compression=(1, 3, 4)[len(_BOMBS)])))
            records = rng.choice(_BOMBS)
        else:
            raw = bytearray(build_batch([Record(0, 1, b"k", b"value", [])]))
            if kind == "bad_crc":
                raw[-1] ^= 0xFF
                records = bytes(raw)
            else:
                raw[22] = (raw[22] & ~0x07) | rng.randint(1, 4)  # attributes' low byte: the codec
                raw[61:] = rng.randbytes(len(raw) - 61)
                records = _batch_with_valid_crc(raw)
        body = bytearray(_produce(topic, records).encode(version=version))
    elif kind == "sasl":
        if rng.random() < 0.5:
            key, version, flexible = 17, rng.randint(0, 1), False
            body = bytearray(struct.pack(">h", 8) + rng.choice([b"PLAIN\x00\x00\x00", rng.randbytes(8)]))
        else:
            key, version = 36, rng.randint(0, 2)
            flexible = version >= 2
            blob = rng.randbytes(rng.randint(0, 200))
            body = bytearray((bytes([len(blob) + 1]) if flexible and len(blob) < 127 else struct.pack(">i", len(blob)))
                             + blob + (b"\x00" if flexible else b""))
    return kind, _frame(key, version, correlation_id, flexible, bytes(body)), False


_BOMBS: list[bytes] = []
GROUP = b"fuzz-group"  # the rich seeds' group; each JoinGroup frame gets its own (mutate())


# Answers Kafka itself may hold back: a Fetch long-polls (kop caps max_wait_ms at 30 s), a JoinGroup or
# SyncGroup waits for the rebalance (as long as the members' rebalance timeouts).
_SLOW_APIS = {1, 11, 14}
SLOW_TIMEOUT_S = 45.0


def _timeout_for(frame: bytes, timeout: float) -> float:
    api_key = struct.unpack_from(">h", frame, 4)[0] if len(frame) >= 6 else -1
    return max(timeout, SLOW_TIMEOUT_S) if api_key in _SLOW_APIS else timeout


def _acks_zero_produce(frame: bytes) -> bool:
    """A Produce whose acks field reads 0 (kop, like Kafka, sends no answer to it)."""
    if len(frame) < 14:
        return False
    api_key, version = struct.unpack_from(">hh", frame, 4)
    if api_key != 0:
        return False
    (cid_len,) = struct.unpack_from(">h", frame, 12)
    pos = 14 + max(cid_len, 0)
    try:
        if version >= 9:  # flexible: header tagged fields, then a compact nullable transactional_id
            pos += 1
            length = frame[pos] - 1
            pos += 1 + max(length, 0)
        else:
            (length,) = struct.unpack_from(">h", frame, pos)
            pos += 2 + max(length, 0)
        (acks,) = struct.unpack_from(">h", frame, pos)
    except (IndexError, struct.error):
        return False
    return acks == 0


async def _worker(host: str, port: int, rng: random.Random, seeds_: list[Seed], topic: str, stats: Stats,
                  deadline_frames: list[int], timeout: float) -> None:
    reader = writer = None
    correlation = 0
    while deadline_frames[0] > 0:
        deadline_frames[0] -= 1
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        correlation += 1
        kind, frame, waits = mutate(rng, seeds_, topic, correlation)
        waits = waits or _acks_zero_produce(frame)  # Kafka answers an acks=0 Produce with nothing
        stats.sent += 1
        stats.by_mutation[kind] += 1
        writer.write(frame)
        try:
            await writer.drain()
            head = await asyncio.wait_for(reader.readexactly(4), 0.05 if waits else _timeout_for(frame, timeout))
            (size,) = struct.unpack(">i", head)
            await asyncio.wait_for(reader.readexactly(size), timeout)
            stats.outcomes["answered"] += 1
            continue
        except (asyncio.IncompleteReadError, ConnectionError):
            stats.outcomes["closed"] += 1
        except asyncio.TimeoutError:
            if waits:
                stats.outcomes["waited"] += 1
            else:
                stats.outcomes["no answer"] += 1
                stats.unexpected.append((kind, frame[:64].hex()))
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        reader = writer = None
    if writer is not None:
        writer.close()


async def fuzz(host: str, ports: list[int], topic: str, frames: int, seed: int = 1, workers: int = 16,
               timeout: float = 10.0) -> Stats:
    """``frames`` mutated frames over ``workers`` connections spread over ``ports`` (listeners)."""
    stats = Stats()
    seeds_ = seeds(topic)
    remaining = [frames]
    started = time.monotonic()
    await asyncio.gather(*(_worker(host, ports[i % len(ports)], random.Random(seed * 1000 + i), seeds_, topic,
                                   stats, remaining, timeout) for i in range(workers)))
    stats.outcomes["seconds"] = round(time.monotonic() - started)
    return stats
