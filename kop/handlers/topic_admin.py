"""What the topic admin handlers share: finding the topic a request names, and changing its configs.
Not a handler module (it registers no API)."""

from __future__ import annotations

from typing import Any

from ..backend.api import alter_topic_configs
from ..mapping import topic_configs as tc
from ..mapping.topics import InvalidTopicName, check_kafka_name, is_hidden
from ..protocol.errors import ErrorCode, KafkaError

TOPIC_RESOURCE, BROKER_RESOURCE = 2, 4  # Kafka's ConfigResource types


async def existing_topic(ctx, name: str) -> tuple[ErrorCode, str, int]:
    """(error, message, partition count) for a topic a request names."""
    try:
        check_kafka_name(name)
    except InvalidTopicName as exc:
        return ErrorCode.INVALID_TOPIC_EXCEPTION, str(exc), 0
    if is_hidden(name):
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} is internal", 0
    try:
        count = await ctx.backend.partition_count(name, fresh=True)
    except KafkaError as exc:
        return exc.code, exc.message, 0
    if count == 0:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist", 0
    return ErrorCode.NONE, "", count


async def alter_topic(ctx, name: str, values: dict[str, object], reset: set[str],
                      validate_only: bool) -> tuple[ErrorCode, str | None]:
    """Apply parsed config ``values`` and ``reset`` names to topic ``name`` (each checked already;
    the backend checks them together with the topic's other configs)."""
    error, message, _ = await existing_topic(ctx, name)
    if error:
        return error, message
    try:
        await alter_topic_configs(ctx.backend, name, values, reset, validate_only)
    except KafkaError as exc:
        return exc.code, exc.message
    return ErrorCode.NONE, None


def not_a_topic(resource_type: int) -> tuple[ErrorCode, str]:
    if resource_type == BROKER_RESOURCE:
        return ErrorCode.INVALID_CONFIG, ("kop's broker settings are static: set them in its TOML file, "
                                          "environment or flags and restart")
    return ErrorCode.INVALID_REQUEST, f"resource type {resource_type} is not served by kop"


def parse_all(configs) -> tuple[dict[str, object], str | None]:
    """{name: parsed value} of (name, value) pairs, or the first problem."""
    values: dict[str, object] = {}
    try:
        for name, value in configs:
            if name in values:
                return {}, f"{name} is given twice"
            values[name] = tc.parse(name, value)
    except tc.InvalidConfig as exc:
        return {}, str(exc)
    return values, None


async def alter_resources(resp, request, alter_topic_resource) -> Any:
    """The loop both AlterConfigs APIs share: ``alter_topic_resource(resource)`` -> (error, message)
    for topic resources, a refusal for the others; one response entry per resource."""
    out = []
    for resource in request.resources:
        if resource.resource_type != TOPIC_RESOURCE:
            error, message = not_a_topic(resource.resource_type)
        else:
            error, message = await alter_topic_resource(resource)
        out.append(resp.AlterConfigsResourceResponse(error_code=error, error_message=message or None,
                                                     resource_type=resource.resource_type,
                                                     resource_name=resource.resource_name))
    return resp(throttle_time_ms=0, responses=out)


def alter_error_response(resp, request, code) -> Any:
    return resp(throttle_time_ms=0, responses=[resp.AlterConfigsResourceResponse(
        error_code=code, error_message=None, resource_type=r.resource_type, resource_name=r.resource_name)
        for r in request.resources])
