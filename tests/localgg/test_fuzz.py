"""Thousands of malformed, truncated and corrupt frames and out-of-order streams, over real sockets, while a real
SDK publisher and subscriber keep talking through the same server: it never crashes nor disturbs them."""

from __future__ import annotations

import contextlib
import json
import socket

from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localgg.eventstream import Header, HeaderType, Message, encode
from tests.localgg.harness import CoreThread, pubsub
from tests.support.eventually import eventually
from tests.support.fuzzing import examples

OPERATIONS = [
    "aws.greengrass#PublishToTopic",
    "aws.greengrass#SubscribeToTopic",
    "aws.greengrass#GetConfiguration",
    "aws.greengrass#UpdateState",
    "aws.greengrass#Nope",
    "",
]


def connect_frame(token: str) -> bytes:
    return encode(
        Message(
            [
                Header.string(":version", "0.1.0"),
                Header.int32(":message-type", 4),
                Header.int32(":message-flags", 0),
                Header.int32(":stream-id", 0),
            ],
            json.dumps({"authToken": token}).encode(),
        )
    )


ints = st.integers(-3, 9)
rpc_frames = st.builds(
    lambda kind, flags, stream, op, payload, extra: encode(
        Message(
            [
                Header.int32(":message-type", kind),
                Header.int32(":message-flags", flags),
                Header.int32(":stream-id", stream),
            ]
            + ([Header.string("operation", op)] if op else [])
            + extra,
            payload,
        )
    ),
    ints,
    st.integers(0, 3),
    st.integers(-1, 8),
    st.sampled_from(OPERATIONS),
    st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"{}",
                b'{"topic": "fuzz/a", "publishMessage": {}}',
                b'{"topic": "", "publishMessage": {"jsonMessage": 1}}',
                b'{"topic": "fuzz/+"}',
                b"[]",
                b"null",
            ]
        ),
    ),
    st.lists(
        st.builds(Header, st.text(min_size=1, max_size=8), st.sampled_from(list(HeaderType)), st.just(0)).filter(
            lambda h: h.type in (HeaderType.INT32, HeaderType.BYTE)
        ),
        max_size=2,
    ),
)


def corrupt(frame: bytes, at: int, value: int) -> bytes:
    data = bytearray(frame)
    data[at % len(data)] ^= value or 1
    return bytes(data)


garbage = st.one_of(
    st.binary(max_size=300),
    rpc_frames,
    st.builds(lambda f, n: f[: n % max(1, len(f))], rpc_frames, st.integers(0, 400)),  # truncated
    st.builds(corrupt, rpc_frames, st.integers(0, 400), st.integers(0, 255)),  # corrupted
)


def send(path: str, data: bytes) -> None:
    """Sends `data`, then half-closes: the server must read it all and end the connection (a close, or a reset when
    it closed with bytes unread) within the timeout. A server that neither answers nor closes fails here."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(10)
        raw.connect(path)
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while raw.recv(65536):
                pass


def test_garbage_never_disturbs_other_clients(gg: CoreThread) -> None:
    """Each example's verdict is its own: the server ends the connection, records no error (judged per example,
    so a failure names its example) and a real SDK pair on the same server still talks afterwards."""
    gg.component("Sub", configuration={"accessControl": pubsub("*")})
    token = gg.component("Fuzzer", configuration={"accessControl": pubsub("fuzz/*")})
    received: list[bytes] = []
    gg.client("Sub").subscribe_to_topic(
        topic="steady", on_stream_event=lambda e: received.append(bytes(e.binary_message.message))
    )

    # Listing the checks replaces the profile's list (tests/conftest.py), so too_slow is named again here.
    @settings(max_examples=examples(1500), suppress_health_check=[HealthCheck.too_slow])
    @given(authenticated=st.booleans(), chunks=st.lists(garbage, min_size=1, max_size=6))
    def fuzzed(authenticated: bool, chunks: list[bytes]) -> None:
        prefix = connect_frame(token) if authenticated else b""
        send(str(gg.core.socket), prefix + b"".join(chunks))
        assert gg.unjudged() == [], "the server raised or logged errors"

    fuzzed()
    gg.client("Sub").publish_to_topic(
        topic="steady", publish_message=PublishMessage(binary_message=BinaryMessage(message=b"still here"))
    )
    eventually(lambda: b"still here" in received, what="the steady pair's message after the fuzzing")
