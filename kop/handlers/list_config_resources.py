"""ListConfigResources (key 74), versions 0-1 (as Kafka 4.1; KIP-1142).

Version 0 is Kafka 3.7-4.0's ListClientMetricsResources: it lists client-metrics resources only,
and the answer carries no resource types. Version 1 takes the resource types wanted (none: every
type the version supports, TOPIC 2, BROKER 4, BROKER_LOGGER 8, CLIENT_METRICS 16, GROUP 32) and
tags each resource with its type. A type the version does not support makes the whole answer
UNSUPPORTED_VERSION with no resources, as Kafka's. Resources come in Kafka's order: groups, client
metrics, broker loggers, brokers, then topics.

What kop lists:
- TOPIC: the Kafka topics of the client's namespace (its Pulsar partitioned topics, as Metadata
  lists them), by name.
- BROKER: each live gateway reachable through the client's listener, by node id (as Kafka names a
  broker's config resource); DescribeConfigs describes them read-only.

Deviations from Kafka:
- CLIENT_METRICS: none. kop serves no client telemetry (KIP-714), so there are no client-metrics
  subscriptions; a version 0 request is always answered with an empty list.
- GROUP: none. Group configs (KIP-848's consumer group settings) are not kept by kop.
- BROKER_LOGGER: none. Kafka lists one per broker, but kop's DescribeConfigs and
  IncrementalAlterConfigs serve no broker loggers (log levels are set in kop's own config).
- No CLUSTER_AUTHORIZATION_FAILED: kop has no Kafka ACLs (Pulsar's authorization decides what a
  principal's topics are).
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode, KafkaError
from .metadata import reachable_nodes
from .registry import handler, response_class

API_KEY = 74
TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
SUPPORTED = {0: (CLIENT_METRICS,), 1: (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP)}


@handler(API_KEY, 0, 1)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    supported = SUPPORTED[ctx.version]
    wanted = set(request.resource_types if ctx.version >= 1 else ()) or set(supported)
    if not wanted <= set(supported):
        return error_response(request, ErrorCode.UNSUPPORTED_VERSION)
    resources = []
    # GROUP, CLIENT_METRICS, BROKER_LOGGER come first in Kafka's answer: kop has none of them.
    if BROKER in wanted:
        resources += [(str(node_id), BROKER) for node_id, _ in sorted(reachable_nodes(ctx))]
    if TOPIC in wanted:
        try:
            topics = await ctx.backend.list_topics()
        except KafkaError as exc:
            return error_response(request, exc.code)
        resources += [(name, TOPIC) for name in sorted(topics)]
    return resp(throttle_time_ms=0, error_code=0, config_resources=[
        resp.ConfigResource(resource_name=name, resource_type=kind) for name, kind in resources])


def error_response(request, code):
    return response_class(API_KEY)(throttle_time_ms=0, error_code=code, config_resources=[])
