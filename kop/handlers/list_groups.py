"""ListGroups (key 16), versions 0-5, with the v4 state filter and the v5 type filter (every group
is a "classic" group). A client sees the groups of its own namespace only (groups/scope.py): the
default namespace's without SASL, its tenant's with it."""

from __future__ import annotations

from ..groups import scope
from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 16


@handler(API_KEY, 0, 5)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    states = {s.lower() for s in (request.states_filter or [])} if ctx.version >= 4 else set()
    types = {t.lower() for t in (request.types_filter or [])} if ctx.version >= 5 else set()
    if types and "classic" not in types:
        return resp(throttle_time_ms=0, error_code=0, groups=[])
    if ctx.session is not None and not ctx.session.groups_allowed:
        return resp(throttle_time_ms=0, error_code=0, groups=[])  # as Kafka: only the groups one may see
    mine = ctx.group_namespace
    groups = [resp.ListedGroup(group_id=name, protocol_type=g.protocol_type or "",
                               group_state=g.state.value, group_type="classic")
              for g in ctx.coordinator.groups.values() if not states or g.state.value.lower() in states
              for namespace, name in [scope.split(g.group_id)] if namespace == mine]
    # As Kafka: while partitions are loading, the groups known so far with COORDINATOR_LOAD_IN_PROGRESS.
    error = ErrorCode.COORDINATOR_LOAD_IN_PROGRESS if ctx.coordinator.loading else ErrorCode.NONE
    return resp(throttle_time_ms=0, error_code=error, groups=groups)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, groups=[])
