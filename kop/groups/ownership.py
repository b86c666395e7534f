"""Which gateway coordinates which groups: the ownership loop.

A group belongs to one ``__offsets`` partition (store.partition_for); whoever holds that partition's
exclusive producer coordinates its groups. Pulsar guarantees there is at most one holder; this loop
only decides who *tries* to hold what:

- The preferred owner of partition ``p`` is ``place("__offsets/p", live gateways)`` (rendezvous
  hashing, mapping/placement.py), so the partitions spread over the fleet and every gateway that
  sees the same fleet agrees.
- Every ``cluster.refresh_interval_s`` each gateway reads the fleet (backend/fleet.py) and the
  current holders (the publishers of the ``__offsets`` partitions, from Pulsar's stats), then:
  acquires and loads (custody.take) the partitions it prefers and does not hold; releases the
  ones it holds but no longer prefers, once the preferred gateway has been live for
  ``cluster.handover_delay_s`` (so a gateway seen for one refresh does not move groups around);
  drops at once a partition whose holder according to Pulsar is another gateway (it was fenced).
- A gateway that dies loses its producers with its connection; the survivors see it gone at their
  next refresh, the next-preferred one acquires its partitions and loads them. Failover time is
  about the broker noticing the dead connection + one refresh + loading the partition.

While views differ (a refresh apart), two gateways may both prefer a partition: the second simply
fails to acquire it until the first lets go. A gateway that prefers a partition somebody else
still holds keeps trying every refresh. Nobody takes a partition it does not prefer, so a partition
whose preferred gateway cannot open its producer stays uncoordinated (COORDINATOR_NOT_AVAILABLE,
which clients retry) rather than bouncing between gateways; that needs a broken Pulsar connection on
a gateway that is still registered, and shows in its log.

FindCoordinator answers with :meth:`Ownership.locate`: this gateway if it holds the partition; else
the holder Pulsar reports (re-read when the last refresh names nobody usable), if it is live; else
nobody (COORDINATOR_NOT_AVAILABLE). Never a gateway that does not hold the partition yet: librdkafka, told
a coordinator that turns out to be down, waits for its reconnect backoff or its session timeout
before asking again (seen: a member timed out after 10 s), while COORDINATOR_NOT_AVAILABLE makes
every client ask again within its retry backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..backend.admin import AdminError
from ..backend.fleet import Fleet, Node, node_id_of
from ..mapping.placement import offsets_partition_key, place
from ..tasks import Periodic
from .store import StoreError

log = logging.getLogger(__name__)

# FindCoordinator re-reads the holders from Pulsar when its view names nobody, at most this often.
HOLDERS_MIN_AGE_S = 0.1


class Ownership:
    def __init__(self, fleet: Fleet, custody, admin, refresh_interval_s: float = 1.0,
                 handover_delay_s: float = 2.0) -> None:
        """``custody``: the coordinator's partition custody (groups/custody.py), which takes and
        releases the partitions this loop decides on."""
        self.fleet = fleet
        self.custody = custody
        self._admin = admin
        self.refresh_interval_s = refresh_interval_s
        self.handover_delay_s = handover_delay_s
        self.holders: dict[int, int | None] = {}  # partition -> node id holding it, per Pulsar
        self._loop = Periodic("ownership", refresh_interval_s, self.step, logger=log)
        self._stopping = False
        self._failures_logged: set[int] = set()
        self._holders_read_at = 0.0
        self._holders_reading: asyncio.Future | None = None

    async def start(self) -> None:
        """One round now (this gateway's preferred partitions loaded before it serves), then a loop."""
        self._stopping = False
        await self.step()
        self._loop.start()

    async def close(self) -> None:
        self._stopping = True  # a round in progress stops between partitions
        await self._loop.stop()

    def preferred(self, partition: int) -> int:
        return place(offsets_partition_key(partition), self.fleet.live)

    async def step(self) -> None:
        await self.fleet.refresh()
        await self._read_holders()
        me = self.fleet.me.node_id
        for partition in range(self.custody.partitions):
            if self._stopping:
                return
            holder = self.holders.get(partition)
            preferred = self.preferred(partition)
            if self.custody.owns(partition):
                if holder is not None and holder != me:
                    log.warning("ownership: Pulsar shows gateway %d holding __offsets partition %d", holder, partition)
                    await self.custody.release(partition, lost=True)
                elif preferred != me and self.fleet.live_for(preferred) >= self.handover_delay_s:
                    log.info("ownership: handing __offsets partition %d over to gateway %d", partition, preferred)
                    await self.custody.release(partition)
            elif preferred == me:
                await self._take(partition)

    async def _take(self, partition: int) -> None:
        try:
            if not await self.custody.take(partition):
                return  # still held by another gateway; next round
            self.holders[partition] = self.fleet.me.node_id
            self._failures_logged.discard(partition)
        except (StoreError, AdminError) as exc:
            if partition not in self._failures_logged:
                log.warning("ownership: taking __offsets partition %d failed: %s", partition, exc)
                self._failures_logged.add(partition)

    async def _read_holders(self) -> None:
        self._holders_read_at = time.monotonic()
        try:
            by_partition = await self._admin.partition_publishers(self.custody.topic)
        except AdminError as exc:
            log.debug("ownership: reading the holders of %s failed: %s", self.custody.topic.url, exc)
            return
        holders: dict[int, int | None] = {}
        for partition in range(self.custody.partitions):
            ids = [node_id_of(str(p.get("producerName") or "")) for p in by_partition.get(partition, [])]
            holders[partition] = next((i for i in ids if i is not None), None)
        self.holders = holders

    def coordinator_of(self, group_id: str) -> Node | None:
        """The gateway coordinating ``group_id`` as far as this one knows (module docstring)."""
        partition = self.custody.partition_of(group_id)
        me = self.fleet.me
        if self.custody.owns(partition):
            return me
        holder = self.holders.get(partition)
        if holder is not None and holder != me.node_id and holder in self.fleet.live:
            return self.fleet.live[holder]
        return None

    async def locate(self, group_id: str) -> Node | None:
        """:meth:`coordinator_of`, reading the holders from Pulsar again (at most every
        :data:`HOLDERS_MIN_AGE_S`) when the last read names nobody usable: right after a handover or a
        failover the answer is then the new holder rather than COORDINATOR_NOT_AVAILABLE."""
        node = self.coordinator_of(group_id)
        if node is not None or time.monotonic() - self._holders_read_at < HOLDERS_MIN_AGE_S:
            return node
        if self._holders_reading is None:
            self._holders_reading = asyncio.ensure_future(self._read_holders())
        reading = self._holders_reading
        try:
            await asyncio.shield(reading)
        finally:
            if self._holders_reading is reading and reading.done():
                self._holders_reading = None
        return self.coordinator_of(group_id)
