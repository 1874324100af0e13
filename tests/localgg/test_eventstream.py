"""The frame codec: byte-exact against frames captured from the real SDK, and every header type round-trips."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localgg.eventstream import (
    MAX_HEADER_VALUE,
    MAX_MESSAGE_SIZE,
    Decoder,
    FramingError,
    Header,
    HeaderType,
    Message,
    encode,
)

# ../shared/docs/greengrass-ipc.md §13.3: frames captured from awsiotsdk 1.31.0.
SDK_CONNECT = bytes.fromhex(
    "0000007900000048e9e79475083a76657273696f6e070005302e312e300d3a6d6573736167652d7479706504000000040e3a6d657373"
    "6167652d666c61677304000000000a3a73747265616d2d696404000000007b2261757468546f6b656e223a20225055424c495348455253"
    "564355494430227da3ff00f4"
)
SERVER_CONNECT_ACK = bytes.fromhex(
    "0000004700000037374cfe3f0d3a6d6573736167652d7479706504000000050e3a6d6573736167652d666c61677304000000010a3a73"
    "747265616d2d69640400000000e237e27d"
)


def test_decodes_the_sdk_connect_frame() -> None:
    (message,) = Decoder().feed(SDK_CONNECT)
    assert [(h.name, h.value) for h in message.headers] == [
        (":version", "0.1.0"),
        (":message-type", 4),
        (":message-flags", 0),
        (":stream-id", 0),
    ]
    assert message.payload == b'{"authToken": "PUBLISHERSVCUID0"}'
    assert encode(message) == SDK_CONNECT


def test_encodes_the_connect_ack_the_sdk_accepts_byte_for_byte() -> None:
    ack = Message([Header.int32(":message-type", 5), Header.int32(":message-flags", 1), Header.int32(":stream-id", 0)])
    assert encode(ack) == SERVER_CONNECT_ACK


header_values = {
    HeaderType.BOOL_TRUE: st.just(True),
    HeaderType.BOOL_FALSE: st.just(False),
    HeaderType.BYTE: st.integers(-128, 127),
    HeaderType.INT16: st.integers(-(2**15), 2**15 - 1),
    HeaderType.INT32: st.integers(-(2**31), 2**31 - 1),
    HeaderType.INT64: st.integers(-(2**63), 2**63 - 1),
    HeaderType.TIMESTAMP: st.integers(-(2**63), 2**63 - 1),
    HeaderType.BYTE_BUF: st.binary(max_size=300),
    HeaderType.STRING: st.text(max_size=100),
    HeaderType.UUID: st.uuids(),
}
headers = st.sampled_from(list(HeaderType)).flatmap(
    lambda kind: st.builds(Header, st.text(min_size=1, max_size=20), st.just(kind), header_values[kind])
)
messages = st.builds(Message, st.lists(headers, max_size=12), st.binary(max_size=2000))


@given(st.lists(messages, min_size=1, max_size=5), st.integers(1, 64))
def test_round_trip_in_any_chunking(batch: list[Message], chunk: int) -> None:
    stream = b"".join(encode(m) for m in batch)
    decoder, out = Decoder(), []
    for at in range(0, len(stream), chunk):
        out += decoder.feed(stream[at : at + chunk])
    assert out == batch


@given(
    st.lists(headers, max_size=6),
    st.lists(headers, max_size=6),
    st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1), st.booleans(), st.booleans()), min_size=1, max_size=8),
)
def test_reused_header_decoding_equals_a_fresh_one(
    before: list[Header], after: list[Header], frames: list[tuple[int, bool, bool]]
) -> None:
    """The decoder reuses the previous frame's headers when only the stream id differs: a stream of frames
    where the stream id, another header's value and the layout vary decodes exactly as frame by frame."""
    batch = [
        Message(
            [
                *before,
                Header.int32(":stream-id", stream_id),
                *(after if same_layout else after[:-1]),
                Header.string("operation", "one" if other_value else "two"),  # same length, other bytes
            ],
            b"x",
        )
        for stream_id, same_layout, other_value in frames
    ]
    decoder = Decoder()
    assert [decoder.feed(encode(message))[0] for message in batch] == batch
    for message in batch:  # lookups by name see the new stream id too
        assert decoder.feed(encode(message))[0].header(":STREAM-ID") == message.header(":stream-id")


@given(messages, st.data())
def test_any_flipped_byte_is_detected(message: Message, data: st.DataObject) -> None:
    frame = bytearray(encode(message))
    at = data.draw(st.integers(0, len(frame) - 1))
    frame[at] ^= data.draw(st.integers(1, 255))
    try:
        decoded = Decoder().feed(bytes(frame))
    except FramingError:
        return
    assert decoded == []  # a corrupted length can only make the decoder wait for more bytes


def test_a_failed_decoder_stays_failed() -> None:
    decoder = Decoder()
    with pytest.raises(FramingError):
        decoder.feed(b"\x00" * 16)
    with pytest.raises(FramingError):
        decoder.feed(encode(Message()))


def test_limits_are_those_of_aws_c_event_stream() -> None:
    with pytest.raises(ValueError, match="over 32767"):
        encode(Message([Header("big", HeaderType.BYTE_BUF, b"x" * (MAX_HEADER_VALUE + 1))]))
    with pytest.raises(ValueError, match="event-stream limit"):
        encode(Message(payload=b"x" * MAX_MESSAGE_SIZE))
    with pytest.raises(ValueError, match="1-255 bytes"):
        encode(Message([Header("n" * 256, HeaderType.BOOL_TRUE, True)]))
    huge = bytearray(encode(Message()))
    huge[0:4] = (MAX_MESSAGE_SIZE + 1).to_bytes(4, "big")
    import zlib

    huge[8:12] = zlib.crc32(bytes(huge[:8])).to_bytes(4, "big")
    with pytest.raises(FramingError, match="outside"):
        Decoder().feed(bytes(huge))


def test_header_names_match_case_insensitively() -> None:
    message = Message(
        [Header.string(":Content-Type", "application/json"), Header("id", HeaderType.UUID, uuid.UUID(int=1))]
    )
    assert message.header(":content-type") is not None
    assert message.header("missing") is None
