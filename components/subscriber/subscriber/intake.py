"""Messages waiting to be scored: taken in arrival order, several at a time, within a bound on memory.

The IPC client hands each message over as it is read from the socket (`put`, never blocking), and the scoring
thread takes whatever has queued since its last batch (`take`, never waiting for more than are there: a batch adds
no delay at a low rate). Past `max_messages` or `max_bytes` waiting, the oldest are dropped and counted: under a
flood the freshest readings describe the present, and the oldest have already waited longest for an answer that
would come late anyway.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes | dict[str, Any]  # a binary message's bytes, or a JSON message as the SDK parsed it
    arrived: float = field(default_factory=time.monotonic, compare=False)  # its latency runs from here

    @property
    def size(self) -> int:
        """What it holds in memory, as far as the bound counts it: a JSON message's size is not known here."""
        return len(self.payload) if isinstance(self.payload, bytes) else 0


class Intake:
    def __init__(self, max_messages: int, max_bytes: int, max_batch: int) -> None:
        if min(max_messages, max_bytes, max_batch) < 1:
            raise ValueError("the intake's bounds must be positive")
        self.max_messages, self.max_bytes, self.max_batch = max_messages, max_bytes, max_batch
        self._waiting: collections.deque[Message] = collections.deque()
        self._bytes = 0
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0  # messages never scored: the oldest, pushed out by newer ones past a bound

    def put(self, message: Message) -> None:
        with self._ready:
            self._waiting.append(message)
            self._bytes += message.size
            while len(self._waiting) > self.max_messages or (self._bytes > self.max_bytes and len(self._waiting) > 1):
                self._bytes -= self._waiting.popleft().size
                self.dropped += 1
            self._ready.notify()

    def take(self, timeout: float | None = None) -> list[Message]:
        """Up to `max_batch` messages, oldest first; [] when none came within `timeout` or the intake is closed."""
        with self._ready:
            if not self._waiting and not self._closed:
                self._ready.wait(timeout)
            batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            self._bytes -= sum(message.size for message in batch)
            return batch

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._waiting)
