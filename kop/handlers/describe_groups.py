"""DescribeGroups (key 15), versions 0-5: state, protocol, members with their metadata and
assignments (what ``kafka-consumer-groups --describe`` shows).

Deviation from Kafka: authorized operations are not computed (reported as "not requested").
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 15


@handler(API_KEY, 0, 5, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    out = []
    for group_id in request.groups:
        group = ctx.coordinator.describe(ctx.group_key(group_id))
        members = [resp.DescribedGroup.DescribedGroupMember(
            member_id=m.member_id, group_instance_id=m.group_instance_id, client_id=m.client_id,
            client_host=m.client_host, member_metadata=m.metadata, member_assignment=m.assignment)
            for m in group.members]
        out.append(resp.DescribedGroup(error_code=group.error, group_id=group_id, group_state=group.state,
                                       protocol_type=group.protocol_type, protocol_data=group.protocol_data,
                                       members=members))
    return resp(throttle_time_ms=0, groups=out)


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, groups=[resp.DescribedGroup(error_code=code, group_id=g, group_state="",
                                                                protocol_type="", protocol_data="", members=[])
                                            for g in request.groups])
