"""kop/server/limits.py: connection admission per gateway and per address, and the queued-bytes budget
that pauses every connection and wakes each one when answers bring it back under."""

from __future__ import annotations

from kop.server.limits import GatewayLimits


class Conn:
    def __init__(self) -> None:
        self.woken = 0

    def budget_changed(self) -> None:
        self.woken += 1


def test_total_and_per_address_limits_refuse_with_a_reason_and_count_nothing():
    limits = GatewayLimits(max_connections=4, max_connections_per_address=2, queued_bytes_max=100)
    assert limits.admit("10.0.0.1") is None
    assert limits.admit("10.0.0.1") is None
    refused = limits.admit("10.0.0.1")
    assert refused and "10.0.0.1" in refused and "max_connections_per_address" in refused
    assert limits.admit("10.0.0.2") is None
    assert limits.admit("10.0.0.3") is None
    refused = limits.admit("10.0.0.4")
    assert refused and "(server.max_connections)" in refused
    assert (limits.connections, limits.refused) == (4, 2)
    limits.leave("10.0.0.1")
    assert limits.admit("10.0.0.1") is None  # room again, in total and for its address
    refused = limits.admit("10.0.0.5")
    assert refused and "(server.max_connections)" in refused


def test_leaving_forgets_an_address_entirely():
    limits = GatewayLimits(10, 10, 100)
    for _ in range(3):
        assert limits.admit("a") is None
    for _ in range(3):
        limits.leave("a")
    assert limits.connections == 0 and "a" not in limits.by_address


def test_budget_wakes_every_paused_connection_once_back_under():
    limits = GatewayLimits(10, 10, queued_bytes_max=100)
    a, b = Conn(), Conn()
    limits.take(60)
    assert not limits.over_budget()
    limits.take(60)
    assert limits.over_budget()
    limits.wait_for_budget(a)
    limits.wait_for_budget(b)
    limits.wait_for_budget(a)  # asked again while still paused: still one wake-up
    assert limits.budget_pauses == 1
    limits.give_back(10)  # 110: still over
    assert (a.woken, b.woken) == (0, 0)
    limits.give_back(60)  # 50: under
    assert (a.woken, b.woken) == (1, 1)
    limits.give_back(50)
    assert (a.woken, b.woken) == (1, 1) and limits.queued_bytes == 0


def test_a_forgotten_connection_is_not_woken():
    limits = GatewayLimits(10, 10, queued_bytes_max=10)
    a = Conn()
    limits.take(20)
    limits.wait_for_budget(a)
    limits.forget(a)  # it closed meanwhile
    limits.give_back(20)
    assert a.woken == 0
