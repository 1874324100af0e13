"""The thin I/O layer: an asyncio Unix-socket server feeding bytes to `rpc.ServerConnection`.

The socket file is made as the nucleus makes it: a stale file is removed first, and the socket is readable
and writable by everyone (components run as other users, containers as their own uid). Since anyone on the
machine may connect, what an unauthenticated or misbehaving client can cost is bounded (`Limits`): a connection
must authenticate within a deadline and in few bytes, the number of connections is capped, and a client that
stops reading is dropped as a slow consumer once its unsent output passes a cap, so the core's memory stays
bounded and everyone else is still served. Connections that have not authenticated have a smaller cap of their
own, and a new one closes the oldest of them rather than being turned away: whoever holds open sockets without
a token cannot keep a component from connecting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from localgg import rpc
from localgg.ipc import IpcServices

log = logging.getLogger("localgg.server")
REJECT_CLOSE_DELAY = 2.0  # let the client read CONNECT_ACK(rejected) and close first: it then reports AccessDenied


@dataclass(frozen=True)
class Limits:
    connect_deadline: float = 10.0  # seconds from accept to an accepted CONNECT
    unauthenticated_bytes: int = 64 << 10  # a CONNECT is a few hundred bytes
    connections: int = 1024
    unauthenticated: int = 64  # at once; a component's CONNECT follows its connect within milliseconds
    # Per connection: above it the client is a slow consumer and is dropped. Well above the largest frame (a
    # 17 MiB binary message, base64 in JSON, is about 23 MB), so one big message alone never trips it.
    unsent_bytes: int = 64 << 20


def new_token() -> str:
    """A per-component SVCUID: 16 random upper-case letters, as the nucleus makes them."""
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(16))


class Tokens:
    """SVCUID -> component name; a component's token changes every time the core starts."""

    def __init__(self) -> None:
        self._by_token: dict[str, str] = {}
        self._by_component: dict[str, str] = {}

    def issue(self, component: str) -> str:
        if component not in self._by_component:
            token = new_token()
            self._by_component[component] = token
            self._by_token[token] = component
        return self._by_component[component]

    def revoke(self, component: str) -> None:
        token = self._by_component.pop(component, None)
        if token is not None:
            self._by_token.pop(token, None)

    def component(self, token: str | None) -> str | None:
        return self._by_token.get(token) if token else None


class Connections:
    """The live connections and the output they have waiting.

    Output queued while a connection's input is handled (responses, and the events a publish fans out) leaves
    when that input is done, in one write per connection, the answered client first: under load one syscall
    carries many frames, and no loop iteration is spent in between. Output queued anywhere else (IoT Core
    messages, configuration events) leaves on the next loop iteration. Order per connection is kept: everything
    goes through its one queue."""

    def __init__(self) -> None:
        self.live: set[IpcConnection] = set()
        self.unauthenticated: dict[IpcConnection, None] = {}  # oldest first
        self._waiting: dict[IpcConnection, None] = {}  # insertion-ordered set
        self._handling = False
        self._scheduled = False

    def output_waiting(self, connection: IpcConnection) -> None:
        self._waiting[connection] = None
        if not self._handling and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    @contextmanager
    def handling(self, connection: IpcConnection) -> Iterator[None]:
        self._handling = True
        try:
            yield
        finally:
            self._handling = False
            connection.flush()
            self.flush()

    def flush(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, {}
        for connection in waiting:
            connection.flush()


class IpcConnection(asyncio.Protocol):
    def __init__(self, services: IpcServices, tokens: Tokens, connections: Connections, limits: Limits) -> None:
        self.services = services
        self.tokens = tokens
        self.connections = connections
        self.limits = limits
        self.rpc = rpc.ServerConnection()
        self.component = "?"
        self.authenticated = False
        self.received = 0
        self.transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio subclasses
        waiting = self.connections.unauthenticated
        if len(waiting) >= self.limits.unauthenticated or len(self.connections.live) >= self.limits.connections:
            if not waiting:
                log.warning("IPC connection refused: %d connections already open", len(self.connections.live))
                self.transport.abort()
                return
            oldest = next(iter(waiting))
            log.warning("IPC connection closed: %d connections wait for their CONNECT; the oldest goes", len(waiting))
            oldest.close_unauthenticated()
        self.connections.live.add(self)
        waiting[self] = None
        self._deadline = asyncio.get_running_loop().call_later(self.limits.connect_deadline, self._too_slow_to_connect)

    def close_unauthenticated(self) -> None:
        """Out of the counts at once (its transport reports the loss later); it never had a stream."""
        self.connections.unauthenticated.pop(self, None)
        self.connections.live.discard(self)
        if self._deadline is not None:
            self._deadline.cancel()
        if self.transport is not None:
            self.transport.abort()

    def _too_slow_to_connect(self) -> None:
        if not self.authenticated and self.transport is not None:
            log.warning("IPC connection closed: no accepted CONNECT within %.0fs", self.limits.connect_deadline)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if not self.authenticated:
            self.received += len(data)
            if self.received > self.limits.unauthenticated_bytes:
                log.warning("IPC connection closed: %d bytes before an accepted CONNECT", self.received)
                if self.transport is not None:
                    self.transport.abort()
                return
        with self.connections.handling(self):
            for event in self.rpc.receive_data(data):
                self._handle(event)
        if self.rpc.closed and self.transport is not None:
            self.transport.close()

    def _handle(self, event: rpc.Event) -> None:
        if isinstance(event, rpc.OperationRequested):
            if not event.terminated:  # a request that closes its own stream is not run, as in the nucleus
                self.services.call(self, event.stream_id, event.operation, event.payload)
        elif isinstance(event, rpc.StreamClosed):
            self.services.stream_closed(self, event.stream_id)
        elif isinstance(event, rpc.ConnectRequested):
            self._connect(event)
        elif isinstance(event, rpc.ProtocolViolation):
            log.warning("%s: protocol error: %s", self.component, event.reason)

    def _connect(self, event: rpc.ConnectRequested) -> None:
        component = self.tokens.component(event.auth_token)
        accepted = event.version == rpc.VERSION and component is not None
        self.rpc.accept(accepted)
        if accepted:
            self.authenticated = True
            self.connections.unauthenticated.pop(self, None)
            self.component = component or "?"
            log.info("connection authenticated as %s", self.component)
            for pending in self.rpc.receive_data(b""):  # frames that arrived with the CONNECT
                self._handle(pending)
        else:
            log.warning("CONNECT rejected: Unrecognized client connecting to GGC over IPC")
            loop = asyncio.get_running_loop()
            loop.call_later(REJECT_CLOSE_DELAY, lambda: self.transport.close() if self.transport else None)

    def flush(self) -> None:
        data = self.rpc.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            if self.transport.get_write_buffer_size() > self.limits.unsent_bytes:
                log.warning(
                    "(%s) dropped as a slow consumer: more than %d bytes it has not read",
                    self.component,
                    self.limits.unsent_bytes,
                )
                self.transport.abort()

    # Peer: what the services use to answer and to deliver events.

    def send(self, stream_id: int, model_type: str, payload: bytes, terminate: bool) -> None:
        self.rpc.send(stream_id, model_type, payload, terminate)
        self.connections.output_waiting(self)

    def send_error(self, stream_id: int, model_type: str | None, payload: bytes, content_type: str) -> None:
        self.rpc.send_error(stream_id, model_type, payload, content_type)
        self.connections.output_waiting(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self.connections.unauthenticated.pop(self, None)
        if self not in self.connections.live:
            return  # refused at the door or closed unauthenticated: nothing of it was ever set up
        self.connections.live.discard(self)
        streams = self.rpc.connection_lost()
        if streams:
            log.info("(%s) disconnected; dropping %d streams", self.component, len(streams))
        self.services.peer_closed(self, streams)


class IpcServer:
    """The listening socket and its live connections; closing it disconnects every client, as a core stop does."""

    def __init__(self, path: Path, services: IpcServices, tokens: Tokens, limits: Limits = Limits()) -> None:
        self.path = path
        self.services = services
        self.tokens = tokens
        self.limits = limits
        self.connections = Connections()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a socket left by a crash makes clients fail with "connection refused"
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: IpcConnection(self.services, self.tokens, self.connections, self.limits), str(self.path)
        )
        os.chmod(self.path, 0o666)
        log.info("IPC server listening on %s", self.path)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections.live):
            if connection.transport is not None:
                connection.transport.close()
        self.path.unlink(missing_ok=True)
