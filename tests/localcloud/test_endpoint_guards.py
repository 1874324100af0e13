"""What a local user who is not the stack's owner can cost the Greengrass endpoint (localcloud.server), each as the
attack: a body announced and never sent by a caller with no key, a connection that sends nothing, and connections
held open by the hundred. A loopback port is open to every user of the machine; the endpoint answers the first
before reading any body (the SigV4 Authorization header says who signed before the body arrives), closes the
second after IDLE_TIMEOUT and serves at most MAX_CONNECTIONS at once. The stack's own client is served after each."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from localcloud import server
from localcloud.cloud import Cloud, running

REGION = "eu-west-1"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    monkeypatch.setattr(server, "IDLE_TIMEOUT", 1.0)
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 4)
    with running(REGION, {}) as local:
        yield local


def connected(cloud: Cloud) -> socket.socket:
    address = urlsplit(cloud.greengrass)
    raw = socket.create_connection((address.hostname, address.port), timeout=5)
    return raw


def served(cloud: Cloud) -> None:
    assert cloud.client("greengrassv2").list_core_devices()["coreDevices"] == []


def test_a_caller_without_a_key_is_answered_before_its_body_is_read(cloud: Cloud) -> None:
    raw = connected(cloud)
    raw.sendall(
        b"POST /greengrass/v2/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000000\r\n\r\n"
    )  # and not one byte of the 4 MB
    answer = raw.recv(65536)  # within the socket's 5 s: the old server waited for the body
    assert answer.startswith(b"HTTP/1.0 403") or answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b"MissingAuthenticationTokenException" in answer
    raw.close()
    served(cloud)


def test_a_connection_that_sends_nothing_is_closed(cloud: Cloud) -> None:
    raw = connected(cloud)
    assert raw.recv(1) == b""  # closed by the endpoint after IDLE_TIMEOUT, well before the socket's 5 s
    raw.close()
    served(cloud)


def test_connections_held_open_are_bounded_and_freed(cloud: Cloud) -> None:
    held = [connected(cloud) for _ in range(4)]
    extra = connected(cloud)
    extra.settimeout(0.8)  # under IDLE_TIMEOUT: only the cap can close it this soon
    assert extra.recv(1) == b""
    extra.close()
    for raw in held:
        raw.close()
    served(cloud)
