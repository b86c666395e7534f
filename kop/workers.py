"""``kop serve --workers N``: N gateway processes on one machine, so every core serves Kafka clients.

One Python process runs one event loop on one core. The supervisor here starts N workers (``kop serve
--worker-index i``, the same configuration otherwise) and keeps them running:

- every worker binds each listener's port with SO_REUSEPORT, so bootstrap connections spread over
  the workers, and a port of its own (the port + ``server.worker_port_offset`` + i), which its
  Metadata and FindCoordinator answers advertise;
- each worker is a member of the fleet (backend/fleet.py): partition leadership and the groups of
  the ``__offsets`` partitions spread over the workers exactly as over several machines, so a client
  produces to and fetches from several workers at once, and a group's coordinator is one worker;
- a worker that dies is started again (after 1 s, doubling up to 30 s while it keeps dying); the
  others take its groups over meanwhile, as in any fleet;
- SIGTERM / SIGINT stop every worker (each drains its requests), SIGKILL after ``STOP_TIMEOUT_S``;
- the supervisor answers on the metrics port: ``/metrics`` is every worker's, a ``worker`` label
  added to each sample; ``/health`` 200 while every worker runs; ``/ready`` 200 when every worker is.

Why processes and not threads: the GIL. Why not one port per worker only: a client needs one
bootstrap address, and a worker that dies must not take the bootstrap address with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from .config import Config
from .server.status_http import StatusServer

log = logging.getLogger("kop.workers")

STOP_TIMEOUT_S = 30.0
RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
SCRAPE_TIMEOUT_S = 5.0


def worker_count(config: Config) -> int:
    """How many workers to run: ``server.workers``, or one per core; one when the listen port is 0
    (an ephemeral port cannot be shared)."""
    if config.server.listen_port == 0:
        return 1
    if config.server.workers > 0:
        return config.server.workers
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


def worker_argv(argv: list[str], index: int) -> list[str]:
    """The worker's command line: the supervisor's own, plus its index."""
    return [sys.executable, "-m", "kop.cli", *argv, "--worker-index", str(index)]


class Supervisor:
    def __init__(self, config: Config, argv: list[str], count: int) -> None:
        self.config = config
        self.argv = argv
        self.count = count
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        m = config.metrics
        self.metrics_ports = [m.listen_port + config.server.worker_port_offset + i if m.listen_port else 0
                              for i in range(count)]
        self.status = StatusServer(m.listen_host, m.listen_port, self._all_running, self._all_ready,
                                   metrics_source=self._metrics, checked="workers") if m.enabled else None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if self.status is not None:
            await self.status.start()
        s = self.config.server
        log.info("starting %d workers: Kafka on %s:%d (shared), each also on port + %d + its index",
                 self.count, s.listen_host, s.listen_port, s.worker_port_offset)
        keepers = [asyncio.ensure_future(self._keep(i)) for i in range(self.count)]
        await stop.wait()
        self.stopping = True
        await self._stop_all()
        for keeper in keepers:
            keeper.cancel()
        if self.status is not None:
            await self.status.close()
        log.info("all workers stopped")
        return 0

    async def _keep(self, index: int) -> None:
        """Run worker ``index``; start it again whenever it dies, until the supervisor stops."""
        failures = 0
        while not self.stopping:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*worker_argv(self.argv, index))
            self.procs[index] = proc
            code = await proc.wait()
            if self.stopping:
                return
            failures = failures + 1 if time.monotonic() - started < 60 else 1
            delay = RESTART_BACKOFF_S[min(failures - 1, len(RESTART_BACKOFF_S) - 1)]
            log.error("worker %d exited with code %s; starting it again in %.0f s", index, code, delay)
            await asyncio.sleep(delay)

    async def _stop_all(self) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), STOP_TIMEOUT_S)
        except asyncio.TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.warning("worker pid %d still running after %.0f s: killing it", proc.pid, STOP_TIMEOUT_S)
                    proc.kill()

    # -- the status endpoint --------------------------------------------------------------------

    def _all_running(self) -> bool:
        return len(self.procs) == self.count and all(p.returncode is None for p in self.procs.values())

    async def _all_ready(self) -> bool:
        answers = await asyncio.gather(*(_http_get(self.config.metrics.listen_host, port, "/ready")
                                         for port in self.metrics_ports), return_exceptions=True)
        return all(isinstance(a, tuple) and a[0] == 200 for a in answers)

    async def _metrics(self) -> bytes:
        texts = await asyncio.gather(*(_http_get(self.config.metrics.listen_host, port, "/metrics")
                                       for port in self.metrics_ports), return_exceptions=True)
        return merged_metrics({str(i): t[1].decode() for i, t in enumerate(texts)
                               if isinstance(t, tuple) and t[0] == 200})


def merged_metrics(texts: dict[str, str]) -> bytes:
    """Several workers' Prometheus texts as one, each sample labelled with its worker."""
    families: dict[str, Metric] = {}
    for worker, text in texts.items():
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            for sample in family.samples:
                merged.samples.append(sample._replace(labels={**sample.labels, "worker": worker}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self):
        return self.families


async def _http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), SCRAPE_TIMEOUT_S)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(reader.read(), SCRAPE_TIMEOUT_S)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def supervise(config: Config, argv: list[str], count: int) -> int:
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(Supervisor(config, argv, count).run())
