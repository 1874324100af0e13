"""The local cloud's MQTT broker knows each client and what it may touch, as IoT Core does by certificate and IoT
policy: a device's account is its certificate's id and key, its ACL the topics of its policies' Allow statements
for its own thing (developer guide: iot-policy-actions, iot-action-resources, thing-policy-variables). Debian's
mosquitto is the real broker here, and paho the real client; the attacker is another client on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from localcloud import broker, iotpolicy, mqttauth
from localcloud.identities import Certificate
from localgg.mqtt import BridgeError, MqttBridge
from tests.conftest import machine_command
from tests.support.eventually import eventually

REGION, ACCOUNT = "eu-west-1", "123456789012"
IOT = f"arn:aws:iot:{REGION}:{ACCOUNT}"
THING_POLICY = {  # what terraform/modules/token-exchange attaches, for the thing `${iot:Connection.Thing.ThingName}`
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{IOT}:client/${{iot:Connection.Thing.ThingName}}"},
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": [
                f"{IOT}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/greengrassv2/health/json",
                f"{IOT}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*",
                f"{IOT}:topic/edgeml/${{iot:Connection.Thing.ThingName}}/*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": [f"{IOT}:topicfilter/edgeml/${{iot:Connection.Thing.ThingName}}/*"],
        },
        {"Effect": "Allow", "Action": "greengrass:*", "Resource": "*"},
    ],
}


def certificate(certificate_id: str, thing: str, policy: Mapping[str, object] = THING_POLICY) -> Certificate:
    statements = (iotpolicy.statements(json.dumps(policy)),)
    arn, secret = f"{IOT}:cert/{certificate_id}", f"secret-of-{certificate_id}"
    return Certificate(certificate_id, arn, secret, (thing,), statements)


def test_a_devices_acl_is_its_policy_for_its_own_thing() -> None:
    account = mqttauth.device_account(certificate("c1", "core-1"), REGION, ACCOUNT)
    assert (account.username, account.password) == ("c1", "secret-of-c1")
    assert set(account.topics) == {
        ("write", "$aws/things/core-1/greengrassv2/health/json"),
        ("read", "$aws/things/core-1/greengrassv2/health/json"),
        ("write", "$aws/things/core-1/jobs/#"),
        ("read", "$aws/things/core-1/jobs/#"),
        ("write", "edgeml/core-1/#"),
        ("read", "edgeml/core-1/#"),
    }


def test_a_variable_without_a_value_and_another_accounts_topics_allow_nothing() -> None:
    """The thing variables exist only for a certificate attached to a thing; another Region or account's topics are
    not this broker's."""
    unattached = Certificate("c2", f"{IOT}:cert/c2", "s", (), (iotpolicy.statements(json.dumps(THING_POLICY)),))
    assert mqttauth.device_account(unattached, REGION, ACCOUNT).topics == ()
    elsewhere = {
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:us-east-1:999999999999:topic/x"}]
    }
    assert mqttauth.device_account(certificate("c3", "t", elsewhere), REGION, ACCOUNT).topics == ()


@pytest.fixture
def fenced(tmp_path: Path) -> Iterator[tuple[broker.Broker, broker.Account]]:
    machine_command("mosquitto")
    cloud = mqttauth.cloud_account()
    devices = [certificate("c1", "core-1"), certificate("c2", "core-2")]
    started = broker.start(tmp_path / "mqtt", accounts=mqttauth.accounts(cloud, devices, REGION, ACCOUNT))
    yield started, cloud
    started.stop()


def client(
    fenced: tuple[broker.Broker, broker.Account], name: str, credentials: tuple[str, str] | None, timeout: float = 10
) -> MqttBridge:
    bridge = MqttBridge(*fenced[0].address, name, asyncio.new_event_loop(), credentials)
    threading.Thread(target=bridge.loop.run_forever, daemon=True).start()
    bridge.connect(timeout=timeout)  # a refused client is retried until then: the broker may learn of it
    return bridge


def test_an_anonymous_or_guessing_client_is_refused(fenced: tuple[broker.Broker, broker.Account]) -> None:
    for credentials in (None, ("c1", "a guess"), (mqttauth.CLOUD_USER, "a guess")):
        with pytest.raises(BridgeError, match="Not authorized"):
            client(fenced, "intruder", credentials, timeout=1.5)
    stat = (fenced[0].folder / "passwords").stat()
    assert stat.st_mode & 0o077 == 0  # the hashes are the stack's alone


def test_a_device_reaches_its_own_topics_and_not_another_devices(fenced: tuple[broker.Broker, broker.Account]) -> None:
    """core-2 subscribes to core-1's topics and publishes as core-1: the broker gives it nothing and passes nothing
    on, while the stack's own client sees each device's own report, and core-1 its own telemetry. Absence is proven
    by order, not by waiting: each forgery is followed, on the same connection, by a message that does arrive."""
    cloud = fenced[1]
    heard: dict[str, list[str]] = {"cloud": [], "core-1": [], "core-2": []}

    def hear(who: str) -> Callable[[str, bytes, bool], None]:
        return lambda topic, payload, retain: heard[who].append(payload.decode())

    listener = client(fenced, "localcloud", (cloud.username, cloud.password))
    listener.subscribe("$aws/things/+/greengrassv2/health/json", 1, hear("cloud"))
    one = client(fenced, "core-1", ("c1", "secret-of-c1"))
    one.subscribe("edgeml/core-1/#", 1, hear("core-1"))
    two = client(fenced, "core-2", ("c2", "secret-of-c2"))
    with contextlib.suppress(BridgeError):  # refused outright, or granted and never served: either way nothing
        two.subscribe("edgeml/core-1/#", 1, hear("core-2"))
    two.subscribe("edgeml/core-2/#", 1, hear("core-2"))
    two.publish("$aws/things/core-1/greengrassv2/health/json", 1, b"forged by core-2", False)
    two.publish("edgeml/core-1/results", 1, b"forged by core-2", False)
    two.publish("$aws/things/core-2/greengrassv2/health/json", 1, b"core-2's report", False)
    one.publish("edgeml/core-1/results", 1, b"core-1's result", False)
    eventually(lambda: heard["cloud"] and heard["core-1"], what="the devices' own messages delivered")
    two.publish("edgeml/core-2/marker", 1, b"core-2's marker", False)  # after core-1's result reached the broker
    eventually(lambda: heard["core-2"], what="core-2's own message delivered")
    assert heard == {"cloud": ["core-2's report"], "core-1": ["core-1's result"], "core-2": ["core-2's marker"]}
    for bridge in (listener, one, two):
        bridge.close()
