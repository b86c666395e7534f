"""The ACL APIs answer as a Kafka broker with no authorizer: SECURITY_DISABLED, not "unsupported".

Found by Kafka's own ClientCompatibilityTest in `make conformance` (docs/compatibility.md): it
expects describeAcls of any broker since 0.11 to work or to say security is disabled; kop left the
API out, and the Java client reported UnsupportedVersionException ("broker too old").
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)
from kafka.protocol.admin import DescribeAclsRequest, DescribeAclsResponse

from support import RawClient


@pytest.fixture
def gateway_address(gateways):
    return gateways().bootstrap


@pytest.fixture
def admin(gateway_address):
    return AdminClient({"bootstrap.servers": gateway_address})


def _code(exc: KafkaException) -> int:
    return exc.args[0].code()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_describe_acls_is_security_disabled(gateway_address, version):
    # The wire answer itself: librdkafka's describe_acls() hands back an empty list for it (from Kafka too).
    every = DescribeAclsRequest(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                                principal_filter=None, host_filter=None, operation=1, permission_type=1)
    with RawClient(gateway_address) as client:
        response = client.call(every, version, DescribeAclsResponse)
    assert response.error_code == KafkaError.SECURITY_DISABLED
    assert "Pulsar" in response.error_message and response.resources == []


def test_create_and_delete_acls_are_security_disabled(admin):
    binding = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    for future in admin.create_acls([binding]).values():
        with pytest.raises(KafkaException) as info:
            future.result(timeout=30)
        assert _code(info.value) == KafkaError.SECURITY_DISABLED
    matching = AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, None, None,
                                AclOperation.ANY, AclPermissionType.ANY)
    for future in admin.delete_acls([matching]).values():
        with pytest.raises(KafkaException) as info:
            future.result(timeout=30)
        assert _code(info.value) == KafkaError.SECURITY_DISABLED
