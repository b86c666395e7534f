"""The one exception type of the wire client. ``name`` is Pulsar's own name for the failure (a
ServerError of the protocol, or a client-side condition such as ``Timeout`` or ``ConnectError``), so
backend/errors.py maps it to a Kafka error code by name, as it does for pulsar-client results."""

from __future__ import annotations

from .commands import SERVER_ERRORS

# Failures after which a fresh lookup and a new connection may succeed.
RETRIABLE = frozenset({"ServiceNotReady", "ConnectError", "Timeout", "TooManyRequests", "MetadataError",
                       "PersistenceError", "AlreadyClosed", "LookupError", "UnknownError"})


class WireError(Exception):
    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message

    @property
    def result(self) -> "WireError":
        """Duck-typed like a pulsar-client result (``.name``) for the error mapping."""
        return self

    @property
    def retriable(self) -> bool:
        return self.name in RETRIABLE


def server_error(code: int, message: str) -> WireError:
    return WireError(SERVER_ERRORS.get(code, f"ServerError{code}"), message)
