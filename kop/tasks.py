"""Background work: loops that run every N seconds, and closes that may not take forever.

Every background loop of the gateway is a :class:`Periodic`: the cursor sync (groups/cursor_sync.py),
the ownership of ``__offsets`` partitions (groups/ownership.py), the consumer-lag metric
(groups/lag.py), member expiry and the offsets cleaner (groups/coordinator.py), idle readers
(backend/pulsar.py) and idle connections (app.py). They share three rules:

- **The interval comes first.** A round runs ``interval_s`` after the loop starts, then
  ``interval_s`` after the end of the previous round (rounds never overlap; a slow round delays the
  next one rather than piling up). A loop that must act at once calls its work itself before
  starting (ownership does).
- **A failed round is logged and the loop goes on.** The exception is logged with the loop's name
  and its traceback, on the logger of the module that owns the loop; the next round runs at the
  next interval. A background loop never dies of an error: only :meth:`Periodic.stop` ends it.
- **Stopping is one bounded wait.** :meth:`Periodic.stop` wakes a loop that is waiting for its
  next round at once; a round in progress gets ``stop_wait_s`` to finish (a cursor-sync flush
  completes, say), after which it is cancelled (at once with ``stop_wait_s=0``: the lag metric's
  rounds are not worth waiting for). So a gateway stops in bounded time even when Pulsar does
  not answer.

:func:`close_within` is the other repeated shape: await a close (a producer, a registration, a final
flush) for at most :data:`CLOSE_TIMEOUT_S`; what does not finish in time, or fails, is logged
and left behind (the broker drops a client's producers with its connection anyway).

This module imports nothing from kop, so backend/, groups/ and server/ may all use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# How long a close or a final round may take before it is abandoned (seconds): long enough for a
# broker round trip under load, short enough that a stopping gateway does not hang on a dead Pulsar.
CLOSE_TIMEOUT_S = 10.0


class Periodic:
    """Runs ``work()`` every ``interval_s`` seconds in a task named after the loop (module docstring)."""

    def __init__(self, name: str, interval_s: float, work: Callable[[], Awaitable[object]], *,
                 logger: logging.Logger = log, stop_wait_s: float = CLOSE_TIMEOUT_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be positive, not {interval_s}")
        self.name = name
        self.interval_s = float(interval_s)
        self.stop_wait_s = stop_wait_s
        self._work = work
        self._log = logger
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.rounds = 0    # rounds finished, failed ones included
        self.failures = 0  # rounds that raised

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the loop (again, after :meth:`stop`); nothing happens if it runs already."""
        if self.running:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kop-" + self.name.replace(" ", "-"))

    async def stop(self) -> None:
        """End the loop: at once if it is waiting, else once the round in progress finished or
        ``stop_wait_s`` passed (then the round is cancelled)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None or task is asyncio.current_task():
            return
        if self.stop_wait_s <= 0:
            task.cancel()  # this loop's rounds are not worth waiting for
        elif not (await asyncio.wait([task], timeout=self.stop_wait_s))[0]:
            self._log.warning("%s: the round in progress did not finish within %.0f s; cancelled", self.name,
                              self.stop_wait_s)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._stopping.wait()
                return
            except TimeoutError:
                pass
            try:
                await self._work()
            except Exception:  # never let a background loop die (module docstring)
                self.failures += 1
                self._log.exception("%s: round failed; next one in %.1f s", self.name, self.interval_s)
            self.rounds += 1


async def close_within(closing: Awaitable[object], what: str, timeout_s: float = CLOSE_TIMEOUT_S, *,
                       logger: logging.Logger = log) -> bool:
    """Await ``closing`` for at most ``timeout_s``: True if it finished, False if it failed or took
    too long (logged at debug level with ``what``, and not raised: closing is best effort)."""
    try:
        await asyncio.wait_for(closing, timeout_s)
        return True
    except asyncio.TimeoutError:
        logger.debug("%s: not finished within %.0f s", what, timeout_s)
    except Exception as exc:
        logger.debug("%s: %r", what, exc)
    return False
