"""Pulsar subscription names for Kafka group ids (the cursor sync's subscriptions, cursor_sync.py).

Subscription names. Kafka group ids are arbitrary strings; Pulsar subscription names must survive
the URL path (``.``/``..`` segments, ``%``, ``+``) and, when the broker sets
``strictlyVerifySubscriptionName=true``, match ``[a-zA-Z0-9_\\-=:.]*``. kop keeps
``[a-zA-Z0-9_\\-.:]`` as is and writes every other character as ``=XX`` per UTF-8 byte (``=`` itself
becomes ``=3D``), which is injective and leaves ordinary group ids readable:
``my group/1`` -> ``kafka-group-my=20group=2F1``. The verbatim id is in the subscription's
properties.
"""

from __future__ import annotations

KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:")
# What a configured subscription prefix may contain.
PREFIX_CHARS = KEEP | {"="}


def escape_group(group: str) -> str:
    """The subscription-name form of a Kafka group id (injective; see the module docstring)."""
    return "".join(ch if ch in KEEP else "".join(f"={b:02X}" for b in ch.encode("utf-8")) for ch in group)


def unescape_group(escaped: str) -> str:
    """Inverse of :func:`escape_group`."""
    out = bytearray()
    i = 0
    while i < len(escaped):
        if escaped[i] == "=":
            out.append(int(escaped[i + 1:i + 3], 16))
            i += 3
        else:
            out += escaped[i].encode()
            i += 1
    return out.decode("utf-8")
