"""The nucleus's MQTT spooler in localgg: the spool's rules (mqttclient.spool.Spool, MqttClient.publish in the
nucleus's source; the developer guide's `mqtt.spooler` settings), then the core's connection to IoT Core cut and
restored under a component publishing through PublishToIoTCore with the unmodified SDK."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from awsiot.greengrasscoreipc.model import ServiceError
from paho.mqtt.enums import CallbackAPIVersion

from localcloud import broker
from localcloud.net import free_port
from localgg.mqtt import MqttBridge
from localgg.spool import Spool, SpoolConfig, SpoolRefused
from tests.localgg.harness import CoreThread
from tests.support.eventually import eventually

POLICY = {
    "aws.greengrass.ipc.mqttproxy": {
        "p:1": {"operations": ["aws.greengrass#PublishToIoTCore"], "resources": ["dt/+/telemetry"]}
    }
}


def test_offline_qos0_is_refused_unless_kept_and_qos1_is_spooled() -> None:
    """MqttClient.publish: offline, QoS 0 is refused with the nucleus's words unless keepQos0WhenOffline."""
    spool = Spool()
    with pytest.raises(SpoolRefused, match="Will not store the publish request with Qos 0 when MqttClient is offline"):
        spool.add("t", b"x", 0, False, online=False)
    spool.add("t", b"x", 1, False, online=False)
    assert len(spool) == 1 and spool.size == 1
    kept = Spool(SpoolConfig(keep_qos0_when_offline=True))
    kept.add("t", b"x", 0, False, online=False)
    assert len(kept) == 1


def test_a_full_spool_drops_qos0_for_room_then_refuses_and_never_drops_qos1() -> None:
    """Spool.queueCapacityCheck: past maxSizeInBytes, QoS 0 messages go first; then the new one is refused."""
    spool = Spool(SpoolConfig(max_bytes=10))
    spool.add("a", b"1234", 0, False, online=True)
    spool.add("b", b"1234", 1, False, online=True)
    spool.add("c", b"1234", 1, False, online=True)  # the QoS 0 one made room
    assert [m.topic for m in iter(spool.take, None)] == ["b", "c"]
    full = Spool(SpoolConfig(max_bytes=10))
    full.add("a", b"123456", 1, False, online=True)
    with pytest.raises(SpoolRefused, match="Message spool is full"):
        full.add("b", b"123456", 1, False, online=True)
    with pytest.raises(SpoolRefused, match="larger than the size of message spool"):
        full.add("c", b"x" * 11, 1, False, online=True)


def test_dropping_the_connection_drops_spooled_qos0_and_a_failed_send_goes_first_again() -> None:
    spool = Spool()
    spool.add("zero", b"0", 0, False, online=True)
    spool.add("one", b"1", 1, False, online=True)
    spool.add("two", b"2", 1, False, online=True)
    spool.went_offline()
    first = spool.take()
    assert first is not None and first.topic == "one"
    spool.failed(first)
    assert [m.topic for m in iter(spool.take, None)] == ["one", "two"]


def test_a_disk_spool_outlives_the_core_and_a_memory_one_does_not(tmp_path: Path) -> None:
    """storageType Disk (the DiskSpooler plugin): what was spooled is there after a restart, in order."""
    disk = Spool(SpoolConfig(disk=tmp_path / "spool"))
    for n in range(3):
        disk.add("t", f"{n}".encode(), 1, False, online=False)
    sent = disk.take()
    assert sent is not None
    disk.sent(sent)
    again = Spool(SpoolConfig(disk=tmp_path / "spool"))
    assert [m.payload for m in iter(again.take, None)] == [b"1", b"2"]
    assert len(Spool()) == 0


class Broker:
    """A mosquitto that can be stopped and started again on the same port: IoT Core unreachable, then back."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process = broker.start(folder, self.port)

    def stop(self) -> None:
        self.process.stop()

    def start(self) -> None:
        self.process = broker.start(self.folder, self.port)


@pytest.fixture
def cut(gg: CoreThread, tmp_path: Path) -> Iterator[tuple[CoreThread, Broker, MqttBridge]]:
    mosquitto = Broker(tmp_path / "mqtt")
    bridge = MqttBridge("127.0.0.1", mosquitto.port, "localgg-spool", gg.loop)
    bridge.connect()
    gg.core.services.iot_core = bridge
    gg.component("Dev", configuration={"accessControl": POLICY})
    yield gg, mosquitto, bridge
    bridge.close()
    mosquitto.stop()


def listen(port: int) -> tuple[mqtt.Client, list[dict[str, Any]]]:
    heard: list[dict[str, Any]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: heard.append(json.loads(message.payload))
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe("dt/#", qos=1)
    assert subscribed.wait(10)
    return client, heard


def test_qos1_published_while_iot_core_is_unreachable_arrives_in_order_once_it_is_back(
    cut: tuple[CoreThread, Broker, MqttBridge],
) -> None:
    """The component's PublishToIoTCore is answered while the broker is down (the message is spooled), QoS 0 is
    refused meanwhile, and once paho has reconnected the spool is sent oldest first: nothing lost."""
    gg, mosquitto, bridge = cut
    dev = gg.client("Dev")
    mosquitto.stop()
    eventually(lambda: not bridge.online, 10, what="the bridge to notice the broker is gone")
    for seq in range(20):
        dev.publish_to_iot_core(topic_name="dt/dev1/telemetry", qos="1", payload=json.dumps({"seq": seq}).encode())
    with pytest.raises(ServiceError) as refused:
        dev.publish_to_iot_core(topic_name="dt/dev1/telemetry", qos="0", payload=b"{}")
    assert "Will not store the publish request with Qos 0 when MqttClient is offline" in str(refused.value.message)
    assert len(bridge.spool) == 20
    mosquitto.start()
    # The listener connects once the broker is back: what the spool sends after that, it hears.
    client, heard = listen(mosquitto.port)
    try:
        eventually(lambda: bridge.online, 30, what="paho to reconnect")
        dev.publish_to_iot_core(topic_name="dt/dev1/telemetry", qos="1", payload=json.dumps({"seq": 20}).encode())
        eventually(lambda: len(heard) >= 21, 30, what="the spooled messages")
        assert [m["seq"] for m in heard] == list(range(21))
        assert len(bridge.spool) == 0
    finally:
        client.loop_stop()
