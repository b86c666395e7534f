"""Limits one gateway puts on all its connections together, so no client (or crowd of clients) can
make it hold memory without bound. Each connection also bounds itself (connection.py: frame size,
requests in flight, a full write buffer pauses reading).

- **Connections**, in total and per client address (Kafka's ``max.connections`` and
  ``max.connections.per.ip``): one over either limit is closed at once, with one log line. Kafka
  does the same; its clients retry with back-off.
- **Queued request bytes** (Kafka's ``queued.max.request.bytes``): the frames received and not yet
  answered, summed over every connection. Over the budget, every connection stops reading until
  answers bring it back under; requests already received always finish, so this cannot deadlock.
  What a paused connection may still hold is one partial frame (at most ``max_frame_size``).
- **Idle connections** (Kafka's ``connections.max.idle.ms``): a connection with nothing in flight
  that has sent nothing for that long is closed (see ``Gateway._close_idle``).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Protocol

log = logging.getLogger(__name__)

PAUSE_LOG_INTERVAL_S = 60.0  # a full budget is said at most this often


class Pausable(Protocol):
    def budget_changed(self) -> None: ...


class Refusal(str):
    """Why a connection is refused (its log line), and by which limit (``kind``, the metric's label)."""

    def __new__(cls, reason: str, kind: str) -> "Refusal":
        refusal = super().__new__(cls, reason)
        refusal.kind = kind
        return refusal


class GatewayLimits:
    def __init__(self, max_connections: int, max_connections_per_address: int, queued_bytes_max: int) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_connections_per_address
        self.queued_bytes_max = queued_bytes_max
        self.connections = 0
        self.by_address: collections.Counter[str] = collections.Counter()
        self.queued_bytes = 0
        self.refused = 0  # connections refused since start
        self._waiting: set[Pausable] = set()  # connections that paused on the budget
        self.budget_pauses = 0  # times the budget filled up
        self._last_pause_log = -PAUSE_LOG_INTERVAL_S

    # -- connections -----------------------------------------------------------------------------

    def admit(self, address: str) -> Refusal | None:
        """Count a new connection in, or say why it is refused (then nothing is counted)."""
        if self.connections >= self.max_connections:
            reason = Refusal(f"{self.connections} connections open, the limit (server.max_connections)", "total")
        elif self.by_address[address] >= self.max_per_address:
            reason = Refusal(f"{self.by_address[address]} connections open from {address}, the limit "
                             f"(server.max_connections_per_address)", "per_address")
        else:
            self.connections += 1
            self.by_address[address] += 1
            return None
        self.refused += 1
        return reason

    def leave(self, address: str) -> None:
        self.connections -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    # -- queued request bytes --------------------------------------------------------------------

    def over_budget(self) -> bool:
        return self.queued_bytes >= self.queued_bytes_max

    def take(self, size: int) -> None:
        self.queued_bytes += size

    def give_back(self, size: int) -> None:
        was_over = self.over_budget()
        self.queued_bytes -= size
        if was_over and not self.over_budget() and self._waiting:
            waiting, self._waiting = self._waiting, set()
            for conn in waiting:
                conn.budget_changed()

    def wait_for_budget(self, conn: Pausable) -> None:
        """``conn`` paused on the budget: tell it when the budget has room again."""
        if not self._waiting:
            self.budget_pauses += 1
            now = time.monotonic()
            if now - self._last_pause_log >= PAUSE_LOG_INTERVAL_S:
                self._last_pause_log = now
                log.info("request budget full (%d bytes queued, server.queued_max_request_bytes=%d): connections "
                         "stop reading until answers catch up (%d times so far)", self.queued_bytes,
                         self.queued_bytes_max, self.budget_pauses)
        self._waiting.add(conn)

    def forget(self, conn: Pausable) -> None:
        self._waiting.discard(conn)
