"""What a handler gets besides its request: who asked, and the services it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..groups import scope
from ..protocol.errors import ErrorCode
from ..protocol.messages import RequestHeader
from ..protocol.sasl import Credentials

if TYPE_CHECKING:
    from ..backend.api import Fleet, PulsarBackend
    from ..config import Config
    from ..groups.coordinator import GroupCoordinator
    from ..groups.ownership import Ownership
    from ..txn.coordinator import TransactionCoordinator
    from ..txn.view import TransactionView


class Session(Protocol):
    """What a handler may ask of its connection's SASL state (server/sasl_session.py)."""

    required: bool
    mechanisms: list[str]
    principal: Credentials | None

    @property
    def groups_allowed(self) -> bool: ...

    def describe(self) -> str: ...

    def handshake(self, mechanism: str, version: int) -> ErrorCode: ...

    async def authenticate(self, token: bytes) -> tuple[ErrorCode, str | None, bytes]: ...


class Listener(Protocol):
    """The listener a client connected through (server/listeners.py): Metadata answers with its addresses."""

    name: str


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    backend: "PulsarBackend"
    config: "Config"
    client_address: str
    coordinator: "GroupCoordinator"
    fleet: "Fleet"
    ownership: "Ownership"
    session: Session | None = None
    listener: Listener | None = None
    transactions: "TransactionCoordinator | None" = None  # kop/txn: the coordinator of this gateway
    txn_view: "TransactionView | None" = None            # and its view of every transaction

    @property
    def version(self) -> int:
        return self.header.api_version

    @property
    def group_namespace(self) -> str | None:
        """The namespace whose groups this client sees (None: the default namespace's)."""
        principal = self.session.principal if self.session is not None else None
        if principal is None:
            return None
        path = f"{principal.tenant}/{principal.namespace}"
        return None if path == f"{self.config.pulsar.tenant}/{self.config.pulsar.namespace}" else path

    def group_key(self, group_id: str) -> str:
        """The coordinator's id of the group this client calls ``group_id`` (groups/scope.py)."""
        return scope.scoped(group_id, self.group_namespace)
