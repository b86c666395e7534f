"""DescribeCluster (key 60), versions 0-2: the live gateways of the fleet as brokers, at their
addresses for the listener the client uses (as Metadata), the cluster id and the controller (the
live gateway with the lowest node id). No gateway is ever fenced. Deviation: the controller
endpoint type (2) is not served (UNSUPPORTED_ENDPOINT_TYPE): kop has no controllers; authorized
operations are not computed.
"""

from __future__ import annotations

from .registry import handler, response_class

API_KEY = 60
UNSUPPORTED_ENDPOINT_TYPE = 119


@handler(API_KEY, 0, 2)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    if ctx.version >= 1 and request.endpoint_type != 1:
        return resp(throttle_time_ms=0, error_code=UNSUPPORTED_ENDPOINT_TYPE, endpoint_type=request.endpoint_type,
                    error_message="kop has no controllers", cluster_id="", controller_id=-1, brokers=[])
    listener = ctx.listener.name if ctx.listener is not None else None
    brokers = []
    for node in ctx.fleet.nodes():
        address = node.address_for(listener)
        if address is not None:
            brokers.append(resp.DescribeClusterBroker(broker_id=node.node_id, host=address[0], port=address[1],
                                                      rack=None, is_fenced=False))
    return resp(throttle_time_ms=0, error_code=0, error_message=None, endpoint_type=1,
                cluster_id=ctx.config.server.cluster_id, controller_id=min(b.broker_id for b in brokers),
                brokers=brokers)  # authorized_operations: left at Kafka's "not computed" default


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, error_message=None, endpoint_type=1,
                                   cluster_id="", controller_id=-1, brokers=[])
