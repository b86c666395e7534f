"""OffsetCommit (key 8), versions 2-9.

A commit is checked against the group (member id, generation, static instance: UNKNOWN_MEMBER_ID,
ILLEGAL_GENERATION, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS), written to ``__offsets`` (one
compaction key per group, topic and partition) and only then acknowledged. A consumer that uses
``assign()`` with a group id commits with generation -1 to an empty group, as in Kafka. Each commit
also moves the group's durable Pulsar subscription on that partition (groups/cursor_sync.py), within
``groups.cursor_sync_interval_s``.

Deviations from Kafka: v10 (topic ids) is not served; ``retention_time_ms`` (v2-4) is ignored:
commits live until the group or the offset is deleted.
"""

from __future__ import annotations

import logging
import time

from ..groups.store import CommittedOffset, NotOwner
from ..mapping.topics import InvalidTopicName, check_kafka_name
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class

API_KEY = 8
log = logging.getLogger(__name__)


@handler(API_KEY, 2, 9, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    coordinator = ctx.coordinator
    group_error = ErrorCode.INVALID_GROUP_ID if not request.group_id else coordinator.check_commit(
        ctx.group_key(request.group_id), request.generation_id_or_member_epoch, request.member_id,
        request.group_instance_id if ctx.version >= 7 else None)
    errors, commits = await sort_commits(ctx, request.topics, group_error, ctx.version >= 6)
    if commits:
        try:
            await coordinator.commit(ctx.group_key(request.group_id), commits)
            errors.update({key: ErrorCode.NONE for key in commits})
        except NotOwner:
            errors.update({key: ErrorCode.NOT_COORDINATOR for key in commits})  # moved to another gateway
        except Exception as exc:
            log.warning("group %s: writing %d commits to __offsets failed: %r", request.group_id, len(commits), exc)
            errors.update({key: ErrorCode.COORDINATOR_NOT_AVAILABLE for key in commits})
    return resp(throttle_time_ms=0, topics=[resp.OffsetCommitResponseTopic(name=t.name, partitions=[
        resp.OffsetCommitResponseTopic.OffsetCommitResponsePartition(
            partition_index=p.partition_index, error_code=errors[(t.name, p.partition_index)])
        for p in t.partitions]) for t in request.topics])


async def sort_commits(ctx, topics, group_error: int, with_leader_epoch: bool):
    """Each partition's error, or its offset to commit ({(topic, partition): ...} both); shared with
    TxnOffsetCommit, which checks its partitions the same way."""
    now = int(time.time() * 1000)
    errors: dict[tuple[str, int], int] = {}
    commits: dict[tuple[str, int], CommittedOffset] = {}
    for topic in topics:
        for part in topic.partitions:
            key = (topic.name, part.partition_index)
            metadata = part.committed_metadata or ""  # Kafka stores a null metadata as ""
            if not await _partition_exists(ctx, topic.name, part.partition_index):
                errors[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION  # checked first, as Kafka does
            elif group_error:
                errors[key] = group_error
            elif len(metadata.encode()) > ctx.config.groups.max_metadata_size:
                errors[key] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                commits[key] = CommittedOffset(part.committed_offset, metadata, now,
                                               part.committed_leader_epoch if with_leader_epoch else -1)
    return errors, commits


async def _partition_exists(ctx, topic: str, partition: int) -> bool:
    try:
        check_kafka_name(topic)
        return 0 <= partition < await ctx.backend.partition_count(topic)
    except (InvalidTopicName, KafkaError):
        return False


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, topics=[resp.OffsetCommitResponseTopic(name=t.name, partitions=[
        resp.OffsetCommitResponseTopic.OffsetCommitResponsePartition(partition_index=p.partition_index,
                                                                     error_code=code)
        for p in t.partitions]) for t in request.topics])
