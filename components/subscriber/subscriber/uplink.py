"""Telemetry windows handed to the Greengrass core for AWS IoT Core, every `seconds` or once `messages` were counted.

The core's own MQTT path carries them (PublishToIoTCore, QoS 1): while IoT Core is unreachable the nucleus's
spooler holds them (in memory by default, on disk with the aws.greengrass.DiskSpooler plugin), as it does every
component's messages, so the component keeps no spool of its own. A window the core refuses outright (its spool
full, say) is lost and counted in the next window's `unsent`. The last window is cut when the component stops.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from subscriber.intake import Message
from subscriber.processing import Outcome
from subscriber.telemetry import Recorder, ShadowCounts, encode

log = logging.getLogger("subscriber.telemetry")
Send = Callable[[bytes], "concurrent.futures.Future[Any]"]
Totals = Callable[[], tuple[int, ShadowCounts | None]]


class Uplink:
    def __init__(self, recorder: Recorder, send: Send, totals: Totals, seconds: float, messages: int = 0) -> None:
        """`totals`: the running counts a window takes the increase of (messages dropped, the challenger's)."""
        self.recorder, self.send, self.totals = recorder, send, totals
        self.seconds, self.messages = seconds, messages
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._last: concurrent.futures.Future[Any] | None = None

    def start(self) -> None:
        self._thread.start()

    def scored(self, messages: list[Message], outcomes: list[Outcome], done: float) -> None:
        """On the scoring thread, after each batch."""
        counted = self.recorder.scored(messages, outcomes, done)
        if self.messages and counted >= self.messages:
            self._due.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._due.wait(self.seconds)
            self._due.clear()
            if not self._stopping.is_set():
                self.flush()

    def flush(self) -> None:
        document = self.recorder.cut(*self.totals())
        try:
            sent = self.send(encode(document))
        except Exception as exc:  # the IPC connection is gone: the process is on its way out
            log.warning("telemetry window %d not sent: %s", document["seq"], exc)
            self.recorder.unsent()
            return
        sent.add_done_callback(lambda future: self._answered(document["seq"], future))
        self._last = sent
        # One line a window (every telemetryWindowSeconds): what left, to be found in the account.
        log.info(
            "telemetry: window %d sent, %d messages, %d records, %d dropped",
            document["seq"],
            document["messages"],
            document["records"],
            document["dropped"],
        )

    def _answered(self, seq: int, future: concurrent.futures.Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            log.warning("telemetry window %d refused by the core: %s: %s", seq, type(error).__name__, error)
            self.recorder.unsent()

    def stop(self, timeout: float = 5.0) -> None:
        """The last window cut and sent; waits up to `timeout` for the core to take it."""
        self._stopping.set()
        self._due.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        if self._last is not None:
            concurrent.futures.wait([self._last], timeout)
