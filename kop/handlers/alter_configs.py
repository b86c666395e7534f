"""AlterConfigs (key 33), versions 0-2: the legacy, replace-everything form.

For a topic, the configs given are set and every other config returns to its default, as in Kafka.
``validate_only`` checks without changing anything. Every topic config Kafka 4.1 accepts is
accepted and validated as Kafka does (mapping/topic_configs.py); an unknown name or a bad value
fails the whole resource with INVALID_CONFIG naming it, and changes nothing. Broker resources are refused
(INVALID_CONFIG: kop's settings are static), other resource types get INVALID_REQUEST.
"""

from __future__ import annotations

from ..mapping import topic_configs as tc
from ..protocol.errors import ErrorCode
from .registry import handler, response_class
from .topic_admin import alter_error_response, alter_resources, alter_topic, parse_all

API_KEY = 33


@handler(API_KEY, 0, 2)
async def serve(ctx, request):
    async def alter(resource):
        values, problem = parse_all((c.name, c.value) for c in resource.configs)
        if problem:
            return ErrorCode.INVALID_CONFIG, problem
        return await alter_topic(ctx, resource.resource_name, values, set(tc.SPECS) - set(values),
                                 request.validate_only)
    return await alter_resources(response_class(API_KEY), request, alter)


def error_response(request, code):
    return alter_error_response(response_class(API_KEY), request, code)
