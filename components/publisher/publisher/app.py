"""The publisher's loop: connect, read configuration, publish every `interval` seconds, survive reconnects.

The SDK never reconnects on its own; a publish that fails because the connection dropped is retried on a new
connection with exponential backoff, and the message is not skipped. SIGTERM ends the loop cleanly (exit 0).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import (
    BinaryMessage,
    InvalidArgumentsError,
    PublishMessage,
    UnauthorizedError,
)

from publisher.messages import SamplesError, Settings, load_records, messages

log = logging.getLogger("publisher")
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
# The operations of a component the nucleus refuses; retrying them on a new connection cannot help.
FATAL_ERRORS = (UnauthorizedError, InvalidArgumentsError)


class Publisher:
    def __init__(self, connect: Callable[[], Any], stop: threading.Event) -> None:
        self.connect = connect
        self.stop = stop
        self.client: Any = None
        self.published = 0

    def _client(self) -> Any:
        delay = BACKOFF_START
        while self.client is None and not self.stop.is_set():
            try:
                self.client = self.connect()
            except Exception as exc:  # the nucleus may be restarting; keep trying until stopped
                log.warning("IPC connect failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        return self.client

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception as exc:
                log.debug("closing a broken connection: %s", exc)
        self.client = None

    def settings(self) -> Settings:
        client = self._client()
        return Settings.from_component(client.get_configuration(key_path=[]).value or {})

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish one message, reconnecting as often as needed; False only when stopped first."""
        delay = BACKOFF_START
        while not self.stop.is_set():
            client = self._client()
            if client is None:
                return False
            try:
                client.publish_to_topic(
                    topic=topic, publish_message=PublishMessage(binary_message=BinaryMessage(message=payload))
                )
                self.published += 1
                return True
            except FATAL_ERRORS:
                raise
            except Exception as exc:
                log.warning("publish failed (%s: %s); reconnecting in %.1fs", type(exc).__name__, exc, delay)
                self._drop()
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        return False

    def run(self) -> None:
        settings = self.settings()
        records = load_records(settings.samples_file)
        log.info(
            "publishing %d records in batches of %d to %s every %ss (limit: %s)",
            len(records),
            settings.batch_size,
            settings.topic,
            settings.interval,
            settings.count_limit or "none",
        )
        for payload in messages(records, settings):
            if not self.publish(settings.topic, payload):
                break
            log.info("published message %d to %s", self.published, settings.topic)
            if self.stop.wait(settings.interval):
                break
        self._drop()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    publisher = Publisher(GreengrassCoreIPCClientV2, stop)
    try:
        publisher.run()
    except (SamplesError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except FATAL_ERRORS as exc:
        log.error("the nucleus refused: %s: %s", type(exc).__name__, exc)
        return 1
    log.info("stopped after %d messages", publisher.published)
    return 0
