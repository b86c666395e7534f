"""AlterConfigs (key 33), versions 0-2: the legacy, replace-everything form.

For a topic, the configs given are set and every other config kop maps (mapping/topic_configs.py)
returns to its default (the topic's own Pulsar policy is removed), as in Kafka. ``validate_only``
checks without changing anything. A config kop does not map, or a bad value, fails the whole
resource with INVALID_CONFIG naming it; nothing is silently ignored. Broker resources are refused
(INVALID_CONFIG: kop's settings are static), other resource types get INVALID_REQUEST.
"""

from __future__ import annotations

from ..mapping import topic_configs as tc
from ..protocol.errors import ErrorCode
from .registry import handler, response_class
from .topic_admin import TOPIC_RESOURCE, alter_topic, not_a_topic, parse_all

API_KEY = 33


@handler(API_KEY, 0, 2)
async def serve(ctx, request):
    resp = response_class(API_KEY)
    out = []
    for resource in request.resources:
        if resource.resource_type != TOPIC_RESOURCE:
            error, message = not_a_topic(resource.resource_type)
        else:
            values, problem = parse_all((c.name, c.value) for c in resource.configs)
            if problem:
                error, message = ErrorCode.INVALID_CONFIG, problem
            else:
                error, message = await alter_topic(ctx, resource.resource_name, values,
                                                   set(tc.SPECS) - set(values), request.validate_only)
        out.append(resp.AlterConfigsResourceResponse(error_code=error, error_message=message or None,
                                                     resource_type=resource.resource_type,
                                                     resource_name=resource.resource_name))
    return resp(throttle_time_ms=0, responses=out)


def error_response(request, code):
    resp = response_class(API_KEY)
    return resp(throttle_time_ms=0, responses=[resp.AlterConfigsResourceResponse(
        error_code=code, error_message=None, resource_type=r.resource_type, resource_name=r.resource_name)
        for r in request.resources])
