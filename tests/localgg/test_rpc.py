"""The RPC state machine, rule by rule, without sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localgg import rpc
from localgg.eventstream import Decoder, Header, Message, encode
from localgg.rpc import MessageType, ServerConnection, State


def frame(kind: int, flags: int = 0, stream: int = 0, extra: list[Header] | None = None, payload: bytes = b"") -> bytes:
    headers = [
        Header.int32(":message-type", kind),
        Header.int32(":message-flags", flags),
        Header.int32(":stream-id", stream),
    ]
    return encode(Message(headers + (extra or []), payload))


def connect_frame(token: str = "TOKEN", version: str = "0.1.0") -> bytes:
    return frame(
        MessageType.CONNECT,
        extra=[Header.string(":version", version)],
        payload=json.dumps({"authToken": token}).encode(),
    )


def request(stream: int, operation: str = "aws.greengrass#PublishToTopic", flags: int = 0) -> bytes:
    return frame(MessageType.APPLICATION_MESSAGE, flags, stream, [Header.string("operation", operation)], b"{}")


def sent(conn: ServerConnection) -> list[Message]:
    return Decoder().feed(conn.data_to_send())


def fields(message: Message) -> tuple[int, int, int]:
    return tuple(int(message.header(n).value) for n in (":message-type", ":message-flags", ":stream-id"))  # type: ignore[union-attr,return-value]


@pytest.fixture
def conn() -> ServerConnection:
    connection = ServerConnection()
    assert connection.receive_data(connect_frame()) == [rpc.ConnectRequested("0.1.0", "TOKEN")]
    connection.accept(True)
    assert [fields(m) for m in sent(connection)] == [(MessageType.CONNECT_ACK, rpc.CONNECTION_ACCEPTED, 0)]
    return connection


def test_rejected_connect_acks_without_the_accepted_flag() -> None:
    connection = ServerConnection()
    connection.receive_data(connect_frame())
    connection.accept(False)
    assert [fields(m) for m in sent(connection)] == [(MessageType.CONNECT_ACK, 0, 0)]
    assert connection.state is State.REJECTED
    assert connection.receive_data(request(1)) == []


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"authToken": ""}', b"{}"])
def test_connect_without_a_usable_token_carries_none(payload: bytes) -> None:
    connection = ServerConnection()
    (event,) = connection.receive_data(
        frame(MessageType.CONNECT, extra=[Header.string(":version", "0.1.0")], payload=payload)
    )
    assert event == rpc.ConnectRequested("0.1.0", None)


def violation(connection: ServerConnection, data: bytes) -> str:
    events = connection.receive_data(data)
    assert len(events) == 1 and isinstance(events[0], rpc.ProtocolViolation), events
    (error,) = sent(connection)
    assert fields(error)[0] == MessageType.PROTOCOL_ERROR
    assert connection.closed
    assert connection.receive_data(request(1)) == []  # nothing more is read
    return events[0].reason


def test_anything_before_connect_is_a_protocol_error() -> None:
    assert "before CONNECT" in violation(ServerConnection(), request(1))


def test_a_second_connect_is_a_protocol_error(conn: ServerConnection) -> None:
    assert "second CONNECT" in violation(conn, connect_frame())


@pytest.mark.parametrize("missing", [":message-type", ":message-flags", ":stream-id"])
def test_missing_mandatory_headers_are_a_protocol_error(conn: ServerConnection, missing: str) -> None:
    headers = [Header.int32(n, 0) for n in (":message-type", ":message-flags", ":stream-id") if n != missing]
    assert missing in violation(conn, encode(Message(headers)))


def test_mandatory_headers_must_be_int32(conn: ServerConnection) -> None:
    headers = [Header.string(":message-type", "0"), Header.int32(":message-flags", 0), Header.int32(":stream-id", 1)]
    assert "non-INT32" in violation(conn, encode(Message(headers)))


def test_stream_ids_must_grow_by_one(conn: ServerConnection) -> None:
    assert isinstance(conn.receive_data(request(1))[0], rpc.OperationRequested)
    assert "incremented by more than 1" in violation(conn, request(3))


def test_a_new_stream_must_name_its_operation(conn: ServerConnection) -> None:
    assert "without an operation" in violation(conn, frame(MessageType.APPLICATION_MESSAGE, 0, 1))


def test_application_messages_need_a_stream_and_control_messages_none(conn: ServerConnection) -> None:
    assert "not valid for message type" in violation(conn, frame(MessageType.APPLICATION_MESSAGE, 0, 0))


def test_closed_streams_ignore_terminates_and_refuse_the_rest(conn: ServerConnection) -> None:
    conn.receive_data(request(1))
    conn.send(1, "aws.greengrass#PublishToTopicResponse", b"{}", terminate=True)
    conn.data_to_send()
    assert conn.receive_data(frame(MessageType.APPLICATION_MESSAGE, rpc.TERMINATE_STREAM, 1)) == []
    assert conn.receive_data(frame(MessageType.APPLICATION_MESSAGE, rpc.TERMINATE_STREAM, 1)) == []
    assert "closed stream" in violation(conn, frame(MessageType.APPLICATION_MESSAGE, 0, 1))


def test_client_closing_an_open_stream(conn: ServerConnection) -> None:
    conn.receive_data(request(1, "aws.greengrass#SubscribeToTopic"))
    assert conn.receive_data(frame(MessageType.APPLICATION_MESSAGE, rpc.TERMINATE_STREAM, 1)) == [rpc.StreamClosed(1)]
    conn.send(1, "aws.greengrass#SubscriptionResponseMessage", b"{}", terminate=False)
    assert conn.data_to_send() == b""  # events for a closed stream are not sent


def test_a_request_that_terminates_itself_is_flagged(conn: ServerConnection) -> None:
    (event,) = conn.receive_data(request(1, flags=rpc.TERMINATE_STREAM))
    assert isinstance(event, rpc.OperationRequested) and event.terminated
    assert 1 not in conn.open_streams


def test_ping_is_echoed_with_its_non_colon_headers(conn: ServerConnection) -> None:
    assert conn.receive_data(frame(MessageType.PING, extra=[Header.string("x-a", "1")], payload=b"p")) == []
    (pong,) = sent(conn)
    assert fields(pong) == (MessageType.PING_RESPONSE, 0, 0)
    assert pong.header("x-a") is not None and pong.payload == b"p"
    assert conn.receive_data(frame(MessageType.PING_RESPONSE)) == []


def test_responses_errors_and_events_carry_the_model_type(conn: ServerConnection) -> None:
    conn.receive_data(request(1, "aws.greengrass#SubscribeToTopic"))
    conn.receive_data(request(2))
    conn.send(1, "aws.greengrass#SubscribeToTopicResponse", b"{}", terminate=False)
    conn.send(1, "aws.greengrass#SubscriptionResponseMessage", b'{"x": 1}', terminate=False)
    conn.send_error(2, "aws.greengrass#UnauthorizedError", b'{"message": "no"}')
    out = sent(conn)
    assert [fields(m) for m in out] == [
        (0, 0, 1),
        (0, 0, 1),
        (1, rpc.TERMINATE_STREAM, 2),
    ]
    assert [getattr(m.header("service-model-type"), "value", None) for m in out] == [
        "aws.greengrass#SubscribeToTopicResponse",
        "aws.greengrass#SubscriptionResponseMessage",
        "aws.greengrass#UnauthorizedError",
    ]
    assert conn.open_streams == {1}  # the subscription stays open; the failed request's stream is closed


def test_connection_lost_reports_the_open_streams(conn: ServerConnection) -> None:
    conn.receive_data(request(1, "aws.greengrass#SubscribeToTopic") + request(2, "aws.greengrass#SubscribeToTopic"))
    assert conn.connection_lost() == {1, 2}


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.builds(request, st.integers(1, 6)),
            st.builds(frame, st.sampled_from(list(MessageType)), st.integers(0, 3), st.integers(-1, 6)),
            st.binary(max_size=40),
        ),
        max_size=12,
    )
)
def test_any_sequence_of_frames_leaves_a_consistent_machine(chunks: list[bytes]) -> None:
    conn = ServerConnection()
    conn.receive_data(connect_frame())
    conn.accept(True)
    for chunk in chunks:
        conn.receive_data(chunk)
        Decoder().feed(conn.data_to_send())  # whatever it sends is well-formed
        assert conn.open_streams <= set(range(1, conn.last_stream_id + 1))
    if conn.closed:
        assert conn.receive_data(request(conn.last_stream_id + 1)) == []


def test_frames_that_arrive_with_the_connect_wait_for_the_decision() -> None:
    connection = ServerConnection()
    assert connection.receive_data(connect_frame() + request(1)) == [rpc.ConnectRequested("0.1.0", "TOKEN")]
    connection.accept(True)
    (event,) = connection.receive_data(b"")
    assert isinstance(event, rpc.OperationRequested) and event.stream_id == 1


def test_frames_that_arrive_with_a_rejected_connect_are_dropped() -> None:
    connection = ServerConnection()
    connection.receive_data(connect_frame() + request(1) + connect_frame())
    connection.accept(False)
    assert connection.receive_data(b"") == []
