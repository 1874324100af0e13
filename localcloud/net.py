"""Loopback ports for the local cloud's servers."""

from __future__ import annotations

import ctypes
import signal
import socket
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h


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


def dies_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGTERM when the process that started it dies, however it dies (kill -9
    included), so a crashed stack leaves no registry or broker behind (Linux's PR_SET_PDEATHSIG). It is tied to the
    starting thread: start the child from the thread that lives as long as the stack, the main one."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
