"""Shared by the fault tests: kill -9 a gateway on a schedule and start it again on the same port."""

from __future__ import annotations

import signal
import threading
import time


class Killer(threading.Thread):
    """Every ``every_s`` seconds, ``kills`` times: stop the current gateway with ``sig`` (SIGKILL by
    default) and start a new one on its port with the same arguments. ``current`` is always the
    gateway to use now; ``exit_codes`` and ``stopped_gateways`` say how the stopped ones ended."""

    def __init__(self, gateways, first, args: tuple[str, ...], kills: int, every_s: float = 1.5,
                 env: dict[str, str] | None = None, sig: int = signal.SIGKILL) -> None:
        super().__init__(daemon=True)
        self.gateways, self.current, self.args, self.env = gateways, first, args, env
        self.kills, self.every_s, self.sig = kills, every_s, sig
        self.stopped = threading.Event()
        self.restart_s: list[float] = []
        self.exit_codes: list[int] = []
        self.stopped_gateways: list = []

    def run(self) -> None:
        for _ in range(self.kills):
            if self.stopped.wait(self.every_s):
                return
            self.exit_codes.append(self.current.stop(self.sig))
            self.stopped_gateways.append(self.current)
            down_at = time.monotonic()
            for attempt in range(10):  # Pulsar may take a moment to drop the dead one's registration
                try:
                    self.current = self.gateways(*self.args, env=self.env, port=self.current.port)
                    break
                except RuntimeError:
                    if attempt == 9:
                        raise
                    time.sleep(1)
            self.restart_s.append(round(time.monotonic() - down_at, 1))

    def finish(self, timeout: float = 120) -> None:
        self.stopped.set()
        self.join(timeout)
