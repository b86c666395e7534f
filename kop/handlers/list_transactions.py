"""ListTransactions (key 66), versions 0-2.

The transactional ids this gateway coordinates (``kafka-transactions.sh list`` asks every broker
and merges), in the client's namespace only, filtered as Kafka filters them: by state, by producer
id, by how long the transaction has run (v1), by a regular expression on the id (v2). An unknown
state filter is listed back in ``unknown_state_filters``.
"""

from __future__ import annotations

import re
import time

from ..groups import scope
from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 66
# Kafka's transaction states (TransactionState.java); kop's coordinator uses the first six.
STATES = {"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead",
          "PrepareEpochFence"}


@handler(API_KEY, 0, 2)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    states = set(request.state_filters or [])
    unknown = sorted(states - STATES)
    producers = set(request.producer_id_filters or [])
    duration = request.duration_filter if ctx.version >= 1 and request.duration_filter is not None else -1
    pattern = request.transactional_id_pattern if ctx.version >= 2 else None
    try:
        matcher = re.compile(pattern) if pattern else None
    except re.error:
        return resp(throttle_time_ms=0, error_code=ErrorCode.INVALID_REQUEST, unknown_state_filters=[],
                    transaction_states=[])
    now = int(time.time() * 1000)
    listed = []
    for txn in ctx.transactions.listed():
        namespace, tid = scope.split(txn.transactional_id)
        if namespace != ctx.group_namespace:
            continue
        if (states and txn.state.value not in states) or (producers and txn.producer_id not in producers):
            continue
        if duration >= 0 and not (txn.state.open and now - txn.started_ms > duration):
            continue
        if matcher is not None and not matcher.fullmatch(tid):
            continue
        listed.append(resp.TransactionState(transactional_id=tid, producer_id=txn.producer_id,
                                            transaction_state=txn.state.value))
    return resp(throttle_time_ms=0, error_code=ErrorCode.NONE, unknown_state_filters=unknown,
                transaction_states=listed)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, unknown_state_filters=[],
                                   transaction_states=[])
