"""OffsetFetch (key 9), versions 1-9 (several groups per request from v8).

Answers the committed offset (and metadata, leader epoch) of each requested partition, or -1 when
none was committed; a null topic list (v2+) means every partition the group committed.

With ``require_stable`` (v7+, what a read_committed consumer sends), a partition whose offsets wait
for a transaction to end (TxnOffsetCommit, groups/txn_offsets.py) gets UNSTABLE_OFFSET_COMMIT and
offset -1, as Kafka answers; the client asks again.

Deviation from Kafka: v10 (topic ids) is not served.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 9


def _rows(coordinator, group_id: str, topics, stable: bool) -> dict[str, list[tuple[int, int, int, str | None, int]]]:
    """(partition, offset, leader epoch, metadata, error) by topic."""
    committed = coordinator.committed(group_id)
    unstable = coordinator.unstable(group_id) if stable else set()
    out: dict[str, list] = {}

    def row(name: str, partition: int, c) -> tuple:
        if (name, partition) in unstable:
            return partition, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT
        return (partition, c.offset, c.leader_epoch, c.metadata, 0) if c else (partition, -1, -1, "", 0)
    if topics is None:
        keys = sorted(set(committed) | unstable)
        for name, partition in keys:
            out.setdefault(name, []).append(row(name, partition, committed.get((name, partition))))
        return out
    for topic in topics:
        for partition in topic.partition_indexes:
            out.setdefault(topic.name, []).append(row(topic.name, partition, committed.get((topic.name, partition))))
    return out


@handler(API_KEY, 1, 9, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    coordinator = ctx.coordinator
    if ctx.version >= 8:
        groups = []
        for g in request.groups:
            key = ctx.group_key(g.group_id)
            error = coordinator.status(key)
            rows = {} if error else _rows(coordinator, key, g.topics, request.require_stable)
            groups.append(resp.OffsetFetchResponseGroup(group_id=g.group_id, error_code=error, topics=[
                resp.OffsetFetchResponseGroup.OffsetFetchResponseTopics(name=t, partitions=[
                    resp.OffsetFetchResponseGroup.OffsetFetchResponseTopics.OffsetFetchResponsePartitions(
                        partition_index=p, committed_offset=o, committed_leader_epoch=e, metadata=m, error_code=x)
                    for p, o, e, m, x in ps]) for t, ps in rows.items()]))
        return resp(throttle_time_ms=0, groups=groups)
    error = coordinator.status(ctx.group_key(request.group_id))
    if error != ErrorCode.NONE:
        if ctx.version >= 2:  # a top-level error code exists from v2
            return error_response(request, error)
        return resp(throttle_time_ms=0, error_code=error, topics=[resp.OffsetFetchResponseTopic(
            name=t.name, partitions=[resp.OffsetFetchResponseTopic.OffsetFetchResponsePartition(
                partition_index=p, committed_offset=-1, committed_leader_epoch=-1, metadata="", error_code=error)
                for p in t.partition_indexes]) for t in request.topics or []])
    rows = _rows(coordinator, ctx.group_key(request.group_id), request.topics,
                 ctx.version >= 7 and request.require_stable)
    return resp(throttle_time_ms=0, error_code=0, topics=[resp.OffsetFetchResponseTopic(name=t, partitions=[
        resp.OffsetFetchResponseTopic.OffsetFetchResponsePartition(
            partition_index=p, committed_offset=o, committed_leader_epoch=e, metadata=m, error_code=x)
        for p, o, e, m, x in ps]) for t, ps in rows.items()])


def error_response(request, code):
    resp = response_class(API_KEY)
    groups = [resp.OffsetFetchResponseGroup(group_id=g.group_id, error_code=code, topics=[])
              for g in (getattr(request, "groups", None) or [])]
    return resp(throttle_time_ms=0, error_code=code, topics=[], groups=groups)
