"""call_async (kop/backend/plumbing.py): the callback given to the Pulsar client must not keep what
the call created alive. The C++ client keeps a reader's creation callback as long as the reader; a
callback holding the future, which holds the reader, is a cycle through C++ that Python's collector
never sees, and every reader kop opened used to stay in memory that way."""

from __future__ import annotations

import asyncio
import gc
import weakref

import _pulsar

from kop.backend.plumbing import call_async

# Stands for the C++ side: what it holds is invisible to Python's collector, so a module-level list
# (never collected) is the faithful stand-in.
_HELD_BY_CPP: list = []


class Created:
    """What the client hands back (a reader, a producer)."""


def _create_and_keep_callback(callback) -> None:
    _HELD_BY_CPP.append(callback)
    callback(_pulsar.Result.Ok, Created())


def test_the_callback_lets_go_of_the_result_once_it_has_fired():
    async def go() -> weakref.ref:
        created = await call_async(_create_and_keep_callback)
        assert isinstance(created, Created)
        return weakref.ref(created)

    ref = asyncio.run(go())
    gc.collect()
    assert ref() is None, "the kept callback still reaches the created object"
    _HELD_BY_CPP.clear()


def test_a_failure_still_raises_and_a_second_call_of_the_callback_is_ignored():
    def fail_twice(callback) -> None:
        callback(_pulsar.Result.Timeout)
        callback(_pulsar.Result.Ok, Created())

    async def go() -> None:
        try:
            await call_async(fail_twice)
        except Exception as exc:  # WriteFailed carries the Pulsar result
            assert "Timeout" in repr(exc) or getattr(exc, "result", None) == _pulsar.Result.Timeout
        else:
            raise AssertionError("a failed call returned")
    asyncio.run(go())
