"""IncrementalAlterConfigs (key 44), versions 0-1: what ``kafka-configs --alter`` sends.

Per config: SET (0) sets it, DELETE (1) returns it to its default (the topic's own Pulsar policy is
removed), APPEND (2) and SUBTRACT (3) add to / remove from a list config (cleanup.policy only; on
any other config they are INVALID_CONFIG, as in Kafka). Only the configs kop maps onto Pulsar
policies (mapping/topic_configs.py) are accepted; anything else fails the resource with
INVALID_CONFIG naming it. ``validate_only`` checks without changing anything. Broker resources are
refused (kop's settings are static); other resource types get INVALID_REQUEST.
"""

from __future__ import annotations

from ..backend import kafka_topics
from ..mapping import topic_configs as tc
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class
from .topic_admin import alter_error_response, alter_resources, alter_topic, existing_topic

API_KEY = 44
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@handler(API_KEY, 0, 1)
async def serve(ctx, request):
    return await alter_resources(response_class(API_KEY), request,
                                 lambda resource: _alter(ctx, resource, request.validate_only))


async def _alter(ctx, resource, validate_only: bool) -> tuple[ErrorCode, str | None]:
    values: dict[str, object] = {}
    reset: set[str] = set()
    current: dict | None = None
    try:
        for c in resource.configs:
            spec = tc.check_name(c.name)
            if c.name in values or c.name in reset:
                raise tc.InvalidConfig(f"{c.name} is given twice")
            if c.config_operation == SET:
                values[c.name] = tc.parse(c.name, c.value)
            elif c.config_operation == DELETE:
                reset.add(c.name)
            elif c.config_operation in (APPEND, SUBTRACT):
                if spec.config_type != tc.LIST:
                    raise tc.InvalidConfig(f"{c.name} is not a list: APPEND and SUBTRACT do not apply")
                if current is None:
                    current = await _current(ctx, resource.resource_name)
                    if isinstance(current, tuple):
                        return current
                have = tc.parse(c.name, current[c.name].value)
                change = tc.parse(c.name, c.value)
                result = have | change if c.config_operation == APPEND else have - change
                if not result:
                    raise tc.InvalidConfig(f"{c.name} would be empty")
                values[c.name] = frozenset(result)
            else:
                raise tc.InvalidConfig(f"{c.name}: unknown operation {c.config_operation}")
    except tc.InvalidConfig as exc:
        return ErrorCode.INVALID_CONFIG, str(exc)
    return await alter_topic(ctx, resource.resource_name, values, reset, validate_only)


async def _current(ctx, topic: str):
    error, message, _ = await existing_topic(ctx, topic)
    if error:
        return error, message
    try:
        return await kafka_topics.describe(ctx.backend, topic)
    except KafkaError as exc:
        return exc.code, exc.message


def error_response(request, code):
    return alter_error_response(response_class(API_KEY), request, code)
