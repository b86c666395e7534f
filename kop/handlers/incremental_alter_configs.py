"""IncrementalAlterConfigs (key 44), versions 0-1: what ``kafka-configs --alter`` sends.

Per config: SET (0) sets it, DELETE (1) returns it to its default, APPEND (2) and SUBTRACT (3) add
to / remove from a LIST config's current value (cleanup.policy, the throttled-replica lists; on any
other config INVALID_CONFIG "Config value append is not allowed for config key: ...", as in Kafka).
Every topic config Kafka 4.1 accepts is accepted and validated as Kafka does
(mapping/topic_configs.py), together with the topic's other configs; an unknown name or a bad value
fails the resource with INVALID_CONFIG naming it, a key given twice with INVALID_REQUEST.
``validate_only`` checks without changing anything. Broker resources are refused (kop's settings
are static); other resource types get INVALID_REQUEST.
"""

from __future__ import annotations

from ..backend.api import topic_configs
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
    names = [c.name for c in resource.configs]
    if len(set(names)) != len(names):
        return ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys"
    values: dict[str, object] = {}
    reset: set[str] = set()
    current: dict | None = None
    try:
        for c in resource.configs:
            spec = tc.check_name(c.name)
            if c.config_operation == SET:
                values[c.name] = tc.parse(c.name, c.value)
            elif c.config_operation == DELETE:
                reset.add(c.name)
            elif c.config_operation in (APPEND, SUBTRACT):
                if spec.config_type != tc.LIST:
                    verb = "append" if c.config_operation == APPEND else "subtract"
                    raise tc.InvalidConfig(f"Config value {verb} is not allowed for config key: {c.name}")
                if current is None:
                    current = await _current(ctx, resource.resource_name)
                    if isinstance(current, tuple):
                        return current
                have = list(tc.parse(c.name, current[c.name].value))
                change = tc.parse(c.name, c.value)
                if c.config_operation == APPEND:
                    result = have + [v for v in change if v not in have]
                else:
                    result = [v for v in have if v not in change]
                values[c.name] = tc.parse(c.name, ",".join(result))
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
        return await topic_configs(ctx.backend, topic)
    except KafkaError as exc:
        return exc.code, exc.message


def error_response(request, code):
    return alter_error_response(response_class(API_KEY), request, code)
