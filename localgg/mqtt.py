"""PublishToIoTCore and SubscribeToIoTCore through a real MQTT broker standing in for AWS IoT Core.

paho-mqtt runs its network loop on its own thread; deliveries are handed to the core's event loop, so a
subscriber sees messages in the order the broker sent them and never before its subscribe response.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

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
    ) -> None:
        """`credentials`: the username and password the broker knows this client by (None: anonymous)."""
        self.loop = loop
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if credentials is not None:
            self._client.username_pw_set(*credentials)
        self._client.on_message = self._on_message
        self._connected = threading.Event()
        self._refused = ""  # the broker's last reason for refusing the connection
        self._client.on_connect = self._on_connect
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

    def publish(self, topic: str, qos: int, payload: bytes, retain: bool) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BridgeError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")

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
        self._client.loop_stop()
        self._client.disconnect()
