"""The publisher, unmodified, as a component of localgg: the reference's messages at its interval, a message
count limit, and a reconnect when the IPC connection drops (the SDK never reconnects by itself)."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

from localgg.lifecycle import State
from scripts.publishing import recipes
from tests.conftest import REPO
from tests.localgg.harness import CoreThread, pubsub, write_recipe
from tests.support.eventually import eventually

NAME = "com.edgeml.WineQualityPublisher"


def deploy_publisher(gg: CoreThread, **configuration: Any) -> None:
    rendered = recipes.render_component(
        "publisher", {"component_name": NAME, "component_version": "1.0.0", "artifact_uri": "s3://unused/publisher.zip"}
    )
    default = rendered["ComponentConfiguration"]["DefaultConfiguration"] | configuration
    write_recipe(
        gg.recipes,
        NAME,
        configuration=default,
        lifecycle={
            "Setenv": {"PYTHONPATH": str(REPO / "components" / "publisher")},
            "Run": f"exec {sys.executable} -m publisher",
        },
    )
    gg.deploy(NAME)


def listen(gg: CoreThread) -> list[dict[str, Any]]:
    gg.component("Listener", configuration={"accessControl": pubsub("local/topic")})
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_event(event: Any) -> None:
        with lock:
            received.append(json.loads(bytes(event.binary_message.message)))

    gg.client("Listener").subscribe_to_topic(topic="local/topic", on_stream_event=on_event)
    return received


def wait_for(condition: Any, timeout: float = 20) -> None:
    eventually(condition, timeout)


def test_publishes_the_reference_format_up_to_the_limit(gg: CoreThread, samples: list[Any]) -> None:
    received = listen(gg)
    deploy_publisher(gg, interval=0.05, MSG_COUNT_LIMIT=3)

    async def finished() -> State:
        return await gg.core.components[NAME].wait_for(State.FINISHED, State.BROKEN, timeout=30)

    assert gg.call(finished(), 40) is State.FINISHED
    # The publisher has exited, so whatever it sent the core has taken in; a message sent now reaches the listener
    # after all of those (one topic, one subscriber stream, in order): it marks the end, no wait needed.
    sentinel = {"sentinel": True}
    gg.client("Listener").publish_to_topic(
        topic="local/topic", publish_message=PublishMessage(binary_message=BinaryMessage(message=json.dumps(sentinel)))
    )
    wait_for(lambda: sentinel in received)
    assert received.index(sentinel) == 3
    assert all(m == {"body": json.dumps(samples), "isBase64Encoded": False} for m in received[:3])


def test_reconnects_when_the_ipc_connection_drops(gg: CoreThread) -> None:
    received = listen(gg)
    deploy_publisher(gg, interval=0.1)
    wait_for(lambda: len(received) >= 2)

    async def restart_ipc() -> None:
        gg.core.server.close()  # every client is disconnected, as when the nucleus restarts
        await gg.core.server.start()

    gg.call(restart_ipc())
    received.clear()  # the listener's own connection is gone too: subscribe again
    received = listen_again(gg)
    wait_for(lambda: len(received) >= 3, timeout=30)
    assert gg.core.components[NAME].state is State.RUNNING
    assert "reconnecting" in (gg.core.root / "logs" / f"{NAME}.log").read_text()


def listen_again(gg: CoreThread) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    gg.client("Listener").subscribe_to_topic(
        topic="local/topic", on_stream_event=lambda e: received.append(json.loads(bytes(e.binary_message.message)))
    )
    return received
