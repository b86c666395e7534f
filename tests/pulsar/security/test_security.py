"""Tenancy and security against a Pulsar with token authentication and authorization on.

- SASL PLAIN as tenant acme (confluent-kafka and kafka-python, SASL_PLAINTEXT and SASL_SSL): produce
  and consume; the data is under persistent://acme/default in Pulsar.
- globex cannot read acme's data (TOPIC_AUTHORIZATION_FAILED, decided by Pulsar) nor see it; a wrong
  token fails authentication (SASL_AUTHENTICATION_FAILED, then the connection closes) and kop keeps
  serving; nothing but ApiVersions and SASL before authentication; the legacy v0 handshake.
- OAUTHBEARER carrying the Pulsar token (kafka-python, with the tenant as a SASL extension).
- TLS: an SSL listener, mTLS with a client certificate required, a plaintext client on a TLS port.
- Consumer groups are per tenant; re-authentication (KIP-368) must keep the tenant.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time

import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.sasl import (SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
                                 SaslHandshakeResponse)

from conftest import ADMIN_URL
from support import ROOT, RawClient, admin, raw_request, read_frame, unique

pytestmark = [pytest.mark.pulsar, pytest.mark.timeout(240)]
SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE, UNSUPPORTED_SASL_MECHANISM = 58, 34, 33


def sasl_conf(bootstrap: str, user: str, token: str, ca: str | None = None, **extra) -> dict:
    conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": f"token:{token}"}
    if ca:
        conf["ssl.ca.location"] = ca
    return {**conf, **extra}


def produce(conf: dict, topic: str, values: list[bytes]) -> None:
    errors = []
    producer = Producer({**conf, "acks": "all", "error_cb": lambda e: errors.append(e)})
    for v in values:
        producer.produce(topic, value=v, on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(60) == 0 and not errors, errors


def consume(conf: dict, topic: str, count: int, timeout: float = 60) -> list[bytes]:
    consumer = Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.5):
                assert not m.error(), m.error()
                got.append(m.value())
    finally:
        consumer.close()
    return got


def kp_sasl(bootstrap: str, user: str, token: str, ca: str | None = None) -> dict:
    conf = dict(bootstrap_servers=bootstrap, security_protocol="SASL_SSL" if ca else "SASL_PLAINTEXT",
                sasl_mechanism="PLAIN", sasl_plain_username=user, sasl_plain_password=f"token:{token}")
    if ca:
        conf.update(ssl_cafile=ca)
    return conf


def sasl_handshake(client: RawClient, mechanism: str = "PLAIN", version: int = 1):
    return client.call(SaslHandshakeRequest(mechanism=mechanism), version, SaslHandshakeResponse)


def authenticate(client: RawClient, message: bytes, version: int = 2):
    return client.call(SaslAuthenticateRequest(auth_bytes=message), version, SaslAuthenticateResponse)


def test_acme_produces_and_consumes_and_the_data_is_acmes(secure, secure_gateways):
    sg = secure_gateways()
    token = secure.tokens["acme"]
    topic = unique("acme-orders")
    first = [b"confluent-%d" % i for i in range(200)]
    produce(sasl_conf(sg.sasl, "acme", token), topic, first)
    # Pulsar holds it in acme's namespace, and only there.
    status, meta = admin(f"persistent/acme/default/{topic}/partitions", url=ADMIN_URL, token=secure.tokens["admin"])
    assert status == 200 and meta["partitions"] == 1, meta
    status, _ = admin(f"persistent/public/default/{topic}/partitions", url=ADMIN_URL, token=secure.tokens["admin"])
    assert status == 404
    # kafka-python reads it over SASL_SSL, and writes more over SASL_PLAINTEXT.
    consumer = KafkaConsumer(topic, group_id=unique("kp"), auto_offset_reset="earliest", consumer_timeout_ms=20_000,
                             **kp_sasl(sg.sasl_ssl, "acme", token, secure.ca))
    got = []
    for message in consumer:
        got.append(message.value)
        if len(got) == len(first):
            break
    consumer.close()
    assert got == first
    producer = KafkaProducer(acks="all", **kp_sasl(sg.sasl, "acme/default", token))
    second = [b"kafka-python-%d" % i for i in range(100)]
    for v in second:
        producer.send(topic, v)
    producer.flush(30)
    producer.close()
    assert consume(sasl_conf(sg.sasl_ssl, "acme", token, secure.ca), topic, 300) == first + second


def test_globex_can_neither_read_nor_see_acmes_topics(secure, secure_gateways):
    sg = secure_gateways()
    topic = unique("acme-secret")
    produce(sasl_conf(sg.sasl, "acme", secure.tokens["acme"]), topic, [b"secret"] * 10)
    # globex's token on acme's namespace: authenticated, but Pulsar refuses every operation.
    intruder = AdminClient(sasl_conf(sg.sasl, "acme", secure.tokens["globex"]))
    md = intruder.list_topics(topic, timeout=30)
    assert md.topics[topic].error is not None
    assert md.topics[topic].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, md.topics[topic].error
    errors = []
    consumer = Consumer({**sasl_conf(sg.sasl, "acme", secure.tokens["globex"]), "group.id": unique("steal"),
                         "auto.offset.reset": "earliest", "error_cb": lambda e: errors.append(e)})
    consumer.subscribe([topic])
    stolen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for m in consumer.consume(100, 0.5):
            if m.error():
                errors.append(m.error())
            else:
                stolen.append(m.value())
    consumer.close()
    assert not stolen
    codes = {e.code() for e in errors}
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes or KafkaError.GROUP_AUTHORIZATION_FAILED in codes, errors
    # nor read or commit the offsets of acme's groups.
    acme_group = unique("acme-group")
    acme_consumer = Consumer({**sasl_conf(sg.sasl, "acme", secure.tokens["acme"]), "group.id": acme_group,
                              "enable.auto.commit": False})
    acme_consumer.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    acme_consumer.close()
    request = ConsumerGroupTopicPartitions(acme_group, [TopicPartition(topic, 0)])
    with pytest.raises(KafkaException) as info:
        intruder.list_consumer_group_offsets([request])[acme_group].result(30)
    assert info.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED, info.value
    listed = intruder.list_consumer_groups().result(30).valid
    assert acme_group not in [g.group_id for g in listed]
    log = sg.gw.log()  # each refusal is logged with its reason
    assert "TOPIC_AUTHORIZATION_FAILED" in log and "GROUP_AUTHORIZATION_FAILED" in log
    # globex in its own namespace does not see acme's topic at all.
    own = AdminClient(sasl_conf(sg.sasl, "globex", secure.tokens["globex"])).list_topics(timeout=30)
    assert topic not in own.topics
    # acme still works through the same gateway.
    assert consume(sasl_conf(sg.sasl, "acme", secure.tokens["acme"]), topic, 10) == [b"secret"] * 10


def test_wrong_token_and_requests_before_authentication(secure, secure_gateways):
    sg = secure_gateways()
    with RawClient(sg.sasl) as client:
        resp = sasl_handshake(client, "SCRAM-SHA-256")
        assert resp.error_code == UNSUPPORTED_SASL_MECHANISM and set(resp.mechanisms) == {"PLAIN", "OAUTHBEARER"}
    with RawClient(sg.sasl) as client:
        assert sasl_handshake(client).error_code == 0
        resp = authenticate(client, b"\x00acme\x00token:not-a-jwt")
        assert resp.error_code == SASL_AUTHENTICATION_FAILED and "Authentication failed" in resp.error_message
        assert read_frame(client.sock, 10) is None, "the connection must be closed after a failed authentication"
    with RawClient(sg.sasl) as client:  # anything but ApiVersions/SASL first: closed
        client.send(MetadataRequest(topics=None, allow_auto_topic_creation=False), 1)
        assert read_frame(client.sock, 10) is None
    with RawClient(sg.plain) as client:  # SASL on a PLAINTEXT listener
        assert sasl_handshake(client).error_code == ILLEGAL_SASL_STATE
    errors = []
    producer = Producer({**sasl_conf(sg.sasl, "acme", "bogus"), "error_cb": lambda e: errors.append(e)})
    producer.produce(unique("never"), b"x")
    producer.flush(10)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert "SASL authentication failed" in sg.gw.log()
    # The legacy flow (SaslHandshake v0, then a bare token) authenticates too, and kop still serves.
    sock = socket.create_connection(("127.0.0.1", sg.sasl_port), timeout=10)
    sock.sendall(raw_request(17, 0, struct.pack(">h", 5) + b"PLAIN"))
    assert read_frame(sock) is not None
    token = b"\x00acme\x00token:" + secure.tokens["acme"].encode()
    sock.sendall(struct.pack(">i", len(token)) + token)
    assert read_frame(sock) == b"", "a successful PLAIN exchange answers an empty token"
    sock.sendall(raw_request(3, 1, struct.pack(">i", -1)))
    frame = read_frame(sock)
    assert frame is not None and MetadataResponse[1].decode(frame[4:]).brokers
    sock.close()


def test_reauthentication_keeps_the_tenant(secure, secure_gateways):
    sg = secure_gateways()
    acme = b"\x00acme\x00token:" + secure.tokens["acme"].encode()
    with RawClient(sg.sasl) as client:
        assert sasl_handshake(client).error_code == 0
        assert authenticate(client, acme).error_code == 0
        assert sasl_handshake(client).error_code == 0  # KIP-368
        assert authenticate(client, acme).error_code == 0
        assert client.call(MetadataRequest(topics=None, allow_auto_topic_creation=False), 1, MetadataResponse).brokers
        assert sasl_handshake(client).error_code == 0
        resp = authenticate(client, b"\x00globex\x00token:" + secure.tokens["globex"].encode())
        assert resp.error_code == SASL_AUTHENTICATION_FAILED
        assert read_frame(client.sock, 10) is None


class _Tokens(AbstractTokenProvider):
    def __init__(self, token: str, extensions: dict[str, str]) -> None:
        super().__init__()
        self._token, self._extensions = token, extensions

    def token(self) -> str:
        return self._token

    def extensions(self) -> dict[str, str]:
        return self._extensions


def test_oauthbearer_carries_the_pulsar_token(secure, secure_gateways):
    sg = secure_gateways()
    topic = unique("oauth")
    conf = dict(bootstrap_servers=sg.sasl, security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                sasl_oauth_token_provider=_Tokens(secure.tokens["acme"], {"tenant": "acme"}))
    producer = KafkaProducer(acks="all", **conf)
    for i in range(20):
        producer.send(topic, b"o%d" % i)
    producer.flush(30)
    producer.close()
    status, meta = admin(f"persistent/acme/default/{topic}/partitions", url=ADMIN_URL, token=secure.tokens["admin"])
    assert status == 200, meta
    assert consume(sasl_conf(sg.sasl, "acme", secure.tokens["acme"]), topic, 20) == [b"o%d" % i for i in range(20)]
    assert "(OAUTHBEARER, Pulsar namespace acme/default)" in sg.gw.log()


def test_tls_listeners_and_mtls(secure, secure_gateways):
    sg = secure_gateways()
    topic = unique("tls")
    ssl_conf = {"bootstrap.servers": sg.ssl, "security.protocol": "SSL", "ssl.ca.location": secure.ca}
    produce(ssl_conf, topic, [b"t%d" % i for i in range(50)])
    assert consume(ssl_conf, topic, 50) == [b"t%d" % i for i in range(50)]
    # A plaintext client on a TLS port: the handshake fails, kop closes with a log line, and keeps serving.
    with socket.create_connection(("127.0.0.1", sg.ssl_port), timeout=10) as sock:
        sock.sendall(raw_request(18, 0, b""))
        received = b""
        closed = False
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
        assert closed, "kop must close a connection that does not speak TLS"
        assert not received or received[0] == 0x15, f"at most a TLS alert may come back, got {received[:20]!r}"
    deadline = time.monotonic() + 5
    while "TLS handshake with" not in sg.gw.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "TLS handshake with" in sg.gw.log()
    assert consume(ssl_conf, topic, 50) == [b"t%d" % i for i in range(50)]
    # mTLS: a client certificate is required.
    mtls = secure_gateways(client_auth="required")
    # It joins the first gateway's fleet: let the group handover settle first (a consumer joining
    # during the handover once received nothing for 60 s; see the closing note of this change).
    deadline = time.monotonic() + 20
    while "coordinating __offsets partition" not in mtls.gw.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)
    with_cert = {**ssl_conf, "bootstrap.servers": mtls.ssl, "ssl.certificate.location": str(secure.tls / "client.pem"),
                 "ssl.key.location": str(secure.tls / "client.key")}
    assert consume(with_cert, topic, 50) == [b"t%d" % i for i in range(50)]
    assert "with client certificate CN=kop-test-client,O=acme" in mtls.gw.log()
    errors = []
    producer = Producer({**ssl_conf, "bootstrap.servers": mtls.ssl, "error_cb": lambda e: errors.append(e)})
    producer.produce(topic, b"no cert")
    assert producer.flush(10) == 1, "without a client certificate nothing may be delivered"
    assert errors


def test_groups_are_per_tenant(secure, secure_gateways):
    sg = secure_gateways()
    group, topic = unique("shared"), unique("grp")
    for tenant, offset in (("acme", 3), ("globex", 7)):
        conf = sasl_conf(sg.sasl, tenant, secure.tokens[tenant])
        produce(conf, topic, [b"x"] * 10)
        consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < offset and time.monotonic() < deadline:
            seen += [m for m in consumer.consume(1, 0.5) if not m.error()]
        consumer.commit(message=seen[offset - 1], asynchronous=False)
        consumer.close()
    for tenant, offset in (("acme", 3), ("globex", 7)):
        admin_client = AdminClient(sasl_conf(sg.sasl, tenant, secure.tokens[tenant]))
        listed = admin_client.list_consumer_groups().result(30).valid
        assert [g.group_id for g in listed if g.group_id == group] == [group]
        result = admin_client.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])[group].result(30)
        assert result.topic_partitions[0].offset > 0

        def subscriptions() -> dict:
            return admin(f"persistent/{tenant}/default/{topic}-partition-0/stats?getPreciseBacklog=true",
                         url=ADMIN_URL, token=secure.tokens["admin"])[1]["subscriptions"]
        deadline = time.monotonic() + 15  # the cursor sync runs every second
        while f"kafka-group-{group}" not in subscriptions() and time.monotonic() < deadline:
            time.sleep(0.2)
        sub = subscriptions().get(f"kafka-group-{group}")
        assert sub is not None, subscriptions().keys()
        assert sub["msgBacklog"] >= 1, sub  # the entry holding the records not yet consumed (entry granularity)
    # Without SASL (the default namespace) neither group exists.
    plain = AdminClient({"bootstrap.servers": sg.plain}).list_consumer_groups().result(30).valid
    assert group not in [g.group_id for g in plain]


def test_scram_users_kept_by_kop(secure, secure_gateways, tmp_path):
    users = tmp_path / "scram-users.json"
    token_file = tmp_path / "acme.jwt"
    token_file.write_text(secure.tokens["acme"])
    add = subprocess.run([sys.executable, "-m", "kop.cli", "scram", "add", "alice", "--file", str(users),
                          "--tenant", "acme", "--token-file", str(token_file)], input=b"alice-secret\n",
                         capture_output=True, cwd=ROOT)
    assert add.returncode == 0, add.stderr
    stored = users.read_text()
    assert "alice-secret" not in stored and secure.tokens["acme"] in stored
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    sg = secure_gateways(env={"KOP_SASL_MECHANISMS": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                              "KOP_SASL_SCRAM_CREDENTIALS_FILE": str(users)})
    topic = unique("scram")
    conf = {"bootstrap.servers": sg.sasl_ssl, "security.protocol": "SASL_SSL", "ssl.ca.location": secure.ca,
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret"}
    produce(conf, topic, [b"s%d" % i for i in range(30)])
    status, _ = admin(f"persistent/acme/default/{topic}/partitions", url=ADMIN_URL, token=secure.tokens["admin"])
    assert status == 200
    consumer = KafkaConsumer(topic, group_id=unique("scram"), auto_offset_reset="earliest", consumer_timeout_ms=20_000,
                             bootstrap_servers=sg.sasl, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice",
                             sasl_plain_password="alice-secret")
    got = [m.value for _, m in zip(range(30), consumer)]
    consumer.close()
    assert got == [b"s%d" % i for i in range(30)]
    errors = []
    producer = Producer({**conf, "sasl.password": "wrong", "error_cb": lambda e: errors.append(e)})
    producer.produce(topic, b"x")
    producer.flush(10)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert "SCRAM-SHA-512: invalid credentials" in sg.gw.log()


def test_a_fleet_advertises_each_listener(secure, secure_gateways):
    """Two gateways: a client on a SASL listener is told every gateway's SASL address (the fleet
    registry carries each listener's advertised address), a PLAINTEXT client the PLAINTEXT ones."""
    a, b = secure_gateways(), secure_gateways()
    expected_sasl = {("127.0.0.1", a.sasl_port), ("127.0.0.1", b.sasl_port)}
    expected_plain = {("127.0.0.1", a.gw.port), ("127.0.0.1", b.gw.port)}
    deadline = time.monotonic() + 15
    while True:
        md = AdminClient(sasl_conf(a.sasl, "acme", secure.tokens["acme"])).list_topics(timeout=30)
        sasl = {(br.host, br.port) for br in md.brokers.values()}
        plain = {(br.host, br.port) for br in AdminClient({"bootstrap.servers": b.plain}).list_topics(timeout=30)
                 .brokers.values()}
        if (sasl, plain) == (expected_sasl, expected_plain) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sasl == expected_sasl and plain == expected_plain
    # A group coordinated by either gateway works through the SASL listeners of both.
    topic = unique("fleet-sasl")
    conf = sasl_conf(f"{a.sasl},{b.sasl}", "acme", secure.tokens["acme"])
    produce(conf, topic, [b"f%d" % i for i in range(20)])
    assert consume(conf, topic, 20) == [b"f%d" % i for i in range(20)]


def test_transactions_are_per_tenant(secure, secure_gateways):
    """Transactional ids are scoped to the client's tenant like group ids (issue 18): two tenants using
    the same transactional id and group id do not fence each other, each tenant's markers land in its
    own namespace (written with kop's client), and a transaction's offsets go to its own tenant's group."""
    sg = secure_gateways()
    tid, group, topic = unique("shared-tid"), unique("shared-group"), unique("txn")
    producers = {}
    for tenant in ("acme", "globex"):
        conf = sasl_conf(sg.sasl, tenant, secure.tokens[tenant])
        produce(conf, topic, [b"seed"])  # the topic exists in the tenant's namespace
        producer = Producer({**conf, "transactional.id": tid})
        producer.init_transactions(60)
        producers[tenant] = producer
    for offset, tenant in ((5, "acme"), (9, "globex")):  # the second init did not fence the first tenant
        producer = producers[tenant]
        producer.begin_transaction()
        producer.produce(topic, value=tenant.encode(), partition=0)
        producer.flush(30)
        conf = sasl_conf(sg.sasl, tenant, secure.tokens[tenant])
        metadata = Consumer({**conf, "group.id": group}).consumer_group_metadata()
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], metadata, 30)
        producer.commit_transaction(60)
    for offset, tenant in ((5, "acme"), (9, "globex")):
        conf = sasl_conf(sg.sasl, tenant, secure.tokens[tenant])
        reader = Consumer({**conf, "group.id": unique("r"), "isolation.level": "read_committed",
                           "enable.auto.commit": False})
        reader.assign([TopicPartition(topic, 0, 0)])
        values, deadline = [], time.monotonic() + 30
        while len(values) < 2 and time.monotonic() < deadline:
            values += [m.value() for m in reader.consume(10, 0.5) if not m.error()]
        reader.close()
        assert values == [b"seed", tenant.encode()], (tenant, values)
        admin_client = AdminClient(conf)
        deadline = time.monotonic() + 30  # the group's coordinator resolves the offsets from its view
        while True:
            got = admin_client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])[group].result(30)
            if got.topic_partitions[0].offset == offset or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert got.topic_partitions[0].offset == offset, (tenant, got.topic_partitions)
