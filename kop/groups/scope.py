"""Which tenant a consumer group belongs to: group ids scoped by Pulsar namespace.

Kafka group ids are global to a cluster; in kop every tenant has its own. A client authenticated as
``tenant/namespace`` (SASL) that names group ``g`` works on the group whose internal id is
``"\\x00<tenant>/<namespace>\\x00g"``; clients of the default namespace (no SASL, or SASL naming the
configured ``pulsar.tenant`` / ``pulsar.namespace``) use ``g`` as it is, so the groups of a gateway
without SASL look exactly like Kafka's in ``__offsets`` and in Pulsar subscription names.

The mapping is injective: a default-namespace id that happens to start with NUL is stored with one
more NUL in front (``"\\x00\\x00..."``), and a tenant name never starts with NUL. So no client can
reach another tenant's group by choosing its id, and a tenant sees only its own groups in ListGroups.
The Pulsar subscription of a scoped group lives on that tenant's topics and is named after ``g``.
"""

from __future__ import annotations

_MARK = "\x00"


def scoped(group: str, namespace: str | None) -> str:
    """The internal id of ``group`` for a client of ``namespace`` ("tenant/ns"; None: the default)."""
    if not group:
        return group  # invalid whoever asks (INVALID_GROUP_ID)
    if namespace is None:
        return _MARK + group if group.startswith(_MARK) else group
    return f"{_MARK}{namespace}{_MARK}{group}"


def split(internal: str) -> tuple[str | None, str]:
    """(namespace or None for the default one, the group id the client knows)."""
    if not internal.startswith(_MARK):
        return None, internal
    if internal.startswith(_MARK * 2):
        return None, internal[1:]
    namespace, sep, group = internal[1:].partition(_MARK)
    if not sep:
        return None, internal  # not produced by scoped(); treat as a default-namespace id
    return namespace, group


def display(internal: str) -> str:
    """A group id for logs: ``tenant/namespace:group`` for a scoped one, the id itself otherwise."""
    namespace, group = split(internal)
    return f"{namespace}:{group}" if namespace else group
