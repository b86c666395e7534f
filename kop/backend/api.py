"""The backend's public interface: the names kop's handlers use, and the only module of kop/backend
they import (tests/unit/test_layering.py). The rest of kop/backend — the wire client, writers,
readers, caches, admin calls, the translation of Pulsar's errors — is its own business, reached
through these names and the methods of :class:`PulsarBackend` and the objects it hands out.
"""

from __future__ import annotations

from .errors import kafka_error_of
from .fleet import Fleet
from .kafka_topics import alter as alter_topic_configs, create as create_topic, describe as topic_configs
from .log_start import cached as cached_log_start, current as current_log_start, delete_records
from .partition_log import Batch, PartitionLog
from .policies import DEFAULT_CONFIG, TOPIC_CONFIG, ConfigEntry
from .pulsar import PulsarBackend
from .reader import PartitionReader
from .record_rules import check as check_records

__all__ = [
    # the backend, and the gateways of the fleet
    "PulsarBackend", "Fleet",
    # a partition's log: batches written in order, readers at an offset
    "Batch", "PartitionLog", "PartitionReader", "check_records",
    # log start offsets (DeleteRecords)
    "cached_log_start", "current_log_start", "delete_records",
    # topics and their configs
    "create_topic", "topic_configs", "alter_topic_configs", "ConfigEntry", "DEFAULT_CONFIG", "TOPIC_CONFIG",
    # an exception raised by the backend as the Kafka error it means (errors.py)
    "kafka_error_of",
]
