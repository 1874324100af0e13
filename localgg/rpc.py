"""The server side of event-stream RPC as a plain state machine (no sockets), in the manner of h11.

`receive_data(bytes)` returns events; the methods that answer queue frames that `data_to_send()` hands to
whatever transport sits on top. Rules, from aws-c-event-stream's server and the nucleus:
- nothing but CONNECT before CONNECT_ACK, and only one CONNECT;
- every frame carries INT32 `:message-type`, `:message-flags` and `:stream-id`;
- a new stream's id is the last one plus 1 and its first frame names the `operation`;
- a frame for a closed stream is ignored when it terminates (both sides closed at once), else an error;
- PING is answered with PING_RESPONSE echoing the payload and every header not starting with `:`.
A violation queues PROTOCOL_ERROR and closes the connection: no further input is read.
"""

from __future__ import annotations

import json
import struct
from collections import deque
from dataclasses import dataclass
from enum import Enum, IntEnum
from functools import lru_cache

from localgg.eventstream import Decoder, FramingError, Header, HeaderType, Message, encode_headers, encode_raw

_I32 = struct.Struct(">i")
VERSION = "0.1.0"
JSON = "application/json"


class MessageType(IntEnum):
    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


CONNECTION_ACCEPTED = 0x1
TERMINATE_STREAM = 0x2


class State(Enum):
    AWAITING_CONNECT = "awaiting-connect"
    AWAITING_DECISION = "awaiting-decision"  # CONNECT received, accept() not yet called
    CONNECTED = "connected"
    REJECTED = "rejected"  # CONNECT_ACK without the accepted flag sent; the client closes
    CLOSED = "closed"


# Events ----------------------------------------------------------------------------------------------------
# Slotted and not frozen: one is made per request, and a frozen dataclass's __init__ costs several times more.


@dataclass(slots=True)
class ConnectRequested:
    version: str | None
    auth_token: str | None


@dataclass(slots=True)
class OperationRequested:
    stream_id: int
    operation: str
    payload: bytes
    terminated: bool  # the request itself closed the stream: the nucleus does not execute it


@dataclass(slots=True)
class StreamClosed:
    """The client closed a stream it had open (e.g. `operation.close()` on a subscription)."""

    stream_id: int


@dataclass(slots=True)
class ProtocolViolation:
    reason: str


Event = ConnectRequested | OperationRequested | StreamClosed | ProtocolViolation


@lru_cache(maxsize=1024)
def _fixed_headers(message_type: MessageType, flags: int, content_type: str | None, model_type: str | None) -> bytes:
    headers = [Header.int32(":message-type", message_type), Header.int32(":message-flags", flags)]
    if content_type is not None:
        headers.append(Header.string(":content-type", content_type))
    if model_type is not None:
        headers.append(Header.string("service-model-type", model_type))
    return encode_headers(headers)


_STREAM_ID = encode_headers([Header.int32(":stream-id", 0)])[:-4]


def _frame(
    message_type: MessageType,
    flags: int,
    stream_id: int,
    content_type: str | None = None,
    model_type: str | None = None,
    payload: bytes = b"",
    extra: list[Header] | None = None,
) -> bytes:
    headers = _fixed_headers(message_type, flags, content_type, model_type) + _STREAM_ID + _I32.pack(stream_id)
    if extra:
        headers += encode_headers(extra)
    return encode_raw(headers, payload)


def _auth_token(payload: bytes) -> str | None:
    try:
        body = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    token = body.get("authToken") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


class ServerConnection:
    def __init__(self) -> None:
        self.state = State.AWAITING_CONNECT
        self.open_streams: set[int] = set()
        self.last_stream_id = 0
        self._decoder = Decoder()
        self._pending: deque[Message] = deque()
        self._out: list[bytes] = []

    # Input -------------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Events for the bytes received. After a ConnectRequested the rest waits for `accept()`, which must be
        followed by `receive_data(b"")` to handle what came with the CONNECT."""
        if self.state in (State.CLOSED, State.REJECTED):
            return []
        try:
            self._pending += self._decoder.feed(data)
        except FramingError as exc:
            self._pending.clear()
            return [self._violation(f"malformed frame: {exc}")]
        events: list[Event] = []
        while self._pending and self.state is not State.AWAITING_DECISION:
            event = self._receive(self._pending.popleft())
            if event is not None:
                events.append(event)
            if self.closed:
                self._pending.clear()
                break
        return events

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def _receive(self, message: Message) -> Event | None:
        fields = []
        for name in (":message-type", ":message-flags", ":stream-id"):
            header = message.header(name)
            if header is None or header.type is not HeaderType.INT32:
                return self._violation(f"a message was received with a missing or non-INT32 {name} header")
            fields.append(int(header.value))
        raw_type, flags, stream_id = fields
        try:
            kind = MessageType(raw_type)
        except ValueError:
            return self._violation(f"unknown message type {raw_type}")
        application = kind in (MessageType.APPLICATION_MESSAGE, MessageType.APPLICATION_ERROR)
        if application == (stream_id == 0) or stream_id < 0:
            return self._violation(f"stream id {stream_id} is not valid for message type {kind.name}")
        if self.state is State.AWAITING_CONNECT:
            if kind is not MessageType.CONNECT:
                return self._violation(f"{kind.name} received before CONNECT")
            self.state = State.AWAITING_DECISION
            version = message.header(":version")
            return ConnectRequested(str(version.value) if version is not None else None, _auth_token(message.payload))
        if kind is MessageType.CONNECT:
            return self._violation("a second CONNECT on one connection")
        if kind is MessageType.PING:
            echo = [h for h in message.headers if not h.name.startswith(":")]
            self._out.append(_frame(MessageType.PING_RESPONSE, 0, 0, payload=message.payload, extra=echo))
            return None
        if kind is MessageType.PING_RESPONSE:
            return None
        if not application:
            return self._violation(f"unexpected {kind.name} from a client")
        return self._stream_message(message, flags, stream_id)

    def _stream_message(self, message: Message, flags: int, stream_id: int) -> Event | None:
        terminate = bool(flags & TERMINATE_STREAM)
        if stream_id in self.open_streams:
            if terminate:
                self.open_streams.discard(stream_id)
                return StreamClosed(stream_id)
            return None  # Greengrass has no client-to-server stream events; the nucleus ignores them
        if stream_id <= self.last_stream_id:
            return None if terminate else self._violation(f"message for closed stream {stream_id}")
        if stream_id != self.last_stream_id + 1:
            return self._violation(
                f"stream id {stream_id} was incremented by more than 1 (last was {self.last_stream_id})"
            )
        operation = message.header("operation")
        if operation is None or operation.type is not HeaderType.STRING:
            return self._violation(f"stream {stream_id} was opened without an operation header")
        self.last_stream_id = stream_id
        if not terminate:
            self.open_streams.add(stream_id)
        return OperationRequested(stream_id, str(operation.value), message.payload, terminate)

    def _violation(self, reason: str) -> ProtocolViolation:
        payload = json.dumps({"message": reason}).encode()
        self._out.append(_frame(MessageType.PROTOCOL_ERROR, 0, 0, JSON, payload=payload))
        self.state = State.CLOSED
        self.open_streams.clear()
        return ProtocolViolation(reason)

    # Output ------------------------------------------------------------------------------------------------

    def accept(self, accepted: bool) -> None:
        """Answer the CONNECT. A rejected client sees AccessDeniedError and closes the socket itself."""
        if self.state is not State.AWAITING_DECISION:
            raise RuntimeError(f"accept() in state {self.state}")
        self._out.append(_frame(MessageType.CONNECT_ACK, CONNECTION_ACCEPTED if accepted else 0, 0))
        self.state = State.CONNECTED if accepted else State.REJECTED
        if not accepted:
            self._pending.clear()

    def send(self, stream_id: int, model_type: str, payload: bytes, terminate: bool) -> None:
        """A response or a stream event: `service-model-type` names the shape the client deserializes."""
        if stream_id not in self.open_streams and not terminate:
            return  # the client closed it: whatever we would send is dropped there anyway
        flags = TERMINATE_STREAM if terminate else 0
        self._out.append(_frame(MessageType.APPLICATION_MESSAGE, flags, stream_id, JSON, model_type, payload))
        if terminate:
            self.open_streams.discard(stream_id)

    def send_error(self, stream_id: int, model_type: str | None, payload: bytes, content_type: str = JSON) -> None:
        """An error always ends its stream. `model_type=None` is the nucleus's unmodeled error."""
        self._out.append(
            _frame(MessageType.APPLICATION_ERROR, TERMINATE_STREAM, stream_id, content_type, model_type, payload)
        )
        self.open_streams.discard(stream_id)

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def connection_lost(self) -> set[int]:
        """The transport is gone: the streams that were open, for the services to clean up."""
        streams = set(self.open_streams)
        self.open_streams.clear()
        self.state = State.CLOSED
        return streams
