"""The one mapping from a Pulsar-side failure (client result, admin REST answer) to a Kafka error
code. Only the Pulsar backend calls it: handlers see KafkaError, never a Pulsar exception.

Anything not recognised becomes NOT_LEADER_OR_FOLLOWER, which every Kafka client answers by
refreshing metadata and retrying: a Pulsar hiccup must never look like a permanent failure.
"""

from __future__ import annotations

import logging

from .. import metrics
from ..protocol.errors import ErrorCode, KafkaError
from . import admin as admin_api

log = logging.getLogger(__name__)

# Pulsar results a Kafka client should answer by refreshing metadata and retrying.
_RETRIABLE = {"AlreadyClosed", "NotConnected", "ConnectError", "ServiceUnitNotReady", "TopicTerminated",
              "ProducerBusy", "ProducerFenced", "LookupError", "BrokerMetadataError", "ProducerQueueIsFull",
              "MemoryBufferIsFull", "ProducerBlockedQuotaExceededError", "ProducerBlockedQuotaExceededException",
              "TooManyLookupRequestException", "ConsumerBusy", "ServiceUnavailable",
              # the wire client's names (Pulsar's ServerError values)
              "ServiceNotReady", "TopicTerminatedError", "TooManyRequests", "MetadataError", "PersistenceError"}
_EXACT = {"Timeout": ErrorCode.REQUEST_TIMED_OUT, "TopicNotFound": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          "MessageTooBig": ErrorCode.MESSAGE_TOO_LARGE}


def kafka_error_of(exc: BaseException) -> KafkaError:
    """The one mapping from a Pulsar-side failure to a Kafka error code."""
    if isinstance(exc, KafkaError):
        return exc
    result = getattr(exc, "result", None)  # pulsar-client's Result, or the wire client's own error
    name = getattr(result, "name", None) or type(exc).__name__
    metrics.PULSAR_ERRORS.labels(name).inc()
    if name in _EXACT:
        return KafkaError(_EXACT[name], str(exc))
    if name in ("AuthenticationError", "AuthorizationError") or isinstance(exc, admin_api.Denied):
        log.warning("Pulsar refused an operation (TOPIC_AUTHORIZATION_FAILED): %s", exc)
        return KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, str(exc))
    if name in _RETRIABLE or isinstance(exc, admin_api.Unreachable):
        return KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, str(exc))
    if isinstance(exc, admin_api.NotFound):
        return KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, str(exc))
    if isinstance(exc, admin_api.AdminError):
        return KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, str(exc))
    return KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, f"{type(exc).__name__}: {exc}")
