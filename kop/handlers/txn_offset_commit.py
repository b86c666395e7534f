"""TxnOffsetCommit (key 28), versions 0-4.

A transactional producer's consumed offsets, sent to the group's coordinator after AddOffsetsToTxn.
The member is checked as for OffsetCommit from v3 (KIP-447: generation, member id, static instance,
so a zombie of a rebalanced group is fenced); the producer's transaction must be open in this
gateway's view of ``__transactions`` (else PRODUCER_FENCED, INVALID_PRODUCER_EPOCH or
INVALID_TXN_STATE). The offsets are stored apart and become the group's only when the transaction
commits (groups/txn_offsets.py); OffsetFetch with ``require_stable`` answers UNSTABLE_OFFSET_COMMIT
for them until then.

Deviation from Kafka: v5 (transactions v2, KIP-890) is not served (see AddPartitionsToTxn).
"""

from __future__ import annotations

import logging

from ..groups.store import NotOwner
from ..protocol.errors import ErrorCode
from .offset_commit import sort_commits
from .registry import handler, response_class

API_KEY = 28
log = logging.getLogger(__name__)


@handler(API_KEY, 0, 4, group_api=True)
async def serve(ctx, request):
    coordinator = ctx.coordinator
    group = ctx.group_key(request.group_id)
    if not request.group_id:
        error = ErrorCode.INVALID_GROUP_ID
    elif ctx.version >= 3:
        error = coordinator.check_commit(group, request.generation_id, request.member_id, request.group_instance_id)
    else:
        error = coordinator.status(group)
    errors, commits = await sort_commits(ctx, request.topics, error, ctx.version >= 2)
    if commits:
        try:
            code = await coordinator.commit_transactional(group, ctx.group_key(request.transactional_id),
                                                          request.producer_id, request.producer_epoch, commits)
        except NotOwner:
            code = ErrorCode.NOT_COORDINATOR
        except Exception as exc:
            log.warning("group %s: storing transactional offsets failed: %r", request.group_id, exc)
            code = ErrorCode.COORDINATOR_NOT_AVAILABLE
        errors.update({key: code for key in commits})
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, topics=[resp.TxnOffsetCommitResponseTopic(name=t.name, partitions=[
        resp.TxnOffsetCommitResponseTopic.TxnOffsetCommitResponsePartition(
            partition_index=p.partition_index, error_code=errors[(t.name, p.partition_index)])
        for p in t.partitions]) for t in request.topics])


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, topics=[resp.TxnOffsetCommitResponseTopic(name=t.name, partitions=[
        resp.TxnOffsetCommitResponseTopic.TxnOffsetCommitResponsePartition(partition_index=p.partition_index,
                                                                           error_code=code)
        for p in t.partitions]) for t in request.topics])
