"""Custody of ``__offsets`` partition *n* and ``__transactions`` partition *n* together.

groups/ownership.py decides which ``__offsets`` partitions this gateway holds and asks a custody to
take and release them. Given this pairing instead of the group coordinator's own custody, every
decision covers both topics: the gateway that coordinates the groups of partition *n* coordinates
the transactional ids of partition *n* too, so FindCoordinator answers one gateway for both key
types, and a failover (or a handover) moves both at once. A take succeeds only when both exclusive
producers are acquired (the group side is released again otherwise, and the ownership loop retries
at its next round); a release lets the transactions go first, the groups second.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class PairedCustody:
    def __init__(self, groups, transactions) -> None:
        self.groups = groups
        self.transactions = transactions

    @property
    def partitions(self) -> int:
        return self.groups.partitions

    @property
    def topic(self):
        return self.groups.topic

    def partition_of(self, key: str) -> int:
        return self.groups.partition_of(key)

    def owns(self, partition: int) -> bool:
        return self.groups.owns(partition)

    async def take(self, partition: int) -> bool:
        if not await self.groups.take(partition):
            return False
        try:
            taken = await self.transactions.adopt(partition)
        except BaseException:
            await self.groups.release(partition)
            raise
        if not taken:
            log.info("__transactions partition %d is still held elsewhere: __offsets partition %d given back "
                     "until the next round", partition, partition)
            await self.groups.release(partition)
        return taken

    async def release(self, partition: int, lost: bool = False) -> None:
        try:
            await self.transactions.release(partition)
        finally:
            await self.groups.release(partition, lost=lost)
