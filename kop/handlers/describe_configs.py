"""DescribeConfigs (key 32), versions 1-4.

Topics: the Kafka configs kop maps onto Pulsar topic policies (mapping/topic_configs.py:
retention.ms, retention.bytes, max.message.bytes, cleanup.policy), read from Pulsar; a value the
topic sets itself is TOPIC_CONFIG, anything else DEFAULT_CONFIG with the value Pulsar applies
(namespace policy or broker default). Documentation (v3+) says how each maps and differs.

Brokers: a few read-only settings of this gateway (STATIC_BROKER_CONFIG): broker.id,
auto.create.topics.enable, num.partitions, message.max.bytes (Pulsar's maxMessageSize).

Deviations from Kafka: other topic configs are not listed (kop does not pretend to honour them);
synonyms list only the config itself; other resource types get INVALID_REQUEST.
"""

from __future__ import annotations

from ..backend.policies import DEFAULT_CONFIG
from ..backend import kafka_topics
from ..mapping import topic_configs as tc
from ..protocol.errors import ErrorCode, KafkaError
from .registry import handler, response_class
from .topic_admin import BROKER_RESOURCE, TOPIC_RESOURCE, existing_topic

API_KEY = 32
STATIC_BROKER_CONFIG = 4
BOOLEAN, INT = 1, 3


@handler(API_KEY, 1, 4)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    results = []
    for resource in request.resources:
        wanted = set(resource.configuration_keys) if resource.configuration_keys is not None else None
        if resource.resource_type == TOPIC_RESOURCE:
            error, message, entries = await _topic(ctx, resource.resource_name)
        elif resource.resource_type == BROKER_RESOURCE:
            error, message, entries = ErrorCode.NONE, None, _broker(ctx)
        else:
            error, message, entries = ErrorCode.INVALID_REQUEST, f"resource type {resource.resource_type} " \
                                                                 "is not served by kop", []
        configs = [_entry(resp, ctx, request, *e) for e in entries if wanted is None or e[0] in wanted]
        results.append(resp.DescribeConfigsResult(
            error_code=error, error_message=message or None, resource_type=resource.resource_type,
            resource_name=resource.resource_name, configs=configs if not error else []))
    return resp(throttle_time_ms=0, results=results)


async def _topic(ctx, name: str):
    error, message, _ = await existing_topic(ctx, name)
    if error:
        return error, message, []
    try:
        described = await kafka_topics.describe(ctx.backend, name)
    except KafkaError as exc:
        return exc.code, exc.message, []
    return ErrorCode.NONE, None, [(e.name, e.value, e.source, False, tc.SPECS[e.name].config_type,
                                   tc.SPECS[e.name].documentation) for e in described.values()]


def _broker(ctx):
    cfg = ctx.config
    settings = ctx.backend.broker_settings()
    return [(name, value, STATIC_BROKER_CONFIG, True, kind, doc) for name, value, kind, doc in (
        ("broker.id", str(ctx.fleet.me.node_id), INT, "server.node_id (or derived from the advertised address)"),
        ("auto.create.topics.enable", str(cfg.topics.auto_create).lower(), BOOLEAN, "topics.auto_create"),
        ("num.partitions", str(cfg.topics.default_partitions), INT, "topics.default_partitions"),
        ("message.max.bytes", settings.get("maxMessageSize", "5242880"), INT, "Pulsar's maxMessageSize"),
    )]


def _entry(resp, ctx, request, name, value, source, read_only, config_type, documentation):
    R = resp.DescribeConfigsResult.DescribeConfigsResourceResult
    synonyms = [R.DescribeConfigsSynonym(name=name, value=value, source=source)] if request.include_synonyms else []
    return R(name=name, value=value, read_only=read_only, config_source=source, is_default=source == DEFAULT_CONFIG,
             is_sensitive=False, synonyms=synonyms, config_type=config_type,
             documentation=documentation if ctx.version >= 3 and request.include_documentation else None)


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, results=[resp.DescribeConfigsResult(
        error_code=code, error_message=None, resource_type=r.resource_type, resource_name=r.resource_name,
        configs=[]) for r in request.resources])
