"""pulsar-client plumbing: the C++ client's callback API turned into asyncio futures, and the
producer/reader configurations kop uses. Callbacks arrive on Pulsar client threads; each result is
handed to the event loop with ``call_soon_threadsafe`` and nothing else is touched from there."""

from __future__ import annotations

import asyncio
from typing import Any

import _pulsar
import pulsar



class CallFailed(Exception):
    """A pulsar-client call answered with a result other than Ok."""

    def __init__(self, result: _pulsar.Result, detail: str = "") -> None:
        super().__init__(f"Pulsar refused the call: {result}{' ' + detail if detail else ''}")
        self.result = result


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
            future.set_exception(CallFailed(result))
    else:  # callbacks of the form (value) or (result, value) with value first
        future.set_result(result if value is None else value)


def producer_conf(batching: bool = False) -> _pulsar.ProducerConfiguration:
    conf = _pulsar.ProducerConfiguration()
    conf.batching_enabled(batching)
    conf.block_if_queue_full(False)
    conf.send_timeout_millis(30_000)
    return conf


def reader_conf(inclusive: bool = False, prefetch: int = 1000) -> _pulsar.ReaderConfiguration:
    conf = _pulsar.ReaderConfiguration()
    conf.receiver_queue_size(prefetch)
    if inclusive:
        conf.start_message_id_inclusive(True)
    return conf
