"""kop.backend.wire's sans-IO parts: the protobuf codec, the commands, framing and batch entries.

Cross-checked where a second implementation exists: the frames kop writes are parsed by Pulsar's
own client in the integration tests (a native consumer reads what kop wrote); here the codec is
checked against itself on random values, against hand-computed protobuf bytes, and the hand-written
fast paths against the generic codec.
"""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from kop.backend import batch_codec
from kop.backend.convert import PRODUCER, kafka_entry_properties
from kop.backend.wire import commands as cmd
from kop.backend.wire.entries import EntryError, compress, decompress, encode_batch, key_values, split
from kop.backend.wire.frames import FrameDecoder, FrameError, command, payload_frame, send_command
from kop.backend.wire.proto import DecodeError, read_varint, varint_bytes

u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)


def test_minus_one_positions_read_back_as_minus_one():
    """Pulsar writes Java longs into MessageIdData's uint64 fields: -1 (no entry) is 2**64 - 1."""
    wire = b"\x08" + b"\xff" * 9 + b"\x01" + b"\x10" + b"\xff" * 9 + b"\x01"
    assert cmd.MessageIdData.decode(wire) == {"ledgerId": -1, "entryId": -1}


def test_known_encodings():
    # Protobuf's own examples: field 1 varint 150 is 08 96 01; a string field 2 "testing".
    msg = cmd.CommandFlow
    assert msg.encode({"consumer_id": 150}) == b"\x08\x96\x01"
    assert cmd.KeyValue.encode({"key": "a", "value": "testing"}) == b"\x0a\x01a\x12\x07testing"
    # A negative int32 is sign-extended to ten bytes.
    assert cmd.MessageIdData.encode({"ledgerId": 1, "entryId": 2, "batch_index": -1}) == \
        b"\x08\x01\x10\x02\x20" + b"\xff" * 9 + b"\x01"


@settings(max_examples=300)
@given(i64, i64, i32, i32, st.lists(i64, max_size=4))
def test_message_id_round_trip(ledger, entry, partition, batch_index, ack_set):
    values = {"ledgerId": ledger, "entryId": entry, "partition": partition, "batch_index": batch_index,
              "ack_set": ack_set}
    decoded = cmd.MessageIdData.decode(cmd.MessageIdData.encode(values))
    assert decoded == {k: v for k, v in values.items() if v != []}


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5), st.text(max_size=20),
       u64, st.booleans())
def test_metadata_round_trip(properties, key, event_time, null_value):
    values = {"producer_name": "p", "sequence_id": 3, "publish_time": 4, "properties": key_values(properties),
              "partition_key": key, "event_time": event_time, "null_value": null_value}
    decoded = cmd.MessageMetadata.decode(cmd.MessageMetadata.encode(values))
    if not properties:
        values.pop("properties")
    assert decoded == values


def test_unknown_fields_are_skipped():
    known = cmd.CommandFlow.encode({"consumer_id": 7, "messagePermits": 9})
    # field 15 varint, field 16 fixed64, field 17 length-delimited, field 18 fixed32
    extra = b"\x78\x05" + b"\x81\x01" + b"\x00" * 8 + b"\x8a\x01\x02ab" + b"\x95\x01" + b"\x00" * 4
    assert cmd.CommandFlow.decode(extra + known) == {"consumer_id": 7, "messagePermits": 9}


@pytest.mark.parametrize("data", [b"\x08", b"\x0a\x05ab", b"\x80" * 11, b"\x0b"])
def test_malformed_bytes_raise_decode_error(data):
    with pytest.raises(DecodeError):
        cmd.KeyValue.decode(data)


@given(u64)
def test_varints(value):
    encoded = varint_bytes(value)
    assert read_varint(encoded, 0) == (value, len(encoded))


def test_send_receipt_fast_path_equals_generic_decoder():
    body = {"producer_id": 3, "sequence_id": 2**40, "message_id": {"ledgerId": 9, "entryId": 12, "partition": -1},
            "highest_sequence_id": 0}
    frame = command(cmd.SEND_RECEIPT, body)
    (decoded,) = FrameDecoder().feed(frame)
    assert decoded.type == cmd.SEND_RECEIPT
    assert decoded.body == cmd.BaseCommand.decode(frame, 8)["send_receipt"] == body


def test_send_command_fast_path_equals_generic_encoder():
    for producer_id, sequence_id, count, highest in [(1, 0, 1, 0), (2**33, 2**50, 500, 2**50 + 499)]:
        fields = {"producer_id": producer_id, "sequence_id": sequence_id}
        if count != 1:
            fields["num_messages"] = count
        if highest:
            fields["highest_sequence_id"] = highest
        assert bytes(send_command(producer_id, sequence_id, count, highest)) == \
            cmd.BaseCommand.encode({"type": cmd.SEND, "send": fields})


def test_kafka_entry_metadata_fast_path_equals_generic_encoder():
    for count, stamp, tag in [(1, 0, None), (7, 1_700_000_000_000, "1:2:3:9"), (5000, 5, "9:0:0:4999")]:
        properties = kafka_entry_properties(count)
        if tag:
            properties[PRODUCER] = tag
        fields = {"properties": key_values(properties)}
        if stamp:
            fields["event_time"] = stamp
        assert batch_codec.kafka_entry_metadata(count, stamp, tag) == cmd.MessageMetadata.encode(fields)


def _broker_frame(metadata: dict, payload: bytes, index: int | None = None, corrupt: bool = False) -> bytes:
    """A MESSAGE frame as a broker sends it, with broker entry metadata when ``index`` is given."""
    base = cmd.BaseCommand.encode({"type": cmd.MESSAGE, "message": {
        "consumer_id": 4, "message_id": {"ledgerId": 10, "entryId": 20}}})
    meta = cmd.MessageMetadata.encode(metadata)
    head = struct.pack(">I", len(meta)) + meta
    checksum = crc32c(payload, value=crc32c(head)) ^ (1 if corrupt else 0)
    body = b""
    if index is not None:
        broker = cmd.BrokerEntryMetadata.encode({"broker_timestamp": 5, "index": index})
        body += struct.pack(">HI", 0x0E02, len(broker)) + broker
    body += struct.pack(">HI", 0x0E01, checksum) + head + payload
    return struct.pack(">II", 4 + len(base) + len(body), len(base)) + base + body


def test_message_frames_parse_whole_and_byte_by_byte():
    metadata = {"producer_name": "x", "sequence_id": 1, "publish_time": 2, "num_messages_in_batch": 2}
    frames = _broker_frame(metadata, b"payload-1", index=41) + _broker_frame(metadata, b"payload-2")
    whole = FrameDecoder().feed(frames)
    decoder, piecemeal = FrameDecoder(), []
    for i in range(len(frames)):
        piecemeal += decoder.feed(frames[i:i + 1])
    for parsed in (whole, piecemeal):
        assert [f.payload for f in parsed] == [b"payload-1", b"payload-2"]
        assert parsed[0].broker_entry == {"broker_timestamp": 5, "index": 41} and parsed[1].broker_entry is None
        assert all(f.checksum_ok and f.metadata == metadata for f in parsed)
        assert parsed[0].body["message_id"] == {"ledgerId": 10, "entryId": 20}


def test_a_corrupt_checksum_is_reported():
    (frame,) = FrameDecoder().feed(_broker_frame({"producer_name": "x", "sequence_id": 1, "publish_time": 2},
                                                 b"p", corrupt=True))
    assert not frame.checksum_ok


def test_payload_frames_carry_a_valid_checksum():
    metadata = cmd.MessageMetadata.encode({"producer_name": "p", "sequence_id": 5, "publish_time": 6})
    data = b"".join(payload_frame(send_command(1, 5, 1), metadata, b"the payload"))
    total, size = struct.unpack_from(">II", data)
    assert total == len(data) - 4
    pos = 8 + size
    magic, checksum = struct.unpack_from(">HI", data, pos)
    assert magic == 0x0E01 and checksum == crc32c(data[pos + 6:])


@pytest.mark.parametrize("total", [0, 3, 2**31])
def test_impossible_frame_sizes_are_refused_before_buffering(total):
    with pytest.raises(FrameError):
        FrameDecoder(max_frame_size=1 << 20).feed(struct.pack(">I", total) + b"\x00" * 8)


@pytest.mark.parametrize("codec", [cmd.NONE, cmd.LZ4, cmd.ZLIB, cmd.ZSTD, cmd.SNAPPY])
def test_batch_entries_split_in_every_pulsar_codec(codec):
    messages = [({"partition_key": "k", "event_time": 3}, b"one"), ({"null_value": True}, b""),
                ({"properties": key_values({"a": "b"})}, b"three" * 100)]
    payload = encode_batch([(dict(m), p) for m, p in messages])
    metadata = {"num_messages_in_batch": 3}
    if codec != cmd.NONE:
        metadata.update(compression=codec, uncompressed_size=len(payload))
        payload = compress(codec, payload)
    singles = split(metadata, payload)
    assert [s.payload for s in singles] == [b"one", b"", b"three" * 100]
    assert singles[1].metadata["null_value"] is True


def test_entries_that_lie_about_their_size_are_refused():
    payload = compress(cmd.ZSTD, b"x" * 1000)
    with pytest.raises(EntryError):
        decompress({"compression": cmd.ZSTD, "uncompressed_size": 10 ** 9}, payload, 1 << 20)
    with pytest.raises(EntryError):
        split({"num_messages_in_batch": 2}, encode_batch([({}, b"a")]))


def test_kop_check_speaks_the_clients_connect_and_names_what_contiguous_offsets_lack():
    from kop.backend.entry_index import missing_entry_index
    from kop.backend.probe import connect_frame
    [frame] = FrameDecoder().feed(connect_frame("tok"))
    assert frame.type == cmd.CONNECT
    assert frame.body["auth_method_name"] == "token" and frame.body["auth_data"] == b"tok"
    assert frame.body["client_version"].startswith("kop-check")
    index = "org.apache.pulsar.common.intercept.AppendIndexMetadataInterceptor"
    assert missing_entry_index({"brokerEntryMetadataInterceptors": index,
                                "exposingBrokerEntryMetadataToClientEnabled": "true"}) == ""
    assert missing_entry_index({"brokerEntryMetadataInterceptors": index}) == "exposingBrokerEntryMetadataToClientEnabled=true"
    both = missing_entry_index({})
    assert "AppendIndexMetadataInterceptor" in both and "exposingBrokerEntryMetadataToClientEnabled" in both
