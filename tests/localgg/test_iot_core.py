"""PublishToIoTCore / SubscribeToIoTCore through a real mosquitto broker standing in for AWS IoT Core."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from awsiot.greengrasscoreipc.model import InvalidArgumentsError, UnauthorizedError
from paho.mqtt.enums import CallbackAPIVersion

from localgg.mqtt import BridgeError, MqttBridge
from tests.localgg.harness import CoreThread
from tests.support.eventually import eventually

POLICY = {
    "aws.greengrass.ipc.mqttproxy": {
        "p:1": {
            "operations": ["aws.greengrass#PublishToIoTCore", "aws.greengrass#SubscribeToIoTCore"],
            "resources": ["dt/+/telemetry", "cmd/#"],
        }
    }
}


@pytest.fixture
def bridged(gg: CoreThread, mosquitto: tuple[str, int]) -> Iterator[CoreThread]:
    bridge = MqttBridge(*mosquitto, "localgg-test", gg.loop)
    bridge.connect()
    gg.core.services.iot_core = bridge
    gg.component("Dev", configuration={"accessControl": POLICY})
    yield gg
    bridge.close()


def outside_client(mosquitto: tuple[str, int]) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(*mosquitto)
    client.loop_start()
    return client


def wait(items: list[Any], count: int, timeout: float = 10) -> list[Any]:
    eventually(lambda: len(items) >= count, timeout, what=f"{count} messages")
    return items


def test_publish_reaches_the_broker(bridged: CoreThread, mosquitto: tuple[str, int]) -> None:
    seen: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    cloud = outside_client(mosquitto)
    cloud.on_message = lambda client, userdata, message: seen.append((message.topic, bytes(message.payload)))
    cloud.on_subscribe = lambda *args: subscribed.set()
    cloud.subscribe("dt/#", qos=1)
    assert subscribed.wait(5)
    bridged.client("Dev").publish_to_iot_core(topic_name="dt/dev1/telemetry", qos="1", payload=b'{"t":21}')
    assert wait(seen, 1) == [("dt/dev1/telemetry", b'{"t":21}')]
    cloud.loop_stop()


def test_subscribe_receives_from_the_broker(bridged: CoreThread, mosquitto: tuple[str, int]) -> None:
    got: list[Any] = []
    bridged.client("Dev").subscribe_to_iot_core(
        topic_name="cmd/#", qos="0", on_stream_event=lambda e: got.append(e.message)
    )
    cloud = outside_client(mosquitto)
    cloud.publish("cmd/reboot", b"now", qos=1).wait_for_publish(5)
    (message,) = wait(got, 1)
    assert (message.topic_name, bytes(message.payload)) == ("cmd/reboot", b"now")
    cloud.loop_stop()


def test_mqtt_style_policies_and_argument_checks(bridged: CoreThread) -> None:
    dev = bridged.client("Dev")
    with pytest.raises(UnauthorizedError) as denied:
        dev.publish_to_iot_core(topic_name="dt/dev1/other", qos="0", payload=b"x")
    assert denied.value.message == "Not Authorized"
    with pytest.raises(InvalidArgumentsError) as bad_qos:
        dev.publish_to_iot_core(topic_name="dt/dev1/telemetry", qos="7", payload=b"x")
    assert bad_qos.value.message == "Invalid QoS value: 7"


def test_an_unreachable_broker_is_a_clear_error() -> None:
    bridge = MqttBridge("127.0.0.1", 1, "nobody", asyncio.new_event_loop())
    with pytest.raises(BridgeError, match=r"cannot reach the MQTT broker at 127\.0\.0\.1:1"):
        bridge.connect(timeout=2)
