"""The transaction coordinator (kop/txn/coordinator.py), the view every gateway keeps
(kop/txn/view.py) and the group side of transactional offsets (kop/groups/txn_offsets.py), in
process: ``__transactions`` is a dict that feeds the view as each record is written (the follower's
job on a real gateway), partitions and markers are in memory. Every transition of kop/txn/state.py,
the fencing rules, timeouts and a takeover in Prepare*."""

from __future__ import annotations

import asyncio

import pytest

from fakes import FakeCursorSync, FakeStore, started_coordinator

from kop.groups.offsets_format import CommittedOffset
from kop.protocol.errors import ErrorCode, KafkaError
from kop.txn.coordinator import TransactionCoordinator
from kop.txn.records import txn_key
from kop.txn.state import TxnState
from kop.txn.view import TransactionView

PARTITIONS = 4
NS = "public/default"
P0, P1 = (NS, "t", 0), (NS, "t", 1)
TID = "app"


class FakeTxnStorage:
    """__transactions, producer ids and the data partitions, in memory; every record written is
    applied to each view at once (a follower that never lags)."""

    def __init__(self) -> None:
        self.records: dict[int, dict[str, bytes | None]] = {p: {} for p in range(PARTITIONS)}
        self.views: list[TransactionView] = []
        self.held: dict[int, object] = {}          # partition -> the coordinator holding it
        self.log_ends = {P0: 100, P1: 7}           # partitions that exist, with their log end
        self.markers: list[tuple[tuple, object, int]] = []
        self.marker_gate: asyncio.Event | None = None
        self.next_pid = 1000

    def storage_for(self, owner) -> "_Bound":
        return _Bound(self, owner)

    def feed(self, view: TransactionView) -> None:
        self.views.append(view)
        for records in self.records.values():
            for key, value in records.items():
                view._apply(key, value)


class _Bound:
    """The TxnStorage interface as one gateway sees it."""

    def __init__(self, shared: FakeTxnStorage, owner) -> None:
        self.shared, self.owner = shared, owner

    async def acquire(self, partition: int) -> bool:
        if self.shared.held.get(partition, self.owner) is not self.owner:
            return False
        self.shared.held[partition] = self.owner
        return True

    async def release(self, partition: int) -> None:
        if self.shared.held.get(partition) is self.owner:
            del self.shared.held[partition]

    def held(self, partition: int) -> bool:
        return self.shared.held.get(partition) is self.owner

    async def append(self, partition: int, records) -> None:
        if not self.held(partition):
            raise KafkaError(ErrorCode.NOT_COORDINATOR, "not held")
        for key, value in records:
            self.shared.records[partition][key] = value
            for view in self.shared.views:
                view._apply(key, value)

    async def new_producer_id(self) -> int:
        self.shared.next_pid += 1
        return self.shared.next_pid

    async def start_bound(self, key) -> int:
        if key not in self.shared.log_ends:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "no such partition")
        return self.shared.log_ends[key]

    async def write_marker(self, key, marker) -> int:
        if self.shared.marker_gate is not None:
            await self.shared.marker_gate.wait()
        offset = self.shared.log_ends[key]
        self.shared.log_ends[key] = offset + 1
        self.shared.markers.append((key, marker, offset))
        return offset


def _view(shared: FakeTxnStorage) -> TransactionView:
    view = TransactionView(None, "persistent://kop/system/__transactions", PARTITIONS)

    async def synced(partition=None):  # the fake follower never lags
        view.synced_at = asyncio.get_running_loop().time()
    view.synced = synced
    shared.feed(view)
    return view


async def _coordinator(shared: FakeTxnStorage, owner: str = "a") -> TransactionCoordinator:
    coordinator = TransactionCoordinator(shared.storage_for(owner), _view(shared), PARTITIONS, 900_000)
    for partition in range(PARTITIONS):
        assert await coordinator.adopt(partition)
    return coordinator


@pytest.fixture
def shared() -> FakeTxnStorage:
    return FakeTxnStorage()


async def test_a_committed_transaction_writes_a_marker_per_partition_and_moves_the_lso(shared):
    c = await _coordinator(shared)
    code, pid, epoch = await c.init_producer_id(TID, 60_000)
    assert (code, epoch) == (ErrorCode.NONE, 0)
    assert await c.add_partitions(TID, pid, epoch, [P0, P1]) == {P0: ErrorCode.NONE, P1: ErrorCode.NONE}
    assert c.view.last_stable_offset(P0, 500) == 100 and c.view.last_stable_offset(P1, 500) == 7
    assert c.view.in_transaction(TID, pid, epoch, P0)
    assert await c.end_txn(TID, pid, epoch, True) == ErrorCode.NONE
    assert sorted((key, m.commit, m.producer_id) for key, m, _ in shared.markers) == [(P0, True, pid), (P1, True, pid)]
    assert c.view.last_stable_offset(P0, 500) == 500, "nothing open: the LSO is the high watermark"
    assert c.view.aborted_between(P0, 0, 500) == []
    assert c.describe(TID).state is TxnState.COMPLETE_COMMIT
    assert await c.end_txn(TID, pid, epoch, True) == ErrorCode.NONE, "a retried EndTxn succeeds again"
    assert await c.end_txn(TID, pid, epoch, False) == ErrorCode.INVALID_TXN_STATE


async def test_an_aborted_transaction_leaves_an_aborted_range_every_view_knows(shared):
    c = await _coordinator(shared)
    _, pid, epoch = await c.init_producer_id(TID, 60_000)
    await c.add_partitions(TID, pid, epoch, [P0])
    assert await c.end_txn(TID, pid, epoch, False) == ErrorCode.NONE
    [(_, marker, offset)] = shared.markers
    assert not marker.commit and offset == 100
    assert c.view.aborted_between(P0, 0, 1000) == [(pid, 100)]
    later = _view(shared)  # a gateway started afterwards reads the same from __transactions
    assert later.aborted_between(P0, 50, 101) == [(pid, 100)] and later.aborted_between(P0, 101, 200) == []
    assert later.explains(P0, pid, 100) and not later.explains(P0, pid, 101)


async def test_a_new_init_aborts_the_open_transaction_and_fences_the_old_producer(shared):
    c = await _coordinator(shared)
    _, old, epoch = await c.init_producer_id(TID, 60_000)
    await c.add_partitions(TID, old, epoch, [P0])
    code, new, new_epoch = await c.init_producer_id(TID, 60_000)
    assert code == ErrorCode.NONE and new != old and new_epoch == 0
    assert [(m.producer_id, m.commit) for _, m, _ in shared.markers] == [(old, False)]
    assert await c.add_partitions(TID, old, epoch, [P1]) == {P1: ErrorCode.PRODUCER_FENCED}
    assert await c.end_txn(TID, old, epoch, True) == ErrorCode.PRODUCER_FENCED
    assert await c.add_offsets(TID, 4242, 0, "g") == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert await c.view.open_transaction(TID, old, epoch, P0) == ErrorCode.INVALID_PRODUCER_EPOCH


async def test_bad_requests_get_kafkas_errors(shared):
    c = await _coordinator(shared)
    assert (await c.init_producer_id(TID, 0))[0] == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert (await c.init_producer_id(TID, 900_001))[0] == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert await c.end_txn("nobody", 1, 0, True) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    _, pid, epoch = await c.init_producer_id(TID, 60_000)
    assert await c.end_txn(TID, pid, epoch, True) == ErrorCode.INVALID_TXN_STATE, "nothing to commit"
    missing = (NS, "nope", 0)
    assert await c.add_partitions(TID, pid, epoch, [P0, missing]) == {
        P0: ErrorCode.OPERATION_NOT_ATTEMPTED, missing: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert not c.view.in_transaction(TID, pid, epoch, P0)
    assert await c.view.open_transaction(TID, pid, epoch, P0) == ErrorCode.INVALID_TXN_STATE
    other = TransactionCoordinator(shared.storage_for("b"), _view(shared), PARTITIONS, 900_000)
    with pytest.raises(KafkaError) as refused:
        await other.end_txn(TID, pid, epoch, True)
    assert refused.value.code == ErrorCode.NOT_COORDINATOR


async def test_ending_twice_at_once_answers_concurrent_transactions(shared):
    c = await _coordinator(shared)
    _, pid, epoch = await c.init_producer_id(TID, 60_000)
    await c.add_partitions(TID, pid, epoch, [P0])
    shared.marker_gate = asyncio.Event()
    first = asyncio.ensure_future(c.end_txn(TID, pid, epoch, True))
    await asyncio.sleep(0.01)
    assert c.describe(TID).state is TxnState.PREPARE_COMMIT
    assert await c.end_txn(TID, pid, epoch, True) == ErrorCode.CONCURRENT_TRANSACTIONS
    assert await c.add_partitions(TID, pid, epoch, [P1]) == {P1: ErrorCode.CONCURRENT_TRANSACTIONS}
    assert c.view.last_stable_offset(P0, 500) == 100, "Prepare* is still open for readers"
    shared.marker_gate.set()
    assert await first == ErrorCode.NONE


async def test_a_timed_out_transaction_is_aborted_and_its_producer_fenced(shared):
    c = await _coordinator(shared)
    _, pid, epoch = await c.init_producer_id(TID, 60_000)
    await c.add_partitions(TID, pid, epoch, [P0])
    assert await c.abort_expired() == 0
    c.txns[TID].started_ms -= 61_000
    assert await c.abort_expired() == 1
    await asyncio.sleep(0.01)
    assert c.describe(TID).state is TxnState.COMPLETE_ABORT and c.describe(TID).producer_epoch == 1
    assert [m.commit for _, m, _ in shared.markers] == [False]
    assert await c.end_txn(TID, pid, epoch, False) == ErrorCode.NONE, "its own abort, retried: so be it"
    assert await c.end_txn(TID, pid, epoch, True) == ErrorCode.PRODUCER_FENCED
    assert (await c.init_producer_id(TID, 60_000, pid, epoch))[0] == ErrorCode.NONE, "KIP-360 recovery"


async def test_a_takeover_finishes_what_a_dead_coordinator_left_prepared(shared):
    a = await _coordinator(shared, "a")
    _, pid, epoch = await a.init_producer_id(TID, 60_000)
    await a.add_partitions(TID, pid, epoch, [P0, P1])
    shared.marker_gate = asyncio.Event()
    ending = asyncio.ensure_future(a.end_txn(TID, pid, epoch, True))
    await asyncio.sleep(0.01)
    ending.cancel()  # "a" dies with PrepareCommit stored and no marker written
    for task in list(a._completing.values()):
        task.cancel()
    shared.held.clear()
    shared.marker_gate = None
    b = await _coordinator(shared, "b")
    await asyncio.sleep(0.01)
    assert b.describe(TID).state is TxnState.COMPLETE_COMMIT
    assert sorted((key, m.commit) for key, m, _ in shared.markers) == [(P0, True), (P1, True)]
    assert b.view.last_stable_offset(P0, 500) == 500


async def test_transactional_offsets_become_the_groups_only_when_the_transaction_commits(shared):
    c = await _coordinator(shared)
    store = FakeStore()
    groups = await started_coordinator(store, FakeCursorSync(), transactions=c.view)
    try:
        for commit in (True, False):
            _, pid, epoch = await c.init_producer_id(TID, 60_000)
            assert await c.add_offsets(TID, pid, epoch, "g") == ErrorCode.NONE
            offset = CommittedOffset(42 if commit else 7, "", 1)
            assert await groups.commit_transactional("g", TID, pid, epoch, {("t", 0): offset}) == ErrorCode.NONE
            assert groups.unstable("g") == {("t", 0)}
            assert await c.end_txn(TID, pid, epoch, commit) == ErrorCode.NONE
            for _ in range(100):
                if not groups.unstable("g"):
                    break
                await asyncio.sleep(0.01)
            assert groups.unstable("g") == set()
            assert groups.committed("g")[("t", 0)].offset == 42, "the aborted transaction's 7 never shows"
        assert await groups.commit_transactional("g", TID, pid, epoch, {("t", 0): offset}) == \
            ErrorCode.INVALID_TXN_STATE, "no open transaction"
        assert await groups.commit_transactional("g", TID, 1, 0, {("t", 0): offset}) == \
            ErrorCode.INVALID_PRODUCER_ID_MAPPING
        records = store.stored(store.partition_of("g"))
        assert records.pending == {} and records.offsets[("g", "t", 0)].offset == 42
    finally:
        await groups.close()


async def test_pending_offsets_survive_a_group_coordinator_restart(shared):
    c = await _coordinator(shared)
    store = FakeStore()
    first = await started_coordinator(store, FakeCursorSync(), transactions=c.view)
    _, pid, epoch = await c.init_producer_id(TID, 60_000)
    await c.add_offsets(TID, pid, epoch, "g")
    await first.commit_transactional("g", TID, pid, epoch, {("t", 3): CommittedOffset(9, None, 1)})
    await first.close()
    second = await started_coordinator(store, FakeCursorSync(), transactions=c.view)
    try:
        assert second.unstable("g") == {("t", 3)}
        await c.end_txn(TID, pid, epoch, True)
        for _ in range(100):
            if ("t", 3) in second.committed("g"):
                break
            await asyncio.sleep(0.01)
        assert second.committed("g")[("t", 3)].offset == 9
    finally:
        await second.close()


async def test_records_are_written_to_the_ids_partition(shared):
    c = await _coordinator(shared)
    await c.init_producer_id(TID, 60_000)
    [partition] = [p for p, records in shared.records.items() if txn_key(TID) in records]
    assert partition == c.partition_of(TID)
