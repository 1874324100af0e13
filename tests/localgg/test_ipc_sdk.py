"""The unmodified awsiotsdk client against localgg: the semantics of ../shared/docs/greengrass-ipc.md."""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pytest
from awsiot.eventstreamrpc import AccessDeniedError, StreamClosedError
from awsiot.greengrasscoreipc import connect
from awsiot.greengrasscoreipc.model import (
    BinaryMessage,
    FailedUpdateConditionCheckError,
    InvalidArgumentsError,
    JsonMessage,
    PublishMessage,
    ReportedLifecycleState,
    ResourceNotFoundError,
    ServiceError,
    SubscriptionResponseMessage,
    UnauthorizedError,
)

from localgg.lifecycle import State
from tests.localgg.harness import PUBLISH, SUBSCRIBE, CoreThread, pubsub, write_recipe
from tests.support.eventually import eventually


class Inbox:
    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.closed = threading.Event()
        self._cond = threading.Condition()

    def __call__(self, event: SubscriptionResponseMessage) -> None:
        with self._cond:
            if event.binary_message is not None:
                self.items.append((event.binary_message.context.topic, bytes(event.binary_message.message)))
            else:
                self.items.append((event.json_message.context.topic, event.json_message.message))
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 10) -> list[tuple[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.items) >= count, timeout)
        return list(self.items)


def binary(data: bytes) -> PublishMessage:
    return PublishMessage(binary_message=BinaryMessage(message=data))


def subscribe(gg: CoreThread, name: str, topic: str, mode: str | None = None) -> Inbox:
    inbox = Inbox()
    gg.client(name).subscribe_to_topic(
        topic=topic, receive_mode=mode, on_stream_event=inbox, on_stream_closed=inbox.closed.set
    )
    return inbox


@pytest.fixture
def pair(gg: CoreThread) -> CoreThread:
    gg.component("Pub", configuration={"accessControl": pubsub("demo", "demo/*", "other/*")})
    gg.component("Sub", configuration={"accessControl": pubsub("*")})
    return gg


def test_binary_and_json_messages_reach_a_subscriber(pair: CoreThread) -> None:
    inbox = subscribe(pair, "Sub", "demo/#")
    publisher = pair.client("Pub")
    publisher.publish_to_topic(topic="demo/a", publish_message=binary(b"\x00hello\xff"))
    publisher.publish_to_topic(
        topic="demo/json", publish_message=PublishMessage(json_message=JsonMessage(message={"n": 1, "l": [1, 2]}))
    )
    assert inbox.wait(2) == [("demo/a", b"\x00hello\xff"), ("demo/json", {"n": 1, "l": [1, 2]})]


def test_wildcards_match_as_the_nucleus_does(pair: CoreThread) -> None:
    hash_box, plus_box = subscribe(pair, "Sub", "demo/#"), subscribe(pair, "Sub", "demo/+/b")
    publisher = pair.client("Pub")
    for topic in ("demo", "demo/a", "demo/a/b", "demo//b", "demo/a/b/", "demo/a/c"):
        publisher.publish_to_topic(topic=topic, publish_message=binary(topic.encode()))
    assert [t for t, _ in hash_box.wait(5)] == ["demo/a", "demo/a/b", "demo//b", "demo/a/b/", "demo/a/c"]
    assert [t for t, _ in plus_box.wait(3)] == ["demo/a/b", "demo//b", "demo/a/b/"]


def test_receive_mode_and_its_defaults(gg: CoreThread) -> None:
    gg.component("Self", configuration={"accessControl": pubsub("demo/*")})
    gg.component("Other", configuration={"accessControl": pubsub("demo/*")})
    boxes = {
        mode: subscribe(gg, "Self", "demo/x", mode)
        for mode in (None, "RECEIVE_ALL_MESSAGES", "RECEIVE_MESSAGES_FROM_OTHERS")
    }
    wildcard_default = subscribe(gg, "Self", "demo/+")
    gg.client("Self").publish_to_topic(topic="demo/x", publish_message=binary(b"from-self"))
    gg.client("Other").publish_to_topic(topic="demo/x", publish_message=binary(b"from-other"))
    assert [m for _, m in boxes[None].wait(2)] == [b"from-self", b"from-other"]
    assert [m for _, m in boxes["RECEIVE_ALL_MESSAGES"].wait(2)] == [b"from-self", b"from-other"]
    # Each box's first message is its verdict: from-self was delivered (or not) before Self's publish was answered,
    # so ahead of from-other on every subscriber's stream.
    assert [m for _, m in boxes["RECEIVE_MESSAGES_FROM_OTHERS"].wait(1)] == [b"from-other"]
    assert [m for _, m in wildcard_default.wait(1)] == [b"from-other"]


def test_order_is_kept_per_subscription(pair: CoreThread) -> None:
    inbox = subscribe(pair, "Sub", "demo/order")
    publisher = pair.client("Pub")
    futures = [
        publisher.publish_to_topic_async(topic="demo/order", publish_message=binary(str(i).encode()))
        for i in range(500)
    ]
    for future in futures:
        future.result(10)
    assert [int(m) for _, m in inbox.wait(500)] == list(range(500))


@pytest.mark.parametrize("mebibytes", [10, 17])  # 17 MiB is about the largest binary payload the SDK can send
def test_large_payloads(pair: CoreThread, mebibytes: int) -> None:
    inbox = subscribe(pair, "Sub", "demo/big")
    data = bytes(range(256)) * (mebibytes * 1024 * 1024 // 256)
    pair.client("Pub").publish_to_topic(topic="demo/big", publish_message=binary(data))
    assert inbox.wait(1, timeout=60) == [("demo/big", data)]


def test_denied_operations_name_the_principal_and_resource(pair: CoreThread) -> None:
    publisher = pair.client("Pub")
    with pytest.raises(UnauthorizedError) as caught:
        publisher.publish_to_topic(topic="forbidden/topic", publish_message=binary(b"x"))
    assert caught.value.message == (
        "Principal Pub is not authorized to perform aws.greengrass.ipc.pubsub:"
        "aws.greengrass#PublishToTopic on resource forbidden/topic"
    )
    with pytest.raises(UnauthorizedError) as denied_subscribe:
        publisher.subscribe_to_topic(topic="forbidden/#", on_stream_event=lambda e: None)
    assert denied_subscribe.value.message == (
        "Principal Pub is not authorized to perform aws.greengrass.ipc.pubsub:"
        "aws.greengrass#SubscribeToTopic on resource forbidden/#"
    )
    with pytest.raises(UnauthorizedError) as empty:
        pair.client("Sub").subscribe_to_topic(topic="", on_stream_event=lambda e: None)
    assert empty.value.message == "Resource cannot be empty"


def test_only_declared_operations_are_granted(gg: CoreThread) -> None:
    gg.component("PubOnly", configuration={"accessControl": pubsub("demo/*", operations=(PUBLISH,))})
    gg.component("NoPolicy")
    with pytest.raises(UnauthorizedError):
        gg.client("PubOnly").subscribe_to_topic(topic="demo/a", on_stream_event=lambda e: None)
    with pytest.raises(UnauthorizedError):
        gg.client("NoPolicy").publish_to_topic(topic="demo/a", publish_message=binary(b"x"))
    assert SUBSCRIBE  # the harness grants both by default; this component was given one


def test_argument_errors_come_after_authorization(pair: CoreThread) -> None:
    publisher, subscriber = pair.client("Pub"), pair.client("Sub")
    with pytest.raises(InvalidArgumentsError) as caught:
        subscriber.publish_to_topic(topic="demo/+", publish_message=binary(b"x"))
    assert caught.value.message == "Publish topic must not contain a wildcard."
    with pytest.raises(UnauthorizedError):  # authorization first: Pub may not publish to demo+ at all
        publisher.publish_to_topic(topic="demo+", publish_message=binary(b"x"))
    with pytest.raises(StreamClosedError):  # non-object jsonMessage: the nucleus's InternalServerError
        publisher.publish_to_topic(
            topic="demo/a", publish_message=PublishMessage(json_message=JsonMessage(message=[1]))
        )


def test_wrong_token_is_access_denied(gg: CoreThread) -> None:
    with pytest.raises(AccessDeniedError):
        connect(ipc_socket=str(gg.core.socket), authtoken="NOTAVALIDTOKEN00")


def test_configuration_get_update_and_watch(gg: CoreThread) -> None:
    gg.component("Conf", configuration={"greeting": "hello", "nested": {"a": {"b": 42}}, "accessControl": pubsub("x")})
    ipc = gg.client("Conf")
    assert ipc.get_configuration(key_path=["nested", "a"]).value == {"b": 42}
    assert ipc.get_configuration(key_path=["greeting"]).value == {"greeting": "hello"}
    with pytest.raises(ResourceNotFoundError):
        ipc.get_configuration(key_path=["missing"])
    events: list[Any] = []
    ipc.subscribe_to_configuration_update(key_path=["nested"], on_stream_event=events.append)
    ipc.update_configuration(key_path=["nested"], value_to_merge={"a": {"c": 1}}, timestamp=datetime.datetime.now())
    assert ipc.get_configuration(key_path=["nested", "a"]).value == {"b": 42, "c": 1}
    eventually(lambda: events, 5, what="a configuration update event")
    # The changed node's own path, relative to the configuration (ConfigStoreIPCEventStreamAgent).
    assert events[0].configuration_update_event.key_path == ["nested", "a", "c"]
    with pytest.raises(FailedUpdateConditionCheckError):
        ipc.update_configuration(key_path=["nested"], value_to_merge={"a": 1}, timestamp=datetime.datetime(2000, 1, 1))
    with pytest.raises(InvalidArgumentsError):
        ipc.update_configuration(key_path=["accessControl"], value_to_merge={"x": 1}, timestamp=datetime.datetime.now())


def test_unsupported_operations_answer_as_the_nucleus(gg: CoreThread) -> None:
    gg.component("Any")
    with pytest.raises(ServiceError) as caught:
        gg.client("Any").create_debug_password()
    assert caught.value.message == "Operation aws.greengrass#CreateDebugPassword is not supported by Greengrass"


def test_closing_a_subscription_stops_delivery(pair: CoreThread) -> None:
    """The server forgets the closed stream, and nothing published after reaches its handler: a later message on
    another subscription of the same connection is the barrier (one connection's frames arrive in order)."""
    inbox, barrier = Inbox(), Inbox()
    sub = pair.client("Sub")
    _, operation = sub.subscribe_to_topic(topic="demo/c", on_stream_event=inbox)
    sub.subscribe_to_topic(topic="demo/barrier", on_stream_event=barrier)
    publisher = pair.client("Pub")
    publisher.publish_to_topic(topic="demo/c", publish_message=binary(b"1"))
    inbox.wait(1)
    operation.close().result(5)
    eventually(lambda: pair.core.services.pubsub.matching("demo/c") == [], 5, what="the closed subscription gone")
    publisher.publish_to_topic(topic="demo/c", publish_message=binary(b"2"))
    publisher.publish_to_topic(topic="demo/barrier", publish_message=binary(b"after"))
    assert [m for _, m in barrier.wait(1)] == [b"after"]
    assert [m for _, m in inbox.items] == [b"1"]


def test_a_disconnected_subscriber_is_forgotten(pair: CoreThread) -> None:
    inbox = subscribe(pair, "Sub", "demo/d")
    pair.clients.pop().close()
    eventually(lambda: pair.core.services.pubsub.matching("demo/d") == [], 5, what="the subscription gone")
    pair.client("Pub").publish_to_topic(topic="demo/d", publish_message=binary(b"x"))  # answered: nobody to reach
    assert inbox.items == []


def test_a_component_reporting_errored_is_restarted_as_the_nucleus_restarts_it(gg: CoreThread) -> None:
    """UpdateState(ERRORED) from a RUNNING component is an error of that component: the nucleus's
    LifecycleIPCEventStreamAgent hands the state to GreengrassService.reportState, and the lifecycle restarts an
    ERRORED service after its Recover step. Its process is ended and started again, the error counted."""
    write_recipe(gg.recipes, "Reporter", lifecycle={"Run": "echo $$ >> starts; exec sleep 300"})
    gg.deploy("Reporter")
    component = gg.core.components["Reporter"]
    eventually(lambda: component.state is State.RUNNING, what="Reporter RUNNING")
    gg.client("Reporter").update_state(state=ReportedLifecycleState.ERRORED)
    starts = gg.core.root / "work" / "Reporter" / "starts"
    eventually(lambda: starts.exists() and len(starts.read_text().split()) == 2, what="Reporter started again")
    eventually(lambda: component.state is State.RUNNING and component.errors == 1, what="one error, RUNNING")
