"""Logging set-up: text or JSON lines, with the client connection a line was logged for.

Per-connection context: each Kafka connection (server/connection.py) owns a ``contextvars.Context``
in which :data:`CONNECTION` holds its client address, and later its client id and SASL principal.
Every request task of that connection runs in a copy of it, so any line logged while serving the
request — in a handler, the coordinator, the Pulsar backend — carries them, without passing them
around. Outside a connection the fields are absent.

Text: ``<time> <LEVEL> <logger>: <message> [client=<addr> client_id=<id> principal=<p>]``.
JSON (``log_format = "json"``): one object per line with ``time`` (ISO 8601, UTC), ``level``,
``logger``, ``message``, the context fields when set, and ``exception`` (the traceback) when any.

Everything kop logs goes through here, the Pulsar side included (kop speaks Pulsar's protocol itself,
kop/backend/wire; no client library logs on its own).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from dataclasses import dataclass

FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    client: str
    client_id: str | None = None
    principal: str | None = None

    def fields(self) -> dict[str, str]:
        out = {"client": self.client}
        if self.client_id:
            out["client_id"] = self.client_id
        if self.principal:
            out["principal"] = self.principal
        return out


CONNECTION: contextvars.ContextVar[ConnectionInfo | None] = contextvars.ContextVar("kop_connection", default=None)


class _ContextFilter(logging.Filter):
    """Copies the connection context onto each record (``record.kop_connection``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.kop_connection = CONNECTION.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        info = getattr(record, "kop_connection", None)
        if info is None:
            return line
        context = " ".join(f"{k}={v}" for k, v in info.fields().items())
        head, sep, rest = line.partition("\n")  # a traceback stays below the first line
        return f"{head} [{context}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        info = getattr(record, "kop_connection", None)
        if info is not None:
            out.update(info.fields())
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per admin call is noise
