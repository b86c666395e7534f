"""Where things live in a fleet of gateways: pure functions every gateway computes alike.

Node ids. A Kafka client tells brokers apart by node id, so every gateway of a fleet needs its own.
``server.node_id`` may be set; when it is left at -1 it is derived from the advertised address,
``crc32("host:port") & 0x7fffffff``: stable across restarts of the same gateway, different for
gateways on different addresses (a collision is caught at start: the registry in
backend/fleet.py refuses a second live gateway with the same id).

Rendezvous hashing (highest random weight). A key (an ``__offsets`` partition, a Kafka topic
partition) belongs to the node with the highest ``hash(key, node)``. Every gateway that sees the
same live nodes places every key identically, and when a node leaves only its keys move (to the
node with the next-highest weight); when one joins it takes over about 1/N of the keys. BLAKE2b
rather than Python's ``hash()``, which is salted per process.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Iterable


def derive_node_id(host: str, port: int) -> int:
    return zlib.crc32(f"{host}:{port}".encode()) & 0x7FFFFFFF


def weight(key: str, node_id: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}\0{node_id}".encode(), digest_size=8).digest(), "big")


def place(key: str, nodes: Iterable[int]) -> int:
    """The node owning ``key`` among ``nodes`` (ties, which need a 64-bit collision, go to the lower id)."""
    best = None
    best_weight = -1
    for node in sorted(set(nodes)):
        w = weight(key, node)
        if w > best_weight:
            best, best_weight = node, w
    if best is None:
        raise ValueError("no nodes to place on")
    return best


def offsets_partition_key(partition: int) -> str:
    return f"__offsets/{partition}"


def topic_partition_key(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"
