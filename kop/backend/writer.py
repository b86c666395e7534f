"""Appending Kafka batches to one Pulsar partition, one Kafka batch per Pulsar entry.

The entry is prepared by batch_codec.py (``kafka`` format: the batch as sent; ``pulsar`` format: a
Pulsar batch entry of one message per record). It is written to the Pulsar connection in the same
event-loop step as :meth:`PartitionWriter.write`, by a producer that keeps the order across
reconnects (wire/producer.py); its position (ledger, entry, batch index 0) packs into the Kafka base
offset.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

from ..mapping import offsets
from ..tasks import close_within
from .batch_codec import Entry
from .wire.errors import WireError
from .wire.producer import WireProducer

log = logging.getLogger(__name__)

WriteFailed = WireError


@dataclass(slots=True)
class Appended:
    base_offset: int
    ledger_id: int
    entry_id: int
    records: int


class PartitionWriter:
    """One Pulsar producer on one partition topic."""

    def __init__(self, producer: WireProducer, topic_url: str) -> None:
        self.producer = producer
        self.topic_url = topic_url

    @property
    def failed(self) -> bool:
        return self.producer.failed is not None or self.producer.closed

    def write(self, entry: Entry, records_count: int, done: Callable[[Appended | Exception], None]) -> None:
        """Write one entry now (synchronously); ``done`` gets its :class:`Appended` or the error."""
        def receipt(result) -> None:
            if isinstance(result, Exception):
                done(result)
            else:
                ledger, entry_id = result
                done(Appended(offsets.pack(ledger, entry_id, 0), ledger, entry_id, records_count))
        self.producer.write(entry.metadata, entry.payload, entry.num_messages, receipt)

    def send(self, entry: Entry, records_count: int) -> asyncio.Future:
        """:meth:`write` with a future of the :class:`Appended`."""
        future = asyncio.get_running_loop().create_future()

        def done(result) -> None:
            if not future.done():
                future.set_exception(result) if isinstance(result, Exception) else future.set_result(result)
        self.write(entry, records_count, done)
        return future

    async def close(self) -> None:
        await close_within(self.producer.close(), f"closing producer on {self.topic_url}", logger=log)
