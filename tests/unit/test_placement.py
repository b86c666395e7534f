"""Placement in a fleet (rendezvous hashing, derived node ids) and reading the fleet registry: pure."""

from __future__ import annotations

from collections import Counter

import pytest

from kop.backend.fleet import Node, node_id_of, node_of_publisher, producer_name
from kop.mapping.placement import derive_node_id, offsets_partition_key, place, topic_partition_key

KEYS = [topic_partition_key("orders", p) for p in range(3000)]


def test_place_is_deterministic_and_ignores_order_and_duplicates():
    for key in KEYS[:100]:
        assert place(key, [1, 2, 3]) == place(key, [3, 2, 1, 2]) == place(key, {2, 3, 1})


def test_place_spreads_keys_evenly():
    counts = Counter(place(key, [10, 20, 30]) for key in KEYS)
    assert set(counts) == {10, 20, 30}
    assert all(800 <= n <= 1200 for n in counts.values()), counts  # 1000 expected each


def test_only_the_keys_of_a_leaving_node_move():
    before = {key: place(key, [1, 2, 3, 4]) for key in KEYS}
    after = {key: place(key, [1, 2, 4]) for key in KEYS}
    moved = {key for key in KEYS if before[key] != after[key]}
    assert moved == {key for key in KEYS if before[key] == 3}


def test_a_joining_node_takes_about_its_share():
    before = {key: place(key, [1, 2]) for key in KEYS}
    after = {key: place(key, [1, 2, 3]) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == 3 for key in moved)
    assert 800 <= len(moved) <= 1200


def test_place_needs_a_node():
    with pytest.raises(ValueError):
        place(offsets_partition_key(0), [])


def test_derived_node_ids_are_stable_non_negative_int32_and_differ_by_address():
    ids = {derive_node_id("127.0.0.1", port) for port in range(9000, 9500)}
    assert len(ids) == 500
    assert all(0 <= i <= 2**31 - 1 for i in ids)
    assert derive_node_id("10.0.0.1", 9092) == derive_node_id("10.0.0.1", 9092) != derive_node_id("10.0.0.2", 9092)


def test_registry_publishers_are_parsed_strictly():
    assert node_id_of(producer_name(42)) == 42
    assert node_id_of("kop-gateway-") is None and node_id_of("kop-gateway--1") is None
    assert node_id_of("standalone-0-7") is None
    good = {"producerName": "kop-gateway-7", "metadata": {"host": "10.1.2.3", "port": "9092"}}
    assert node_of_publisher(good) == Node(7, "10.1.2.3", 9092)
    for bad in ({"producerName": "kop-gateway-7", "metadata": {"host": "h"}},
                {"producerName": "kop-gateway-7", "metadata": {"host": "h", "port": "x"}},
                {"producerName": "kop-gateway-7", "metadata": {"host": "", "port": "9092"}},
                {"producerName": "kop-gateway-7", "metadata": {"host": "h", "port": "70000"}},
                {"producerName": "other", "metadata": {"host": "h", "port": "9092"}},
                {"producerName": "kop-gateway-7"}):
        assert node_of_publisher(bad) is None, bad
