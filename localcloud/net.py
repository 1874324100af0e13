"""Loopback ports for the local cloud's servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_until_listening(port: int, timeout: float, alive: Callable[[], bool]) -> bool:
    """True once something accepts on the port; False on timeout or when `alive()` says the server died."""
    deadline = time.monotonic() + timeout
    while not answers(port):
        if time.monotonic() > deadline or not alive():
            return False
        time.sleep(0.05)
    return True
