"""pulsar-client plumbing: the C++ client's callback API turned into asyncio futures, and the
producer/reader configurations kop uses. Callbacks arrive on Pulsar client threads; each result is
handed to the event loop with ``call_soon_threadsafe`` and nothing else is touched from there."""

from __future__ import annotations

import asyncio
from typing import Any

import _pulsar
import pulsar

from .writer import WriteFailed, producer_options


def pulsar_client(service_url: str, kwargs: dict[str, Any]) -> _pulsar.Client:
    return pulsar.Client(service_url, **kwargs)._client


async def call_async(method, *args) -> Any:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    pending = [future]

    def done(result, value=None) -> None:
        # The callback lets go of the future once it fires: the C++ client may keep the callback as
        # long as the object it created (a reader keeps its creation callback), and a callback
        # holding the future, which holds that object, is a cycle Python's collector cannot see.
        # Every reader kop ever opened stayed in memory that way, prefetched entries and all.
        if pending:
            loop.call_soon_threadsafe(_resolve, pending.pop(), result, value)
    method(*args, done)
    return await future


def _resolve(future: asyncio.Future, result: Any, value: Any) -> None:
    if future.done():
        return
    if isinstance(result, _pulsar.Result):
        if result == _pulsar.Result.Ok:
            future.set_result(value)
        else:
            future.set_exception(WriteFailed(result))
    else:  # callbacks of the form (value) or (result, value) with value first
        future.set_result(result if value is None else value)


def producer_conf(entry_format: str) -> _pulsar.ProducerConfiguration:
    conf = _pulsar.ProducerConfiguration()
    opts = producer_options(entry_format)
    conf.batching_enabled(opts["batching_enabled"])
    conf.max_pending_messages(opts["max_pending_messages"])
    conf.block_if_queue_full(False)
    if opts["batching_enabled"]:
        conf.batching_max_messages(opts["batching_max_messages"])
        conf.batching_max_allowed_size_in_bytes(opts["batching_max_allowed_size_in_bytes"])
        conf.batching_max_publish_delay_ms(opts["batching_max_publish_delay_ms"])
    conf.send_timeout_millis(30_000)
    return conf


def reader_conf(inclusive: bool = False, prefetch: int = 1000) -> _pulsar.ReaderConfiguration:
    conf = _pulsar.ReaderConfiguration()
    conf.receiver_queue_size(prefetch)
    if inclusive:
        conf.start_message_id_inclusive(True)
    return conf
