"""DescribeGroups (key 15), versions 0-5: state, protocol, members with their metadata and
assignments (what ``kafka-consumer-groups --describe`` shows).

Deviation from Kafka: authorized operations are not computed (reported as "not requested").
"""

from __future__ import annotations

from ..groups.state import GroupState
from ..protocol.errors import ErrorCode
from .registry import handler, response_class

API_KEY = 15


@handler(API_KEY, 0, 5, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    out = []
    for group_id in request.groups:
        key = ctx.group_key(group_id)
        error = ctx.coordinator.status(key)
        if error != ErrorCode.NONE:
            out.append(resp.DescribedGroup(error_code=error, group_id=group_id, group_state="",
                                           protocol_type="", protocol_data="", members=[]))
            continue
        group = ctx.coordinator.groups.get(key)
        if group is None:
            out.append(resp.DescribedGroup(error_code=ErrorCode.NONE, group_id=group_id, group_state="Dead",
                                           protocol_type="", protocol_data="", members=[]))
            continue
        stable = group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE)
        members = [resp.DescribedGroup.DescribedGroupMember(
            member_id=m.member_id, group_instance_id=m.group_instance_id, client_id=m.client_id,
            client_host=m.client_host, member_metadata=m.metadata_for(group.protocol_name) if stable else b"",
            member_assignment=m.assignment if group.state is GroupState.STABLE else b"")
            for m in group.members.values()]
        out.append(resp.DescribedGroup(error_code=ErrorCode.NONE, group_id=group_id, group_state=group.state.value,
                                       protocol_type=group.protocol_type or "",
                                       protocol_data=group.protocol_name or "" if stable else "", members=members))
    return resp(throttle_time_ms=0, groups=out)


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, groups=[resp.DescribedGroup(error_code=code, group_id=g, group_state="",
                                                                protocol_type="", protocol_data="", members=[])
                                            for g in request.groups])
