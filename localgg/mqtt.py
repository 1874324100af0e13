"""PublishToIoTCore and SubscribeToIoTCore through a real MQTT broker standing in for AWS IoT Core.

paho-mqtt runs its network loop on its own thread; deliveries are handed to the core's event loop, so a
subscriber sees messages in the order the broker sent them and never before its subscribe response. Publishes go
through the nucleus's spooler (localgg.spool): answered once spooled, sent oldest first by a thread of their own
whenever the broker is reachable, held while it is not; paho reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from localgg.spool import Spool, Spooled, SpoolRefused

log = logging.getLogger("localgg.mqtt")
Deliver = Callable[[str, bytes, bool], None]


class BridgeError(OSError):
    pass


class MqttBridge:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        loop: asyncio.AbstractEventLoop,
        credentials: tuple[str, str] | None = None,
        spool: Spool | None = None,
    ) -> None:
        """`credentials`: the username and password the broker knows this client by (None: anonymous); `spool`:
        the core's spooler (None: in memory, the nucleus's defaults)."""
        self.loop = loop
        self.spool = spool or Spool()
        self._online = threading.Event()
        self._spooled = threading.Event()
        self._closing = threading.Event()
        self._sender = threading.Thread(target=self._send_spooled, name=f"mqtt-spool-{client_id}", daemon=True)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if credentials is not None:
            self._client.username_pw_set(*credentials)
        self._client.on_message = self._on_message
        self._connected = threading.Event()
        self._refused = ""  # the broker's last reason for refusing the connection
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._acknowledged: dict[int, threading.Event] = {}
        self._subscribers: dict[str, list[Deliver]] = {}
        self._lock = threading.Lock()
        self.host, self.port = host, port

    def connect(self, timeout: float = 10.0) -> None:
        try:
            self._client.connect(self.host, self.port)
        except OSError as exc:
            raise BridgeError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from None
        self._client.loop_start()
        self._sender.start()
        if not self._connected.wait(timeout):
            self.close()
            why = f": {self._refused}" if self._refused else ""
            raise BridgeError(f"the MQTT broker at {self.host}:{self.port} did not accept the connection{why}")
        log.info("connected to the MQTT broker at %s:%d", self.host, self.port)

    def _on_connect(self, client: object, userdata: object, flags: object, reason: Any, properties: object) -> None:
        # A refusal (not authorized, say) is retried by paho's loop: the broker may learn of this client meanwhile.
        if reason.is_failure:
            self._refused = str(reason)
        else:
            self._connected.set()
            self._online.set()

    def _on_disconnect(self, client: object, userdata: object, flags: object, reason: Any, properties: object) -> None:
        self._online.clear()
        self.spool.went_offline()

    @property
    def online(self) -> bool:
        return self._online.is_set()

    def publish(self, topic: str, qos: int, payload: bytes, retain: bool) -> None:
        """Spooled, then sent by the spooler's thread; BridgeError when the spooler refuses it (the nucleus's
        reason), as PublishToIoTCore's answer would say."""
        try:
            self.spool.add(topic, payload, qos, retain, self.online)
        except SpoolRefused as exc:
            raise BridgeError(f"publish to {topic} failed: {exc}") from None
        self._spooled.set()

    def _send_spooled(self, ack_timeout: float = 10.0) -> None:
        while not self._closing.is_set():
            self._spooled.wait(1.0)
            self._spooled.clear()
            while self._online.is_set() and not self._closing.is_set():
                message = self.spool.take()
                if message is None:
                    break
                if not self._sent(message, ack_timeout):
                    self.spool.failed(message)
                    self._online.wait(1.0)  # the connection is likely gone: paho is reconnecting
                    break
                self.spool.sent(message)

    def _sent(self, message: Spooled, ack_timeout: float) -> bool:
        info = self._client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(ack_timeout)  # QoS 1: until the broker's PUBACK
        except (ValueError, RuntimeError):  # paho: the connection went away meanwhile
            return False
        return info.is_published()

    def subscribe(self, topic_filter: str, qos: int, deliver: Deliver) -> Callable[[], None]:
        with self._lock:
            first = topic_filter not in self._subscribers
            self._subscribers.setdefault(topic_filter, []).append(deliver)
        if first:
            self._subscribe(topic_filter, qos)

        def cancel() -> None:
            with self._lock:
                listeners = self._subscribers.get(topic_filter, [])
                if deliver in listeners:
                    listeners.remove(deliver)
                last = not listeners
                if last:
                    self._subscribers.pop(topic_filter, None)
            if last:
                self._client.unsubscribe(topic_filter)

        return cancel

    def _subscribe(self, topic_filter: str, qos: int, timeout: float = 10.0) -> None:
        """Subscribed once the broker says so, as the nucleus answers SubscribeToIoTCore only when its subscription
        is in place (MqttProxyIPCAgent waits on the subscribe's future): a message sent right after the answer
        reaches the subscriber."""
        with self._lock:
            result, mid = self._client.subscribe(topic_filter, qos=qos)
            if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
                raise BridgeError(mqtt.error_string(result))
            acknowledged = self._acknowledged.setdefault(mid, threading.Event())
        if not acknowledged.wait(timeout):
            raise BridgeError(f"the MQTT broker did not acknowledge the subscription to {topic_filter}")
        with self._lock:
            self._acknowledged.pop(mid, None)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, *rest: object) -> None:
        with self._lock:
            self._acknowledged.setdefault(mid, threading.Event()).set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            targets = [d for f, ds in self._subscribers.items() if mqtt.topic_matches_sub(f, message.topic) for d in ds]
        for deliver in targets:
            self.loop.call_soon_threadsafe(deliver, message.topic, bytes(message.payload), bool(message.retain))

    def close(self) -> None:
        self._closing.set()
        self._spooled.set()
        if self._sender.is_alive():
            self._sender.join(timeout=5)
        self._client.loop_stop()
        self._client.disconnect()
