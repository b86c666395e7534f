"""What a handler gets besides its request: who asked, and the services it may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..protocol.messages import RequestHeader

if TYPE_CHECKING:
    from ..backend.pulsar import PulsarBackend
    from ..config import Config
    from ..backend.fleet import Fleet
    from ..groups.coordinator import GroupCoordinator
    from ..groups.ownership import Ownership


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    backend: "PulsarBackend"
    config: "Config"
    client_address: str
    coordinator: "GroupCoordinator | None" = None
    fleet: "Fleet | None" = None
    ownership: "Ownership | None" = None

    @property
    def version(self) -> int:
        return self.header.api_version
