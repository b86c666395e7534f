"""SASL message parsing (PLAIN, OAUTHBEARER) and group scoping by tenant: pure code."""

from __future__ import annotations

import pytest

from kop.groups.scope import scoped, split
from kop.protocol.sasl import parse_oauthbearer, parse_plain, tenant_and_namespace


def test_plain_username_selects_tenant_and_namespace():
    c = parse_plain(b"\x00acme\x00token:abc.def.ghi", "kafka")
    assert (c.tenant, c.namespace, c.token, c.user) == ("acme", "kafka", "abc.def.ghi", "acme")
    c = parse_plain(b"acme/orders\x00acme/orders\x00token:t", "kafka")
    assert (c.tenant, c.namespace, c.token) == ("acme", "orders", "t")
    assert "abc" not in repr(parse_plain(b"\x00acme\x00token:abc", "kafka")), "the token must not be in reprs"


@pytest.mark.parametrize("message", [
    b"acme\x00token:t",                      # two fields
    b"\x00acme\x00token:t\x00more",          # four fields
    b"\x00\x00token:t",                      # empty username
    b"other\x00acme\x00token:t",             # authzid differs: impersonation
    b"\x00acme\x00secret",                   # not token:<jwt>
    b"\x00acme\x00token:",                   # empty token
    b"\x00ac me\x00token:t",                 # not a tenant name
    b"\x00acme/a/b\x00token:t",              # namespace with a slash
    b"\x00acme/..\x00token:t",
    b"\x00\xff\xfe\x00token:t",              # not UTF-8
])
def test_plain_rejects(message):
    with pytest.raises(ValueError):
        parse_plain(message, "kafka")


def test_oauthbearer_token_and_extensions():
    c = parse_oauthbearer(b"n,,\x01auth=Bearer eyJ.x.y\x01\x01", "public", "default")
    assert (c.tenant, c.namespace, c.token) == ("public", "default", "eyJ.x.y")
    c = parse_oauthbearer(b"n,a=bob,\x01auth=Bearer t\x01tenant=acme\x01namespace=kafka\x01\x01", "public", "default")
    assert (c.tenant, c.namespace, c.token, c.user) == ("acme", "kafka", "t", "bob")


@pytest.mark.parametrize("message", [
    b"y,,\x01auth=Bearer t\x01\x01",         # channel binding flag we do not speak
    b"n,,auth=Bearer t\x01\x01",             # no leading separator
    b"n,,\x01auth=Bearer t\x01",             # not terminated by \x01\x01
    b"n,,\x01auth=Basic t\x01\x01",          # not a bearer token
    b"n,,\x01auth=Bearer \x01\x01",          # empty token
    b"n,,\x01tenant=acme\x01\x01",           # no auth pair
    b"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",  # duplicate key
    b"n,,\x01auth=Bearer t\x01tenant=a/b\x01\x01",     # bad tenant
    b"n,x,\x01auth=Bearer t\x01\x01",        # bad authzid
    b"\xff",
])
def test_oauthbearer_rejects(message):
    with pytest.raises(ValueError):
        parse_oauthbearer(message, "public", "default")


def test_tenant_and_namespace_defaults():
    assert tenant_and_namespace("acme", "kafka") == ("acme", "kafka")
    assert tenant_and_namespace("acme/x", "kafka") == ("acme", "x")


@pytest.mark.parametrize("group", ["g", "", "\x00", "\x00g", "\x00\x00g", "a/b\x00c", "\x00acme/kafka\x00g"])
@pytest.mark.parametrize("namespace", [None, "acme/kafka", "globex/kafka"])
def test_scope_round_trips(group, namespace):
    internal = scoped(group, namespace)
    if group:
        assert split(internal) == (namespace, group)


def test_scope_is_injective_across_tenants():
    groups = ["g", "\x00g", "\x00acme/kafka\x00g", "acme/kafka", "\x00\x00x"]
    namespaces = [None, "acme/kafka", "globex/kafka", "acme/other"]
    internal = [scoped(g, ns) for g in groups for ns in namespaces]
    assert len(set(internal)) == len(internal)
    assert scoped("g", None) == "g"  # the default namespace's groups look like Kafka's
