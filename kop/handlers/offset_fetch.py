"""OffsetFetch (key 9), versions 1-9 (several groups per request from v8).

Answers the committed offset (and metadata, leader epoch) of each requested partition, or -1 when
none was committed; a null topic list (v2+) means every partition the group committed.

Deviations from Kafka: v10 (topic ids) is not served; ``require_stable`` is satisfied trivially (no
transactions, so no pending transactional commits).
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 9


def _rows(coordinator, group_id: str, topics) -> dict[str, list[tuple[int, int, int, str | None]]]:
    committed = coordinator.committed(group_id)
    out: dict[str, list] = {}
    if topics is None:
        for (topic, partition), c in sorted(committed.items()):
            out.setdefault(topic, []).append((partition, c.offset, c.leader_epoch, c.metadata))
        return out
    for topic in topics:
        name = topic.name
        for partition in topic.partition_indexes:
            c = committed.get((name, partition))
            out.setdefault(name, []).append((partition, c.offset, c.leader_epoch, c.metadata) if c
                                            else (partition, -1, -1, ""))
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
            rows = {} if error else _rows(coordinator, key, g.topics)
            groups.append(resp.OffsetFetchResponseGroup(group_id=g.group_id, error_code=error, topics=[
                resp.OffsetFetchResponseGroup.OffsetFetchResponseTopics(name=t, partitions=[
                    resp.OffsetFetchResponseGroup.OffsetFetchResponseTopics.OffsetFetchResponsePartitions(
                        partition_index=p, committed_offset=o, committed_leader_epoch=e, metadata=m, error_code=0)
                    for p, o, e, m in ps]) for t, ps in rows.items()]))
        return resp(throttle_time_ms=0, groups=groups)
    error = coordinator.status(ctx.group_key(request.group_id))
    if error != ErrorCode.NONE:
        if ctx.version >= 2:  # a top-level error code exists from v2
            return error_response(request, error)
        return resp(throttle_time_ms=0, error_code=error, topics=[resp.OffsetFetchResponseTopic(
            name=t.name, partitions=[resp.OffsetFetchResponseTopic.OffsetFetchResponsePartition(
                partition_index=p, committed_offset=-1, committed_leader_epoch=-1, metadata="", error_code=error)
                for p in t.partition_indexes]) for t in request.topics or []])
    rows = _rows(coordinator, ctx.group_key(request.group_id), request.topics)
    return resp(throttle_time_ms=0, error_code=0, topics=[resp.OffsetFetchResponseTopic(name=t, partitions=[
        resp.OffsetFetchResponseTopic.OffsetFetchResponsePartition(
            partition_index=p, committed_offset=o, committed_leader_epoch=e, metadata=m, error_code=0)
        for p, o, e, m in ps]) for t, ps in rows.items()])


def error_response(request, code):
    resp = response_class(API_KEY)
    groups = [resp.OffsetFetchResponseGroup(group_id=g.group_id, error_code=code, topics=[])
              for g in (getattr(request, "groups", None) or [])]
    return resp(throttle_time_ms=0, error_code=code, topics=[], groups=groups)
