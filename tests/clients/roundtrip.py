"""The round trip every client must pass: keyed records with binary headers over 3 partitions,
acks=all, read back from the earliest offset by partition assignment (no group), byte-exact and in
order within each partition."""

from __future__ import annotations

import random
from dataclasses import dataclass

PARTITIONS = 3


@dataclass(frozen=True)
class Sent:
    partition: int
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def make_records(count: int, seed: int = 7) -> list[Sent]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        key = b"key-%d-" % i + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 8)))
        value = None if i % 997 == 0 else (b"value-%d-" % i) * rng.randrange(1, 6) + bytes([i % 256])
        headers = (("trace", b"%d" % i), ("bin", bytes([0, 255, i % 256])))
        out.append(Sent(i % PARTITIONS, key, value, headers))
    return out


def expected_by_partition(records: list[Sent]) -> dict[int, list[tuple]]:
    by: dict[int, list[tuple]] = {p: [] for p in range(PARTITIONS)}
    for r in records:
        by[r.partition].append((r.key, r.value, r.headers))
    return by


def check(received: dict[int, list[tuple]], records: list[Sent]) -> None:
    """``received[p]`` lists (offset, key, value, headers) in the order consumed."""
    expected = expected_by_partition(records)
    for p in range(PARTITIONS):
        got = received.get(p, [])
        offsets_seen = [g[0] for g in got]
        assert offsets_seen == sorted(set(offsets_seen)), f"partition {p}: offsets not strictly increasing"
        assert len(got) == len(expected[p]), f"partition {p}: got {len(got)} records, sent {len(expected[p])}"
        for i, (g, e) in enumerate(zip(got, expected[p])):
            assert (g[1], g[2], tuple(g[3])) == e, f"partition {p} record {i}: {g[1:]!r} != {e!r}"
