"""The nucleus's MQTT spooler: what a core holds for AWS IoT Core while it cannot send (sans-IO, no sockets).

From the nucleus's source (mqttclient.spool.Spool, mqttclient.MqttClient.publish) and the developer guide (Greengrass
nucleus configuration, `mqtt.spooler`):
- every publish goes through the spool, oldest first; a component's PublishToIoTCore is answered once its message is
  in the spool, not once IoT Core has it;
- offline, a QoS 0 publish is refused ("Will not store the publish request with Qos 0 when MqttClient is offline")
  unless `keepQos0WhenOffline`; when the connection drops, the QoS 0 messages already spooled are dropped likewise;
- the spool holds at most `maxSizeInBytes` of payload (2.5 MB by default); a message larger than that is refused,
  and when a new one does not fit, QoS 0 messages are dropped to make room and, if that is not enough, the new one is
  refused ("Message spool is full"); QoS 1 messages are never dropped for room;
- a message that fails to send goes back to the front of the queue;
- `storageType: Disk` (with the aws.greengrass.DiskSpooler plugin) keeps the spool in files, so what the core held
  survives a restart; the default, `Memory`, loses it.
"""

from __future__ import annotations

import base64
import collections
import json
import threading
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BYTES = 2_621_440


class SpoolRefused(Exception):
    """The message was not spooled; the message is the nucleus's."""


@dataclass(frozen=True)
class SpoolConfig:
    max_bytes: int = DEFAULT_MAX_BYTES
    keep_qos0_when_offline: bool = False
    disk: Path | None = None  # storageType Disk: the folder its messages are kept in


@dataclass(frozen=True)
class Spooled:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Spool:
    def __init__(self, config: SpoolConfig = SpoolConfig()) -> None:
        self.config = config
        self._queue: collections.deque[int] = collections.deque()
        self._messages: dict[int, Spooled] = {}
        self._bytes = 0
        self._next = 0
        self._lock = threading.Lock()
        if config.disk is not None:
            self._load(config.disk)

    def _load(self, folder: Path) -> None:
        """What an earlier run left on disk, in its order (the nucleus's persistentQueueSync)."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.json"), key=lambda p: int(p.stem)):
            saved = json.loads(path.read_text())
            message = Spooled(
                int(path.stem), saved["topic"], base64.b64decode(saved["payload"]), saved["qos"], saved["retain"]
            )
            self._messages[message.id] = message
            self._queue.append(message.id)
            self._bytes += len(message.payload)
            self._next = max(self._next, message.id + 1)

    @property
    def size(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, topic: str, payload: bytes, qos: int, retain: bool, online: bool) -> Spooled:
        with self._lock:
            if not online and qos == 0 and not self.config.keep_qos0_when_offline:
                raise SpoolRefused("Will not store the publish request with Qos 0 when MqttClient is offline")
            if len(payload) > self.config.max_bytes:
                raise SpoolRefused("Message is larger than the size of message spool.")
            if self._bytes + len(payload) > self.config.max_bytes:
                self._drop_qos0(until_fits=len(payload))
            if self._bytes + len(payload) > self.config.max_bytes:
                raise SpoolRefused("Message spool is full. Message could not be added.")
            message = Spooled(self._next, topic, payload, qos, retain)
            self._next += 1
            self._store(message)
            self._queue.append(message.id)
            return message

    def _store(self, message: Spooled) -> None:
        self._messages[message.id] = message
        self._bytes += len(message.payload)
        if self.config.disk is not None:
            record = {
                "topic": message.topic,
                "payload": base64.b64encode(message.payload).decode(),
                "qos": message.qos,
                "retain": message.retain,
            }
            partial = self.config.disk / f"{message.id}.partial"
            partial.write_text(json.dumps(record))
            partial.replace(self.config.disk / f"{message.id}.json")

    def _drop_qos0(self, until_fits: int | None = None) -> None:
        for id_ in list(self._queue):
            if until_fits is not None and self._bytes + until_fits <= self.config.max_bytes:
                return
            if self._messages[id_].qos == 0:
                self._queue.remove(id_)
                self._forget(id_)

    def went_offline(self) -> None:
        """The connection dropped: spooled QoS 0 messages go, unless they are to be kept."""
        if not self.config.keep_qos0_when_offline:
            with self._lock:
                self._drop_qos0()

    def take(self) -> Spooled | None:
        """The oldest message, out of the queue until `sent` or `failed` says what became of it."""
        with self._lock:
            return self._messages[self._queue.popleft()] if self._queue else None

    def sent(self, message: Spooled) -> None:
        with self._lock:
            self._forget(message.id)

    def failed(self, message: Spooled) -> None:
        """Back to the front: it goes first when the connection is back."""
        with self._lock:
            self._queue.appendleft(message.id)

    def _forget(self, id_: int) -> None:
        message = self._messages.pop(id_, None)
        if message is None:
            return
        self._bytes -= len(message.payload)
        if self.config.disk is not None:
            (self.config.disk / f"{id_}.json").unlink(missing_ok=True)
