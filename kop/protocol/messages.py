"""Request/response codecs for every Kafka API kop serves, and the request/response headers.

Message bodies come from kafka-python 3's ``kafka.protocol`` (pinned in pyproject.toml): one
version-agnostic class per API, generated from Kafka's own JSON schemas, handling flexible versions,
compact strings and tagged fields (unknown tags are skipped). kop wraps it here so nothing else
imports it, and adds what a *server* needs and the library does not check: a body must be complete
(a truncated request is a protocol violation, not a silently shortened request). Bytes *after* a
complete body are ignored, as Apache Kafka's broker ignores them: librdkafka 2.16 (confluent-kafka
2.16.1) sends its "all topics" Metadata v13 request with three bytes after the body (``01 00 00``),
and a Kafka 4.1.2 broker answers it (seen on the wire); refusing them would break ``list_topics()``.

Headers are parsed by hand: they are tiny, and parsing them without copying the frame keeps the
record bytes of a Produce request where they are.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Any

from kafka.protocol import admin, consumer, metadata, producer, sasl
from kafka.protocol.api_key import ApiKey

from . import produce_request
from .errors import ProtocolViolation

API_VERSIONS_KEY = 18

# api_key -> (request class, response class) of every API kop serves: entered as the handlers register
# (handlers/registry.py), so this table and the registry cannot disagree.
CODECS: dict[int, tuple[Any, Any]] = {}

# Where kafka-python keeps its message classes, one pair per API, named after it (``FetchRequest``).
_SCHEMA_MODULES = (producer, consumer, metadata, admin, sasl)


@functools.cache
def codec(api_key: int) -> tuple[Any, Any]:
    """The request and response classes of ``api_key`` (served or not: a fact of Kafka's protocol)."""
    name = api_name(api_key)
    for module in _SCHEMA_MODULES:
        request, response = getattr(module, f"{name}Request", None), getattr(module, f"{name}Response", None)
        if request is not None and response is not None and request.API_KEY == api_key:
            return request, response
    raise KeyError(f"kafka-python has no codec for API key {api_key} ({name})")


def register(api_key: int) -> tuple[Any, Any]:
    """Enter the codec of an API kop serves into CODECS (a handler registering)."""
    found = CODECS[api_key] = codec(api_key)
    return found


def api_name(api_key: int) -> str:
    """Kafka's name of an API (``Fetch``), or its number when Kafka has none."""
    try:
        return ApiKey(api_key).name
    except ValueError:
        return str(api_key)


_HEAD = struct.Struct(">hhi")


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """api_key, api_version, correlation_id: fixed positions in every header version."""
    if len(frame) < _HEAD.size:
        raise ProtocolViolation(f"a {len(frame)}-byte frame cannot hold a request header")
    return _HEAD.unpack_from(frame, 0)


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise ProtocolViolation("truncated varint in request header")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise ProtocolViolation("varint longer than 5 bytes in request header")


@functools.lru_cache(maxsize=1024)  # asked twice per request; a fact of (key, version)
def is_flexible(api_key: int, api_version: int) -> bool:
    return codec(api_key)[0].flexible_version_q(api_version)


def parse_header(frame: bytes, flexible: bool) -> tuple[RequestHeader, int]:
    """Request header v1 (client_id) or v2 (plus tagged fields); returns it and the body's offset."""
    api_key, api_version, correlation_id = peek_header(frame)
    pos = _HEAD.size
    if pos + 2 > len(frame):
        raise ProtocolViolation("request header truncated before client_id")
    (length,) = struct.unpack_from(">h", frame, pos)
    pos += 2
    client_id = None
    if length >= 0:
        if pos + length > len(frame):
            raise ProtocolViolation("request header truncated inside client_id")
        client_id = str(frame[pos:pos + length], "utf-8", "replace")
        pos += length
    elif length != -1:
        raise ProtocolViolation(f"negative client_id length {length}")
    if flexible:  # header v2: tagged fields, none of which kop uses: skip them
        count, pos = _read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = _read_uvarint(frame, pos)
            size, pos = _read_uvarint(frame, pos)
            pos += size
            if pos > len(frame):
                raise ProtocolViolation("request header tagged field runs past the frame")
    return RequestHeader(api_key, api_version, correlation_id, client_id), pos


def decode_request(api_key: int, api_version: int, frame: bytes, offset: int) -> Any:
    """Decode a request body, insisting that it fills the frame exactly."""
    if api_key == produce_request.API_KEY:  # the hot path: records stay views of the frame
        request, end = produce_request.decode(api_version, frame, offset)
        if end > len(frame):
            raise ProtocolViolation(f"ProduceRequest v{api_version}: body runs past the frame")
        return request
    cls = codec(api_key)[0]
    flexible = cls.flexible_version_q(api_version)
    decoder = cls._struct.compiled_decode_from(api_version, compact=flexible, tagged=flexible,
                                               data_class=cls[None])
    view = memoryview(frame)
    try:
        request, end = decoder(view, offset)
    except ProtocolViolation:
        raise
    except Exception as exc:  # the generated decoder raises struct/Index/Unicode/Value errors
        raise ProtocolViolation(f"undecodable {cls.__name__} v{api_version}: {exc!r}") from exc
    if end > len(frame):
        raise ProtocolViolation(f"{cls.__name__} v{api_version}: body is {len(frame) - offset} bytes, "
                                f"decoded {end - offset}")
    request._version = api_version
    missing = _null_where_not_allowed(cls._struct.fields, request, api_version)
    if missing is not None:
        raise ProtocolViolation(f"{cls.__name__} v{api_version}: {missing} is null, which Kafka's schema does not allow")
    return request


def _null_where_not_allowed(fields: dict, obj: Any, version: int) -> str | None:
    """The first field that is null although the schema makes it non-nullable in ``version`` (the
    generated decoder reads a -1 length as null for any string or array; handlers trust the schema)."""
    for name, field in fields.items():
        low, high = field._versions
        if not low <= version <= high or field._tag is not None or field._type_str == "uuid":
            continue  # (the decoder reads the zero uuid as None)
        value = getattr(obj, name, None)
        if value is None:
            nullable = field._nullable_versions
            if nullable is None or not nullable[0] <= version <= nullable[1]:
                return field._name
        elif field.is_struct_array():
            for item in value:
                missing = _null_where_not_allowed(field.fields, item, version)
                if missing is not None:
                    return f"{field._name}.{missing}"
        elif field.is_struct():
            missing = _null_where_not_allowed(field.fields, value, version)
            if missing is not None:
                return f"{field._name}.{missing}"
    return None


def encode_response(api_key: int, api_version: int, correlation_id: int, response: Any) -> list[bytes]:
    """The framed response as a list of chunks (size + header, body)."""
    if hasattr(response, "encode_chunks"):  # hand-encoded (fetch_response.py): records are not copied
        body = response.encode_chunks(api_version)
    else:
        body = [response.encode(version=api_version)]
    size = sum(len(chunk) for chunk in body)
    if api_key != API_VERSIONS_KEY and is_flexible(api_key, api_version):
        header = struct.pack(">iib", 4 + 1 + size, correlation_id, 0)  # header v1: empty tags
    else:
        header = struct.pack(">ii", 4 + size, correlation_id)  # header v0 (always for ApiVersions)
    return [header, *body]
