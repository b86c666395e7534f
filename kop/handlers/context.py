"""What a handler gets besides its request: who asked, and the services it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..groups import scope
from ..protocol.messages import RequestHeader

if TYPE_CHECKING:
    from ..backend.pulsar import PulsarBackend
    from ..config import Config
    from ..backend.fleet import Fleet
    from ..groups.coordinator import GroupCoordinator
    from ..groups.ownership import Ownership
    from ..server.listeners import Listener
    from ..server.sasl_session import SaslSession


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    backend: "PulsarBackend"
    config: "Config"
    client_address: str
    coordinator: "GroupCoordinator"
    fleet: "Fleet"
    ownership: "Ownership"
    session: "SaslSession | None" = None
    listener: "Listener | None" = None

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
