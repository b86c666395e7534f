"""InitProducerId (key 22), versions 0-5.

Without a ``transactional_id``: an idempotent producer's id. Ids are unique across gateway restarts
and across every gateway in front of the same Pulsar: each is derived from the Pulsar position of a
message kop writes to ``<system namespace>/__kop_producer_ids`` (backend/pulsar.py), so no counter
has to be coordinated. The epoch starts at 0; a producer that asks again with its id and epoch
(KIP-360, v3+) gets a new id rather than a bumped epoch, which has the same effect for an
idempotent producer.

With a ``transactional_id`` (scoped to the client's namespace like group ids): asked of the id's
transaction coordinator (kop/txn/coordinator.py; NOT_COORDINATOR elsewhere). A transaction the id
left open is aborted first; the answer is a new producer id at epoch 0, and the previous one is
fenced (PRODUCER_FENCED on its next request). ``transaction_timeout_ms`` above
``transactions.max_timeout_ms`` gets INVALID_TRANSACTION_TIMEOUT.

Deviation from Kafka: a transactional id gets a new producer id on every InitProducerId where Kafka
bumps the epoch of the same one (kop/txn/state.py says why); clients take whatever id they are given.
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
        pid, epoch = -1, -1
        if ctx.version >= 3:
            pid, epoch = request.producer_id, request.producer_epoch
        try:
            code, producer_id, producer_epoch = await ctx.transactions.init_producer_id(
                ctx.group_key(request.transactional_id), request.transaction_timeout_ms, pid, epoch)
        except KafkaError as exc:
            code, producer_id, producer_epoch = exc.code, -1, -1
        return resp(throttle_time_ms=0, error_code=code, producer_id=producer_id, producer_epoch=producer_epoch)
    try:
        producer_id = await ctx.backend.new_producer_id()
    except KafkaError as exc:
        log.warning("allocating a producer id failed: %s", exc)
        code = ErrorCode.COORDINATOR_NOT_AVAILABLE if exc.code != ErrorCode.REQUEST_TIMED_OUT else exc.code
        return resp(throttle_time_ms=0, error_code=code, producer_id=-1, producer_epoch=-1)
    return resp(throttle_time_ms=0, error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, producer_id=-1, producer_epoch=-1)
