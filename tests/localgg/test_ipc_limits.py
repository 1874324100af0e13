"""What a client of the IPC socket can cost the core (localgg.server.Limits). The socket is open to every user of the
machine, as the nucleus's is (it authenticates by SVCUID after CONNECT), so silence, a flood before CONNECT, too many
connections and a subscriber that stops reading are each bounded; the real SDK client beside them keeps being
served. Limits are scaled down here so the tests are quick; the defaults are the same code."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import zlib
from collections.abc import Iterator

import pytest
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

from localgg.eventstream import Header, Message, encode
from localgg.server import Limits
from tests.localgg.harness import CoreThread, pubsub
from tests.localgg.test_fuzz import connect_frame
from tests.support.eventually import eventually


@pytest.fixture
def gg() -> Iterator[CoreThread]:
    core = CoreThread()
    core.component("Steady", configuration={"accessControl": pubsub("*")})
    yield core
    core.close()


def limit(gg: CoreThread, **values: float) -> None:
    """New connections get these limits (the server hands its current ones to each connection it accepts)."""
    gg.core.server.limits = Limits(**values)  # type: ignore[arg-type]


def open_socket(gg: CoreThread) -> socket.socket:
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(gg.core.socket))
    return raw


def closed_by_server(raw: socket.socket, within: float = 10.0) -> bool:
    raw.settimeout(within)
    try:
        while data := raw.recv(65536):
            del data
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def live(gg: CoreThread) -> int:
    return gg.call(_count(gg))


async def _count(gg: CoreThread) -> int:
    return len(gg.core.server.connections.live)


def still_served(gg: CoreThread) -> None:
    """The real SDK client publishes and receives its own message."""
    client = gg.client("Steady")
    received: list[bytes] = []
    client.subscribe_to_topic(topic="check", on_stream_event=lambda e: received.append(bytes(e.binary_message.message)))
    client.publish_to_topic(topic="check", publish_message=PublishMessage(binary_message=BinaryMessage(message=b"ok")))
    assert eventually(lambda: received == [b"ok"])


def test_a_connection_that_never_authenticates_is_closed_at_the_deadline(gg: CoreThread) -> None:
    limit(gg, connect_deadline=0.5)
    idle = [open_socket(gg) for _ in range(20)]
    assert all(closed_by_server(raw) for raw in idle)
    assert eventually(lambda: live(gg) == 0)
    for raw in idle:
        raw.close()
    still_served(gg)


def test_a_flood_before_connect_is_cut_off(gg: CoreThread) -> None:
    """A well-formed start of a 1 MB frame, which the server would otherwise wait to complete, before any CONNECT."""
    limit(gg, unauthenticated_bytes=4096)
    raw = open_socket(gg)
    prelude = struct.pack(">II", 1 << 20, 0)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        raw.sendall(prelude + struct.pack(">I", zlib.crc32(prelude)) + b"\0" * 8192)
    assert closed_by_server(raw, within=5)
    raw.close()
    still_served(gg)


def test_connections_beyond_the_cap_are_refused_and_the_others_kept(gg: CoreThread) -> None:
    """Five authenticated connections fill a cap of five: a sixth is turned away, the five stay."""
    limit(gg, connections=5)
    token = gg.component("Many", configuration={"accessControl": pubsub("*")})
    kept = [open_socket(gg) for _ in range(5)]
    for raw in kept:
        raw.sendall(connect_frame(token))
        raw.settimeout(10)
        assert raw.recv(65536)  # CONNECT_ACK
    assert eventually(lambda: live(gg) == 5)
    extra = open_socket(gg)
    assert closed_by_server(extra)
    assert live(gg) == 5
    for raw in [*kept, extra]:
        raw.close()
    assert eventually(lambda: live(gg) == 0)
    still_served(gg)


def test_sockets_held_open_without_a_token_cannot_keep_a_component_out(gg: CoreThread) -> None:
    """The attack: another user of the machine opens connections and never sends CONNECT, as many as the cap. Those
    waiting for their CONNECT have a cap of their own, and a new connection closes the oldest of them: the real SDK
    client still connects and is served, and the idle ones never hold more than their cap."""
    limit(gg, connections=8, unauthenticated=4)
    idle = [open_socket(gg) for _ in range(20)]
    assert eventually(lambda: live(gg) <= 4)
    still_served(gg)
    assert sum(closed_by_server(raw, within=0.2) for raw in idle) >= 16
    for raw in idle:
        raw.close()


def test_a_subscriber_that_stops_reading_is_dropped_as_a_slow_consumer(
    gg: CoreThread, caplog: pytest.LogCaptureFixture
) -> None:
    """Its events pile up in the core only up to the cap; then it is dropped with a log line, and the publisher
    and another subscriber go on."""
    caplog.set_level(logging.WARNING, logger="localgg.server")
    limit(gg, unsent_bytes=1 << 20)
    token = gg.component("Stalled", configuration={"accessControl": pubsub("*")})
    stalled = open_socket(gg)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    subscribe = encode(
        Message(
            [
                Header.int32(":message-type", 0),
                Header.int32(":message-flags", 0),
                Header.int32(":stream-id", 1),
                Header.string("operation", "aws.greengrass#SubscribeToTopic"),
            ],
            json.dumps({"topic": "firehose"}).encode(),
        )
    )
    stalled.sendall(connect_frame(token) + subscribe)
    publisher = gg.client("Steady")
    eventually(lambda: gg.core.services.pubsub.matching("firehose"), what="the stalled reader's subscription")
    payload = PublishMessage(binary_message=BinaryMessage(message=b"x" * 65536))
    for _ in range(64):  # 4 MB to a reader that reads nothing
        publisher.publish_to_topic(topic="firehose", publish_message=payload)
    assert eventually(lambda: live(gg) == 1)  # only the publisher is left
    assert "(Stalled) dropped as a slow consumer" in caplog.text
    stalled.close()
    still_served(gg)
