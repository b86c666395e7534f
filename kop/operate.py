"""``kop check`` and ``kop standalone``: the two commands an operator runs around ``kop serve``.

``check`` runs after the configuration loaded (a bad one has already been reported, every problem
at once, by config.load): it reaches Pulsar's service URL with the binary protocol's handshake and
its admin URL with the broker health check, and looks for the namespaces kop will use, with a
WARNING line for a topics namespace whose retention would drop unconsumed Kafka data
(backend/retention_check.py; a warning, not a problem). Exit 0 when everything answers, 1
otherwise; one line per finding.

``standalone`` is what ``make run`` runs: it starts a Pulsar standalone with the checkout's
scripts/pulsar.sh (fetched from Maven Central on first use, data in .run/pulsar) unless one already
answers at the admin URL, serves, and on Ctrl-C / SIGTERM stops kop and then the Pulsar it started
(only that one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from .backend import probe
from .config import Config

log = logging.getLogger("kop")

PULSAR_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pulsar.sh"
_LOCAL = ("127.0.0.1", "localhost", "::1")


def check(config: Config, out=print) -> int:
    p = config.pulsar
    out(f"configuration: ok (Kafka on {config.server.listen_host}:{config.server.listen_port}, "
        f"topics in {p.tenant}/{p.namespace}, entry format {config.topics.entry_format}, offsets "
        f"{config.offsets.mode}, metrics "
        f"{'on ' + config.metrics.listen_host + ':' + str(config.metrics.listen_port) if config.metrics.enabled else 'off'})")
    problems = 0
    try:
        out(asyncio.run(probe.pulsar_service(p.service_url, p.auth_token, p.operation_timeout_s)))
    except ConnectionError as exc:
        out(f"PROBLEM: service URL {p.service_url}: {exc}")
        problems += 1
    try:
        found, bad = asyncio.run(probe.pulsar_admin(p.admin_url, p.auth_token, f"{p.tenant}/{p.namespace}",
                                                    p.system_namespace, p.operation_timeout_s,
                                                    config.offsets.mode))
        for line in found:
            out(line)
        for line in bad:
            out(f"PROBLEM: {line}")
        problems += len(bad)
    except ConnectionError as exc:
        out(f"PROBLEM: admin URL {p.admin_url}: {exc}")
        problems += 1
    out("Pulsar reachable: kop can start" if not problems else f"{problems} problem(s): kop would not work")
    return 0 if not problems else 1


def standalone(config: Config, serve) -> int:
    """Start the local Pulsar if needed, run ``serve(config)``, stop that Pulsar afterwards."""
    if not PULSAR_SCRIPT.exists():
        log.error("kop standalone runs Pulsar with scripts/pulsar.sh of a kop checkout; %s is missing "
                  "(installed from a wheel? run a Pulsar yourself and use `kop serve`)", PULSAR_SCRIPT)
        return 2
    env = {**os.environ, "KOP_PULSAR_ADMIN_URL": config.pulsar.admin_url}
    started = False
    if subprocess.run([str(PULSAR_SCRIPT), "status"], env=env).returncode == 0:
        log.info("a Pulsar answers at %s: using it (it keeps running when kop stops)", config.pulsar.admin_url)
    else:
        hosts = {urlsplit(config.pulsar.admin_url).hostname, urlsplit(config.pulsar.service_url).hostname}
        if not hosts <= set(_LOCAL):
            log.error("no Pulsar answers at %s, and kop standalone only starts one on this machine "
                      "(127.0.0.1:8080 / :6650)", config.pulsar.admin_url)
            return 1
        log.info("starting a Pulsar standalone (scripts/pulsar.sh; the first start downloads it)")
        started = True
        try:
            subprocess.run([str(PULSAR_SCRIPT), "start"], env=env, check=True)
        except (subprocess.CalledProcessError, KeyboardInterrupt) as exc:
            _stop_pulsar(env)
            log.error("Pulsar did not start: %s", exc)
            return 1
    try:
        serve(config)
        return 0
    finally:
        if started:
            _stop_pulsar(env)


def _stop_pulsar(env: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave Pulsar running
    log.info("stopping the Pulsar standalone kop started")
    subprocess.run([str(PULSAR_SCRIPT), "stop"], env=env)
