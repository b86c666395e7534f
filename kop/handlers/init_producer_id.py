"""InitProducerId (key 22), versions 0-5.

Gives an idempotent producer its id. Ids are unique across gateway restarts and across every
gateway in front of the same Pulsar: each is derived from the Pulsar position of a message kop
writes to ``<system namespace>/__kop_producer_ids`` (backend/pulsar.py), so no counter has to be
coordinated. The epoch starts at 0; a producer that asks again with its id and epoch
(KIP-360, v3+) gets a new id rather than a bumped epoch, which has the same effect for an
idempotent producer.

Deviations from Kafka: a ``transactional_id`` is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
(transactions are not served); ``transaction_timeout_ms`` is ignored.
"""

from __future__ import annotations

import logging

from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 22
log = logging.getLogger(__name__)


@handler(API_KEY, 0, 5)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    if request.transactional_id:
        return resp(throttle_time_ms=0, error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    producer_id=-1, producer_epoch=-1)
    try:
        producer_id = await ctx.backend.new_producer_id()
    except KafkaError as exc:
        log.warning("allocating a producer id failed: %s", exc)
        code = ErrorCode.COORDINATOR_NOT_AVAILABLE if exc.code != ErrorCode.REQUEST_TIMED_OUT else exc.code
        return resp(throttle_time_ms=0, error_code=code, producer_id=-1, producer_epoch=-1)
    return resp(throttle_time_ms=0, error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, producer_id=-1, producer_epoch=-1)
