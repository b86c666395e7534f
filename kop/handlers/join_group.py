"""JoinGroup (key 11), versions 0-9.

Kafka's semantics (groups/coordinator.py): MEMBER_ID_REQUIRED for a dynamic member's first join from
v4 (KIP-394), generations, protocol selection by votes across members, rebalance and session
timeouts, ``groups.initial_rebalance_delay_ms``, and static membership (``group_instance_id``,
v5+, KIP-345): a restarted static member gets a new member id and its old assignment without a
rebalance. Client-side assignors (range, roundrobin, sticky, cooperative-sticky) are opaque
protocols to the coordinator, as in Kafka.

Deviation from Kafka: ``skip_assignment`` (v9, for KIP-848 server-side assignors) is always false.
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 11


@handler(API_KEY, 0, 9, group_api=True)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    result = await ctx.coordinator.join(
        group_id=ctx.group_key(request.group_id), member_id=request.member_id,
        group_instance_id=request.group_instance_id if ctx.version >= 5 else None,
        client_id=ctx.header.client_id or "", client_host="/" + ctx.client_address.rsplit(":", 1)[0],
        session_timeout_ms=request.session_timeout_ms,
        rebalance_timeout_ms=request.rebalance_timeout_ms if ctx.version >= 1 else request.session_timeout_ms,
        protocol_type=request.protocol_type, protocols=[(p.name, p.metadata) for p in request.protocols],
        require_known_member_id=ctx.version >= 4)
    members = [resp.JoinGroupResponseMember(member_id=m, group_instance_id=i, metadata=md)
               for m, i, md in result.members]
    return resp(throttle_time_ms=0, error_code=result.error, generation_id=result.generation_id,
                protocol_type=result.protocol_type, protocol_name=result.protocol_name, leader=result.leader_id,
                skip_assignment=False, member_id=result.member_id, members=members)


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, generation_id=-1, protocol_type=None,
                                   protocol_name=None, leader="", skip_assignment=False,
                                   member_id=request.member_id, members=[])
