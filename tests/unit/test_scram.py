"""kop's SCRAM server against kafka-python's SCRAM client (an independent implementation)."""

from __future__ import annotations

import base64

import pytest
from kafka.net.sasl.scram import ScramClient

from kop.protocol.scram import MIN_ITERATIONS, ScramError, ScramServer, make_credential


def exchange(mechanism: str, user: str, password: str, stored_password: str = "s3cret", tamper=None):
    credential = make_credential(mechanism, stored_password, iterations=MIN_ITERATIONS)
    server = ScramServer(mechanism, lambda name: credential if name == "alice" else None)
    client = ScramClient(user, password, mechanism)
    server_first = server.first(client.first_message())
    client.process_server_first_message(server_first)
    final = client.final_message()
    if tamper:
        final = tamper(final)
    server_final = server.final(final)
    client.process_server_final_message(server_final)  # raises if the server's proof is wrong
    return server


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_right_password_authenticates_both_ways(mechanism):
    server = exchange(mechanism, "alice", "s3cret")
    assert server.done and server.user == "alice"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_wrong_password_or_user_fails(mechanism):
    with pytest.raises(ScramError, match="invalid credentials"):
        exchange(mechanism, "alice", "guess")
    with pytest.raises(ScramError, match="unknown user"):
        exchange(mechanism, "mallory", "s3cret")


def test_tampered_final_messages_fail():
    def swap_nonce(final: bytes) -> bytes:
        parts = final.decode().split(",")
        parts[1] = "r=" + "A" * 40
        return ",".join(parts).encode()

    def flip_proof(final: bytes) -> bytes:
        head, _, proof = final.decode().rpartition(",p=")
        raw = bytearray(base64.b64decode(proof))
        raw[0] ^= 1
        return f"{head},p={base64.b64encode(bytes(raw)).decode()}".encode()

    def drop_proof(final: bytes) -> bytes:
        return final.decode().rpartition(",p=")[0].encode()

    for tamper in (swap_nonce, flip_proof, drop_proof, lambda f: b"c=eSws" + f[6:], lambda f: b"\xff"):
        with pytest.raises(ScramError):
            exchange("SCRAM-SHA-256", "alice", "s3cret", tamper=tamper)


@pytest.mark.parametrize("first", [b"", b"p=tls,,n=alice,r=abc", b"n,,r=abc", b"n,,n=alice", b"n,,n=alice,r=",
                                   b"n,,n=alice,r=abc,tokenauth=true", b"n,a=bob,n=alice,r=abc", b"n,,n=al=ce,r=x",
                                   b"\xff\xfe"])
def test_malformed_client_first_messages_fail(first):
    credential = make_credential("SCRAM-SHA-256", "pw", iterations=MIN_ITERATIONS)
    with pytest.raises(ScramError):
        ScramServer("SCRAM-SHA-256", lambda name: credential).first(first)


def test_final_before_first_and_weak_iterations_are_refused():
    credential = make_credential("SCRAM-SHA-256", "pw", iterations=MIN_ITERATIONS)
    with pytest.raises(ScramError):
        ScramServer("SCRAM-SHA-256", lambda name: credential).final(b"c=biws,r=x,p=AAAA")
    with pytest.raises(ValueError):
        make_credential("SCRAM-SHA-256", "pw", iterations=1000)


def test_the_credential_does_not_contain_the_password():
    credential = make_credential("SCRAM-SHA-512", "correct horse", iterations=MIN_ITERATIONS)
    assert b"correct horse" not in credential.stored_key + credential.server_key + credential.salt
