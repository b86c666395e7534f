"""DescribeConfigs (key 32), versions 1-4.

Topics: every (non-internal) topic config of Kafka 4.1 (mapping/topic_config_specs.py): a value the
topic sets is DYNAMIC_TOPIC_CONFIG, anything else DEFAULT_CONFIG with its default. For the configs
mapped onto Pulsar policies (retention.ms, retention.bytes, max.message.bytes, cleanup.policy) the
value is what Pulsar has, and their default is what Pulsar applies (namespace policy or broker
default; kop's topics.retention_ms for retention) -- backend/policies.py. Types are Kafka's;
documentation (v3+) says what kop does with each config; synonyms (when asked) name the broker
setting of the default, as Kafka's do.

Brokers: a few read-only settings of this gateway (STATIC_BROKER_CONFIG): broker.id,
auto.create.topics.enable, num.partitions, message.max.bytes (Pulsar's maxMessageSize).

Deviations from Kafka: a default's synonym is DEFAULT_CONFIG (kop's broker settings are not Kafka's);
other resource types get INVALID_REQUEST.
"""

from __future__ import annotations

from ..backend.api import DEFAULT_CONFIG, topic_configs
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
        described = await topic_configs(ctx.backend, name)
    except KafkaError as exc:
        return exc.code, exc.message, []
    return ErrorCode.NONE, None, [(e.name, e.value, e.source, False, e.spec.config_type, e.spec.doc,
                                   e.spec.synonym) for e in described.values()]


def _broker(ctx):
    cfg = ctx.config
    settings = ctx.backend.broker_settings()
    return [(name, value, STATIC_BROKER_CONFIG, True, kind, doc, name) for name, value, kind, doc in (
        ("broker.id", str(ctx.fleet.me.node_id), INT, "server.node_id (or derived from the advertised address)"),
        ("auto.create.topics.enable", str(cfg.topics.auto_create).lower(), BOOLEAN, "topics.auto_create"),
        ("num.partitions", str(cfg.topics.default_partitions), INT, "topics.default_partitions"),
        ("message.max.bytes", settings.get("maxMessageSize", "5242880"), INT, "Pulsar's maxMessageSize"),
    )]


def _entry(resp, ctx, request, name, value, source, read_only, config_type, documentation, synonym):
    R = resp.DescribeConfigsResult.DescribeConfigsResourceResult
    synonyms = []
    if request.include_synonyms:
        if source != DEFAULT_CONFIG:
            synonyms.append(R.DescribeConfigsSynonym(name=name, value=value, source=source))
        default = tc.SPECS[name].default if name in tc.SPECS else None
        if source == DEFAULT_CONFIG or default is not None:
            synonyms.append(R.DescribeConfigsSynonym(name=synonym or name, source=DEFAULT_CONFIG,
                                                     value=value if source == DEFAULT_CONFIG else default))
    return R(name=name, value=value, read_only=read_only, config_source=source, is_default=source == DEFAULT_CONFIG,
             is_sensitive=False, synonyms=synonyms, config_type=config_type,
             documentation=documentation if ctx.version >= 3 and request.include_documentation else None)


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, results=[resp.DescribeConfigsResult(
        error_code=code, error_message=None, resource_type=r.resource_type, resource_name=r.resource_name,
        configs=[]) for r in request.resources])
