"""The helpers every background loop and every waiting member goes through: kop/tasks.py (periodic
work, bounded closes) and kop/groups/answers.py (the waiters of joins and syncs)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from kop.groups.answers import JoinResult, SyncResult, Waiters
from kop.protocol.errors import ErrorCode
from kop.tasks import Periodic, close_within


async def test_periodic_runs_after_each_interval_until_stopped():
    started = time.monotonic()
    times: list[float] = []

    async def work():
        times.append(time.monotonic() - started)
    loop = Periodic("ticker", 0.02, work)
    loop.start()
    loop.start()  # a second start does not start a second loop
    while len(times) < 4:
        await asyncio.sleep(0.005)
    await loop.stop()
    count = len(times)
    assert times[0] >= 0.02  # the interval comes first
    assert all(b - a >= 0.019 for a, b in zip(times, times[1:]))  # one loop, an interval between rounds
    await asyncio.sleep(0.05)
    assert len(times) == count and not loop.running and loop.rounds == count


async def test_a_failing_round_is_logged_with_the_loops_name_and_the_loop_goes_on(caplog):
    calls = 0

    async def work():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("Pulsar away")
    loop = Periodic("flaky thing", 0.01, work, logger=logging.getLogger("kop.test"))
    with caplog.at_level(logging.ERROR, logger="kop.test"):
        loop.start()
        await asyncio.sleep(0.06)
        await loop.stop()
    assert calls >= 3 and loop.failures == 1
    (record,) = [r for r in caplog.records if r.name == "kop.test"]
    assert "flaky thing" in record.getMessage() and record.exc_info[0] is RuntimeError


async def test_stop_lets_a_round_finish_within_the_bound():
    finished = asyncio.Event()

    async def work():
        await asyncio.sleep(0.05)
        finished.set()
    loop = Periodic("flush", 0.01, work, stop_wait_s=1)
    loop.start()
    await asyncio.sleep(0.02)  # the first round is running
    await loop.stop()
    assert finished.is_set()


async def test_stop_cancels_a_round_that_takes_too_long(caplog):
    cancelled = asyncio.Event()

    async def stuck():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
    loop = Periodic("stuck", 0.01, stuck, stop_wait_s=0.05)
    loop.start()
    await asyncio.sleep(0.03)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="kop.tasks"):
        await loop.stop()
    assert time.monotonic() - started < 0.5 and cancelled.is_set()
    assert "stuck" in caplog.text and "cancelled" in caplog.text

    no_wait = Periodic("metric", 0.01, stuck, stop_wait_s=0)
    no_wait.start()
    await asyncio.sleep(0.03)
    started = time.monotonic()
    await no_wait.stop()
    assert time.monotonic() - started < 0.5  # not the 60 s of the round


async def test_stop_wakes_a_waiting_loop_at_once():
    loop = Periodic("rare", 60, lambda: asyncio.sleep(0))
    loop.start()
    await asyncio.sleep(0.01)
    started = time.monotonic()
    await loop.stop()
    assert time.monotonic() - started < 0.5 and loop.rounds == 0  # not the 60 s interval
    loop.start()  # and it can run again
    assert loop.running
    await loop.stop()


def test_periodic_refuses_a_nonpositive_interval():
    with pytest.raises(ValueError, match="busy"):
        Periodic("busy", 0, lambda: asyncio.sleep(0))


async def test_close_within():
    assert await close_within(asyncio.sleep(0), "quick")
    started = time.monotonic()
    assert not await close_within(asyncio.sleep(10), "slow", 0.05)
    assert time.monotonic() - started < 0.5

    async def failing():
        raise ConnectionError("gone")
    assert not await close_within(failing(), "failing")


async def test_waiters_answer_once_in_one_shape():
    joins: Waiters[JoinResult] = Waiters(JoinResult)
    first = joins.wait("g", "m")
    second = joins.wait("g", "m")  # supersedes the first
    assert first.result() == JoinResult(ErrorCode.UNKNOWN_MEMBER_ID)
    assert joins.waiting("g", "m") and len(joins) == 1
    joins.answer("g", "m", JoinResult(ErrorCode.NONE, 3))
    joins.fail("g", "m", ErrorCode.NOT_COORDINATOR)  # nobody waits any more: nothing happens
    assert second.result().generation_id == 3 and not joins.waiting("g", "m") and len(joins) == 0

    syncs: Waiters[SyncResult] = Waiters(SyncResult)
    a, b, other = syncs.wait("g", "a"), syncs.wait("g", "b"), syncs.wait("h", "c")
    syncs.answer_all("g", lambda member: SyncResult(ErrorCode.NONE, member.encode()))
    assert (a.result().assignment, b.result().assignment) == (b"a", b"b") and not other.done()
    syncs.fail_all(["g", "h"], ErrorCode.NOT_COORDINATOR)
    assert other.result() == SyncResult(ErrorCode.NOT_COORDINATOR) and len(syncs) == 0
    cancelled = syncs.wait("g", "x")
    cancelled.cancel()  # its request went away: answering it is harmless
    syncs.fail("g", "x", ErrorCode.UNKNOWN_MEMBER_ID)
