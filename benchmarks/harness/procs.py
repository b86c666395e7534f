"""Processes: CPU sampling from /proc (no psutil needed), RSS, running a tool with its log, ports.

CPU% counts 100 as one core. A sampler target is a process tree (pid, None), a process alone
(pid, -1) or one thread (pid, tid); "other" is the machine's busy time minus the processes sampled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """Resident set size of one process (MiB), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def find_pids(needle: bytes) -> list[int]:
    """Processes whose command line contains ``needle`` (e.g. the Pulsar standalone's main class)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def wait_for_quiet(below_pct: float = 40.0, max_s: float = 120.0) -> float:
    """Wait until the whole machine is below ``below_pct`` busy (100 = one core) over a second, e.g.
    while freshly started JVMs finish warming up; returns the seconds waited (at most ``max_s``)."""
    started = time.monotonic()
    ncpu = os.cpu_count() or 1
    busy0, total0 = _machine_ticks()
    while time.monotonic() - started < max_s:
        time.sleep(1.0)
        busy1, total1 = _machine_ticks()
        if total1 > total0 and 100.0 * ncpu * (busy1 - busy0) / (total1 - total0) < below_pct:
            break
        busy0, total0 = busy1, total1
    return time.monotonic() - started


def run_tool(cmd: list[str], logfile: Path, timeout: float, sampler: "CpuSampler",
             targets: dict[str, tuple[int, int | None]], env: dict | None = None) -> tuple[int | None, str, float]:
    """Run a command with stdout+stderr in ``logfile``, sampling CPU until it exits (then
    ``sampler.summary(window)`` gives a window's figures); returns (rc or None on timeout, output, exit time)."""
    with open(logfile, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                env={**os.environ, **(env or {})})
        sampler.start({"client": (proc.pid, None), **targets})
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group only
            proc.wait()
            rc = None
        sampler.halt()
    return rc, logfile.read_text(errors="replace"), time.time()


def _proc_ticks(pid: int, tid: int | None = None) -> int | None:
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_ticks(pid: int) -> int:
    """CPU ticks (utime + stime) of a process and all its descendants."""
    return _tree_ticks(pid, _children_map())


def _tree_ticks(pid: int, kids: dict[int, list[int]]) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        t = _proc_ticks(p)
        if t is not None:
            total += t
        stack.extend(kids.get(p, ()))
    return total


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts[:8]) - idle, sum(parts[:8])


class CpuSampler:
    """Samples CPU% (100 = one core) of named processes/threads and of the whole machine.

    Targets: name -> (pid, None) for a process tree, (pid, -1) for the process alone (not its
    children), (pid, tid) for one thread. "other" is the machine's busy time minus the processes.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.targets: dict[str, tuple[int, int | None]] = {}
        self.samples: list[tuple[float, float, dict[str, float]]] = []  # (wall start, wall end, pct)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, targets: dict[str, tuple[int, int | None]]) -> None:
        self.targets = {k: v for k, v in targets.items() if v[0]}
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> tuple[dict[str, int], tuple[int, int]]:
        kids = _children_map()
        out = {}
        for name, (pid, tid) in self.targets.items():
            if tid is None:
                out[name] = _tree_ticks(pid, kids)
            else:
                out[name] = _proc_ticks(pid, tid if tid > 0 else None) or 0
        return out, _machine_ticks()

    def _run(self) -> None:
        ncpu = os.cpu_count() or 1
        prev, prev_m = self._read()
        prev_t = time.time()
        last = False
        while not last:
            last = self._stop.wait(self.interval)
            cur, cur_m = self._read()
            now = time.time()
            if now - prev_t < 0.1 and not last:  # ticks are 10 ms: too short a span is all noise
                continue
            pct: dict[str, float] = {}
            accounted = 0.0
            for name, (_, tid) in self.targets.items():
                # A process of a tree that exits takes its ticks with it: never below 0.
                pct[name] = max(0.0, 100.0 * (cur[name] - prev[name]) / CLK_TCK / (now - prev_t))
                if tid in (None, -1):  # threads are already inside their process
                    accounted += pct[name]
            dm_busy, dm_total = cur_m[0] - prev_m[0], cur_m[1] - prev_m[1]
            pct["machine_busy"] = 100.0 * ncpu * dm_busy / dm_total if dm_total else 0.0
            pct["other"] = max(0.0, pct["machine_busy"] - accounted)
            self.samples.append((prev_t, now, pct))
            prev, prev_m, prev_t = cur, cur_m, now

    def halt(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def stop(self, window: tuple[float, float] | None = None) -> dict[str, dict[str, float]]:
        self.halt()
        return self.summary(window)

    def summary(self, window: tuple[float, float] | None = None) -> dict[str, dict[str, float]]:
        """Time-weighted average and peak per target, over window (wall clock, epoch s) if given."""
        samples = self.samples
        if window:
            inside = [(max(a, window[0]), min(b, window[1]), p) for a, b, p in samples
                      if min(b, window[1]) > max(a, window[0])]
            samples = inside or samples
        out: dict[str, dict[str, float]] = {}
        for name in [*self.targets, "other", "machine_busy"]:
            vals = [(b - a, p[name]) for a, b, p in samples if name in p]
            weight = sum(w for w, _ in vals)
            if weight > 0:
                out[name] = {"avg": round(sum(w * v for w, v in vals) / weight, 1),
                             "max": round(max(v for _, v in vals), 1)}
        return out


