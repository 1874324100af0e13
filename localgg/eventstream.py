"""The `application/vnd.amazon.eventstream` frame codec. No I/O: bytes in, messages out, and back.

Frame: total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32, all
big-endian; both CRCs are plain CRC-32 (zlib), the message CRC covering everything before it, prelude CRC
included. Limits are those of aws-c-event-stream, which both the SDK and the nucleus are built on.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

MAX_MESSAGE_SIZE = 24 * 1024 * 1024
MAX_HEADER_NAME = 255
MAX_HEADER_VALUE = 32_767
MAX_HEADERS = 1024
PRELUDE = 12
OVERHEAD = 16  # prelude plus the trailing message CRC

_U32x3 = struct.Struct(">III")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
STREAM_ID = ":stream-id"


class HeaderType(IntEnum):
    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


HeaderValue = bool | int | bytes | str | uuid.UUID
_FIXED = {
    HeaderType.BYTE: struct.Struct(">b"),
    HeaderType.INT16: struct.Struct(">h"),
    HeaderType.INT32: struct.Struct(">i"),
    HeaderType.INT64: struct.Struct(">q"),
    HeaderType.TIMESTAMP: struct.Struct(">q"),
}
_LEN16 = struct.Struct(">H")


class FramingError(ValueError):
    """The byte stream is not a valid event stream; the connection cannot continue."""


class Header(NamedTuple):
    # A tuple rather than a dataclass: the server builds a handful per message, and tuples are cheap.
    name: str
    type: HeaderType
    value: HeaderValue

    @classmethod
    def int32(cls, name: str, value: int) -> Header:
        return cls(name, HeaderType.INT32, value)

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        return cls(name, HeaderType.STRING, value)


@dataclass(slots=True)
class Message:
    headers: list[Header] = field(default_factory=list)
    payload: bytes = b""
    _index: dict[str, Header] | None = field(default=None, compare=False, repr=False)

    def header(self, name: str) -> Header | None:
        """Header names are matched case-insensitively, as aws-c-event-stream and the Python SDK do."""
        if self._index is None:
            self._index = {}
            for header in self.headers:
                self._index.setdefault(header.name.lower(), header)
        return self._index.get(name.lower())


def _encode_header(header: Header) -> bytes:
    name = header.name.encode()
    if not 0 < len(name) <= MAX_HEADER_NAME:
        raise ValueError(f"header name {header.name!r} must be 1-{MAX_HEADER_NAME} bytes")
    head = bytes((len(name),)) + name + bytes((header.type,))
    kind, value = header.type, header.value
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return head
    if kind in _FIXED:
        return head + _FIXED[kind].pack(value)
    if kind == HeaderType.UUID:
        raw = value.bytes if isinstance(value, uuid.UUID) else bytes(value)  # type: ignore[arg-type]
        if len(raw) != 16:
            raise ValueError("a UUID header value is 16 bytes")
        return head + raw
    raw = value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
    if len(raw) > MAX_HEADER_VALUE:
        raise ValueError(f"header {header.name!r} value is {len(raw)} bytes, over {MAX_HEADER_VALUE}")
    return head + _LEN16.pack(len(raw)) + raw


def encode_headers(headers: list[Header]) -> bytes:
    return b"".join(_encode_header(h) for h in headers)


def encode(message: Message) -> bytes:
    return encode_raw(encode_headers(message.headers), message.payload)


def encode_raw(headers: bytes, payload: bytes) -> bytes:
    """A frame from an already encoded header block (the server caches the blocks it sends again and again)."""
    total = OVERHEAD + len(headers) + len(payload)
    if total > MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {total} bytes exceeds the {MAX_MESSAGE_SIZE}-byte event-stream limit")
    prelude = struct.pack(">II", total, len(headers))
    prelude_crc = zlib.crc32(prelude)
    body = prelude + _U32.pack(prelude_crc) + headers + payload
    return body + _U32.pack(zlib.crc32(body[8:], prelude_crc))


_TYPES = tuple(HeaderType)


def decode_headers(block: bytes) -> list[Header]:
    # The hot path of every request: plain bytes, local names, no enum calls.
    headers: list[Header] = []
    at, end = 0, len(block)
    while at < end:
        if len(headers) >= MAX_HEADERS:
            raise FramingError(f"more than {MAX_HEADERS} headers")
        name_len = block[at]
        if name_len == 0 or at + 2 + name_len > end:
            raise FramingError("truncated or empty header name")
        try:
            name = block[at + 1 : at + 1 + name_len].decode()
        except UnicodeDecodeError:
            raise FramingError("header name is not UTF-8") from None
        at += 1 + name_len
        code = block[at]
        at += 1
        if code > 9:
            raise FramingError(f"header {name!r} has unknown type {code}")
        kind = _TYPES[code]
        value: HeaderValue
        if code <= 1:
            value = code == 0
        elif code == 6 or code == 7:
            if at + 2 > end:
                raise FramingError(f"header {name!r} length is truncated")
            length = (block[at] << 8) | block[at + 1]
            at += 2
            if length > MAX_HEADER_VALUE or at + length > end:
                raise FramingError(f"header {name!r} value length {length} is invalid")
            raw = block[at : at + length]
            at += length
            if code == 7:
                try:
                    value = raw.decode()
                except UnicodeDecodeError:
                    raise FramingError(f"header {name!r} string is not UTF-8") from None
            else:
                value = raw
        elif code == 9:
            if at + 16 > end:
                raise FramingError(f"header {name!r} value is truncated")
            value = uuid.UUID(bytes=block[at : at + 16])
            at += 16
        else:
            codec = _FIXED[kind]
            if at + codec.size > end:
                raise FramingError(f"header {name!r} value is truncated")
            (value,) = codec.unpack_from(block, at)
            at += codec.size
        headers.append(Header(name, kind, value))
    return headers


def _encoded_size(header: Header) -> int:
    size = 2 + len(header.name.encode())
    kind, value = header.type, header.value
    if kind in _FIXED:
        return size + _FIXED[kind].size
    if kind == HeaderType.UUID:
        return size + 16
    if kind in (HeaderType.STRING, HeaderType.BYTE_BUF):
        return size + 2 + len(value.encode() if isinstance(value, str) else value)  # type: ignore[arg-type]
    return size


class _Template(NamedTuple):
    """A decoded header block whose one varying part is the INT32 `:stream-id` value at `offset`."""

    block: bytes
    headers: list[Header]
    by_name: dict[str, Header]
    position: int
    offset: int

    @classmethod
    def of(cls, block: bytes, message: Message) -> _Template | None:
        offset = 0
        for position, header in enumerate(message.headers):
            if header.name == STREAM_ID and header.type == HeaderType.INT32:
                if message.header(STREAM_ID) is not header:  # another spelling of it came first
                    return None
                return cls(block, message.headers, message._index or {}, position, offset + 2 + len(STREAM_ID))
            offset += _encoded_size(header)
        return None

    def reuse(self, block: bytes) -> Message | None:
        """The message for `block` if it equals this one but for the stream id, else None."""
        at, previous = self.offset, self.block
        if len(block) != len(previous) or block[:at] != previous[:at] or block[at + 4 :] != previous[at + 4 :]:
            return None
        stream_id = Header(STREAM_ID, HeaderType.INT32, _I32.unpack_from(block, at)[0])
        headers = self.headers.copy()
        headers[self.position] = stream_id
        by_name = self.by_name.copy()
        by_name[STREAM_ID] = stream_id
        return Message(headers, b"", by_name)


class Decoder:
    """Feed bytes as they come; take whole messages out. Any corruption raises FramingError, for good.

    Consecutive frames from one client mostly share their header block but for the stream id (every publish
    of a loop): such a block is not decoded again, the previous decoding is reused with the new stream id."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._failed: FramingError | None = None
        self._template: _Template | None = None

    def feed(self, data: bytes) -> list[Message]:
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        messages = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except FramingError as exc:
            self._failed = exc
            raise
        return messages

    def _next(self) -> Message | None:
        buffer = self._buffer
        if len(buffer) < PRELUDE:
            return None
        total, headers_len, prelude_crc = _U32x3.unpack_from(buffer)
        if zlib.crc32(memoryview(buffer)[:8]) != prelude_crc:
            raise FramingError("prelude CRC mismatch")
        if total < OVERHEAD or total > MAX_MESSAGE_SIZE:
            raise FramingError(f"message length {total} is outside {OVERHEAD}..{MAX_MESSAGE_SIZE}")
        if headers_len > total - OVERHEAD:
            raise FramingError(f"headers length {headers_len} does not fit a {total}-byte message")
        if len(buffer) < total:
            return None
        view = memoryview(buffer)
        (message_crc,) = _U32.unpack_from(view, total - 4)
        if zlib.crc32(view[8 : total - 4], prelude_crc) != message_crc:
            view.release()
            raise FramingError("message CRC mismatch")
        block = bytes(view[PRELUDE : PRELUDE + headers_len])
        payload = bytes(view[PRELUDE + headers_len : total - 4])
        view.release()
        del buffer[:total]
        message = self._template.reuse(block) if self._template is not None else None
        if message is None:
            message = Message(decode_headers(block))
            self._template = _Template.of(block, message)
        message.payload = payload
        return message
