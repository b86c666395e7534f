"""The one mapping from Pulsar failures to Kafka error codes (kop/backend/errors.py): whatever a
Pulsar restart, an unload or an ownership change makes the client report is answered with a code
Kafka clients retry after refreshing metadata - never one that would stop a producer for good."""

from __future__ import annotations

import pytest

from kop.backend import admin as admin_api
from kop.backend.errors import kafka_error_of
from kop.backend.wire.commands import SERVER_ERRORS
from kop.backend.wire.errors import WireError
from kop.protocol.errors import ErrorCode

# What a client should see for a Pulsar result that is about the data or the caller, not the moment.
FINAL = {"AuthenticationError": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
         "AuthorizationError": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
         "MessageTooBig": ErrorCode.MESSAGE_TOO_LARGE}
# Kafka's retriable codes a producer answers by refreshing metadata and trying again.
RETRIABLE = {ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.REQUEST_TIMED_OUT, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
# Pulsar's ServerError values and the wire client's own failures (kop/backend/wire).
RESULTS = sorted(set(SERVER_ERRORS.values()) | {"Timeout", "ConnectError", "AlreadyClosed", "NotConnected",
                                               "LookupError", "MessageTooBig"})


@pytest.mark.parametrize("name", RESULTS)
def test_every_pulsar_result_is_final_only_when_it_is_about_the_data(name):
    code = kafka_error_of(WireError(name)).code
    if name in FINAL:
        assert code == FINAL[name]
    else:
        assert code in RETRIABLE, f"{name} -> {code!r}: a producer would give up on a passing condition"


@pytest.mark.parametrize("name", ["NotConnected", "ConnectError", "ServiceNotReady", "AlreadyClosed",
                                  "LookupError", "ProducerFenced", "TopicTerminatedError", "ProducerBusy"])
def test_reconnects_and_ownership_changes_send_clients_to_metadata(name):
    assert kafka_error_of(WireError(name)).code == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_admin_failures():
    assert kafka_error_of(admin_api.Unreachable(0, "down")).code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert kafka_error_of(admin_api.NotFound(404, "no")).code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert kafka_error_of(admin_api.Denied(403, "no")).code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert kafka_error_of(RuntimeError("anything else")).code == ErrorCode.NOT_LEADER_OR_FOLLOWER
