"""Results published without waiting for each one's answer from the core, at most `max_in_flight` unanswered.

A synchronous publish is a round trip per message; written back to back they share the connection's trips, and the
core answers them in the order they were written (one connection, one stream after another), so the results of
one input topic keep their order. A refusal (the core's error for one publish) is counted and logged, and the
next result is published as if it had not happened.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("subscriber.outbox")

Send = Callable[[str, dict[str, Any]], "concurrent.futures.Future[Any]"]


class Outbox:
    def __init__(self, send: Send, max_in_flight: int = 64) -> None:
        self.send = send
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self.refused = 0  # publishes the core answered with an error

    def publish(self, topic: str, record: dict[str, Any]) -> None:
        """Returns once the publish is written; waits only while `max_in_flight` are unanswered."""
        self._slots.acquire()
        try:
            future = self.send(topic, record)
        except Exception as exc:  # a publish that could not even be written: the connection is going
            self._slots.release()
            self._refused(topic, exc)
            return
        future.add_done_callback(lambda done: self._answered(topic, done))

    def _answered(self, topic: str, done: concurrent.futures.Future[Any]) -> None:
        self._slots.release()
        exc = concurrent.futures.CancelledError() if done.cancelled() else done.exception()
        if exc is not None:
            self._refused(topic, exc)

    def _refused(self, topic: str, exc: BaseException) -> None:
        with self._lock:
            self.refused += 1
        log.error("could not publish to %s: %s: %s", topic, type(exc).__name__, exc)
