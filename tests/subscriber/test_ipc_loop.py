"""The subscriber's IPC loop, unmodified, as a component of localgg (a process here; the container runs in the
demo test): valid messages are answered on the results topic, bad ones on the error topic, none stops it."""

from __future__ import annotations

import base64
import json
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, JsonMessage, PublishMessage

from localgg.lifecycle import State
from scripts import product
from scripts.product import Components
from scripts.publishing import recipes
from tests.conftest import REPO
from tests.localgg.harness import CoreThread, pubsub, write_recipe
from tests.support.eventually import eventually
from tests.support.models import small_model

NAME = "com.edgeml.WineQualitySubscriber"
MODEL_VERSION = "1.0.7"  # what the recipe passes from the model component's configuration


def deploy_subscriber(
    gg: CoreThread, model: Path, configuration: dict[str, Any] | None = None, challenger: str = "", profile: str = ""
) -> None:
    """The real recipe's configuration and policies; Run starts the package as a process instead of a container."""
    rendered = recipes.render_component(
        "subscriber",
        {
            "component_name": NAME,
            "component_version": "1.0.0",
            **Components("unused").subscriber_values("unused"),
        },
    )
    default = rendered["ComponentConfiguration"]["DefaultConfiguration"] | (configuration or {})
    write_recipe(
        gg.recipes,
        NAME,
        configuration=default,
        lifecycle={
            "Setenv": {
                "MODEL_PATH": str(model),
                "EDGEML_MODEL_VERSION": MODEL_VERSION,
                "EDGEML_CHALLENGER_FILE": challenger,
                "EDGEML_PROFILE_FILE": profile,
                "PYTHONPATH": str(REPO / "components" / "subscriber"),
            },
            "Run": f"exec {sys.executable} -m subscriber",
        },
    )
    gg.deploy(NAME)


def subscribed(
    gg: CoreThread, model: Path, challenger: str = "", configuration: dict[str, Any] | None = None
) -> tuple[GreengrassCoreIPCClientV2, Collector, Path]:
    """A tester component that hears every `edgeml/+` record, and the subscriber deployed and subscribed; returns
    the tester's client, what it heard, and the subscriber's log."""
    gg.component("Tester", configuration={"accessControl": pubsub("local/topic", "edgeml/*")})
    answers = Collector()
    tester = gg.client("Tester")
    tester.subscribe_to_topic(topic="edgeml/+", on_stream_event=answers, receive_mode="RECEIVE_ALL_MESSAGES")
    deploy_subscriber(gg, model, configuration, challenger=challenger)
    log = gg.core.root / "logs" / f"{NAME}.log"
    eventually(lambda: "subscribed to local/topic" in (log.read_text() if log.exists() else ""), 30, what="subscribed")
    return tester, answers, log


class Collector:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.records.append((event.json_message.context.topic, event.json_message.message))

    def wait(self, count: int, timeout: float = 20) -> list[tuple[str, dict[str, Any]]]:
        eventually(lambda: len(self.records) >= count, timeout, what=f"{count} records")
        return list(self.records)


def test_each_message_gets_one_answer_and_bad_ones_do_not_stop_it(
    gg: CoreThread, seed: Path, samples: list[Any]
) -> None:
    tester, answers, log = subscribed(gg, seed / "xgboost_wine_quality.json")

    good = json.dumps({"body": json.dumps(samples), "isBase64Encoded": False}).encode()
    good_b64 = json.dumps(
        {"body": base64.b64encode(json.dumps(samples).encode()).decode(), "isBase64Encoded": True}
    ).encode()
    stream: list[bytes | dict[str, Any]] = [
        good,
        b"{not json",
        good_b64,
        b'{"body": "[]"}',
        {"body": samples},
        b'{"body": "!!", "isBase64Encoded": true}',
        b"x" * 300_000,
        good,
    ]
    for message in stream:
        publish = (
            PublishMessage(json_message=JsonMessage(message=message))
            if isinstance(message, dict)
            else PublishMessage(binary_message=BinaryMessage(message=message))
        )
        tester.publish_to_topic(topic="local/topic", publish_message=publish)

    got = answers.wait(len(stream))
    assert [topic for topic, _ in got] == [
        "edgeml/predictions",
        "edgeml/errors",
        "edgeml/predictions",
        "edgeml/errors",
        "edgeml/predictions",
        "edgeml/errors",
        "edgeml/errors",
        "edgeml/predictions",
    ]
    assert all(record["predictions"] == [6.573914, 4.869721] for topic, record in got if topic == "edgeml/predictions")
    assert {record["model_version"] for topic, record in got if topic == "edgeml/predictions"} == {MODEL_VERSION}
    assert [record["error"] for topic, record in got if topic == "edgeml/errors"] == [
        "invalid_json",
        "empty",
        "bad_base64",
        "too_large",
    ]
    assert gg.core.components[NAME].state is State.RUNNING
    text = log.read_text()
    assert text.count("result: [6.573914 4.869721]") == 4
    assert "rejected message on local/topic: invalid_json" in text


def test_a_flood_is_scored_in_order_and_what_is_dropped_is_counted(
    gg: CoreThread, seed: Path, samples: list[Any]
) -> None:
    """Messages published back to back, without waiting for the core's answers, to a subscriber that may hold only
    two: every message is answered on the results topic in the order sent, or counted as dropped on the error topic
    ("overloaded", with the running count) and in the log; none is lost without a count."""
    tester, answers, log = subscribed(
        gg, seed / "xgboost_wine_quality.json", configuration={"maxQueuedMessages": 2, "maxBatchMessages": 2}
    )
    # Message i holds i + 1 records: its result says which message it answers.
    sent = [json.dumps({"body": json.dumps([samples[0]] * (i + 1))}).encode() for i in range(200)]
    for message in sent:
        tester.publish_to_topic_async(
            topic="local/topic", publish_message=PublishMessage(binary_message=BinaryMessage(message=message))
        )

    def settled() -> tuple[list[Any], int]:
        got = answers.wait(0, timeout=0)
        results = [r["records"] - 1 for t, r in got if t == "edgeml/predictions"]
        dropped = max([r["dropped"] for t, r in got if t == "edgeml/errors" and r["error"] == "overloaded"], default=0)
        return results, dropped

    eventually(lambda: len(settled()[0]) + settled()[1] >= len(sent), 60, what="every message settled")
    results, dropped = settled()
    assert len(results) + dropped == len(sent)
    assert results == sorted(set(results))  # each message answered once at most, in the order sent
    # What `make status` shows for the device, read back from the same log line.
    eventually(lambda: product.dropped(log) == dropped, 10, what=f"overload: dropped={dropped} in the log")


def test_a_challenger_is_scored_in_the_shadow_after_the_champions_result(
    gg: CoreThread, seed: Path, samples: list[Any], tmp_path: Path
) -> None:
    """Each result is followed by a shadow record on the shadow topic: the challenger's predictions on the same
    records and the running agreement, scored in the challenger's own process after the champion's result is out
    (so a shadow record may come after the next result); the results stay the champion's."""
    shutil.copyfile(seed / "xgboost_wine_quality.json", tmp_path / "model.json")
    small_model(tmp_path, seed, "challenger.json")
    tester, answers, log = subscribed(gg, tmp_path / "model.json", challenger="challenger.json")
    message = json.dumps({"body": json.dumps(samples), "isBase64Encoded": False}).encode()
    for _ in range(2):
        tester.publish_to_topic(
            topic="local/topic", publish_message=PublishMessage(binary_message=BinaryMessage(message=message))
        )
    got = answers.wait(4)
    topics = [topic for topic, _ in got]
    assert sorted(topics) == ["edgeml/predictions"] * 2 + ["edgeml/shadow"] * 2
    seen = [topics[: i + 1] for i in range(len(topics))]  # a message's shadow never comes before its result
    assert all(t.count("edgeml/shadow") <= t.count("edgeml/predictions") for t in seen)
    results, shadows = [r for t, r in got if t == "edgeml/predictions"], [r for t, r in got if t == "edgeml/shadow"]
    assert all(r["predictions"] == [6.573914, 4.869721] for r in results)
    assert [s["champion"] for s in shadows] == [r["predictions"] for r in results]
    assert all(s["challenger"] != s["champion"] for s in shadows)
    assert [s["agreement"]["count"] for s in shadows] == [2, 4]
    assert [(s["failures"], s["dropped"]) for s in shadows] == [(0, 0), (0, 0)]
    assert "shadow: count=4 mean_abs_diff=" in log.read_text()


@pytest.mark.core_error(r"deployment FAILED: com\.edgeml\.WineQualitySubscriber is BROKEN")
def test_a_missing_model_is_a_clear_error_and_the_component_breaks(gg: CoreThread, tmp_path: Path) -> None:
    deploy_subscriber(gg, tmp_path / "absent.json")

    async def broken() -> State:
        return await gg.core.components[NAME].wait_for(State.BROKEN, timeout=60)

    assert gg.call(broken(), 70) is State.BROKEN
    assert (
        f"model file {tmp_path / 'absent.json'} does not exist" in (gg.core.root / "logs" / f"{NAME}.log").read_text()
    )


def test_results_are_forwarded_to_iot_core_when_configured(
    gg: CoreThread, seed: Path, samples: list[Any], mosquitto: tuple[str, int]
) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from localgg.mqtt import MqttBridge

    bridge = MqttBridge(*mosquitto, "localgg-subscriber-test", gg.loop)
    bridge.connect()
    gg.core.services.iot_core = bridge
    cloud_messages: list[dict[str, Any]] = []
    subscribed = threading.Event()
    cloud = mqtt.Client(CallbackAPIVersion.VERSION2)
    cloud.on_message = lambda client, userdata, message: cloud_messages.append(json.loads(message.payload))
    cloud.on_subscribe = lambda *args: subscribed.set()
    cloud.connect(*mosquitto)
    cloud.loop_start()
    cloud.subscribe("edgeml/test-thing/predictions", qos=1)
    assert subscribed.wait(5)
    policy = {
        "aws.greengrass.ipc.mqttproxy": {
            f"{NAME}:mqttproxy:1": {
                "operations": ["aws.greengrass#PublishToIoTCore"],
                "resources": ["edgeml/+/predictions"],
            }
        }
    }
    rendered = recipes.render_component(
        "subscriber",
        {
            "component_name": NAME,
            "component_version": "1.0.0",
            **Components("unused").subscriber_values("unused"),
        },
    )
    access = rendered["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"] | policy
    gg.component("Tester", configuration={"accessControl": pubsub("local/topic")})
    deploy_subscriber(
        gg,
        seed / "xgboost_wine_quality.json",
        {"iotCoreTopic": "edgeml/test-thing/predictions", "iotCoreQos": "1", "accessControl": access},
    )
    log = gg.core.root / "logs" / f"{NAME}.log"
    eventually(lambda: "subscribed to local/topic" in (log.read_text() if log.exists() else ""), 30, what="subscribed")
    gg.client("Tester").publish_to_topic(
        topic="local/topic",
        publish_message=PublishMessage(
            binary_message=BinaryMessage(message=json.dumps({"body": json.dumps(samples)}).encode())
        ),
    )
    eventually(lambda: cloud_messages, 10, what="a result at the broker")
    cloud.loop_stop()
    bridge.close()
    assert cloud_messages and cloud_messages[0]["predictions"] == [6.573914, 4.869721]
