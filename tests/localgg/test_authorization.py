"""accessControl matching: STANDARD for local pub/sub, MQTT_STYLE for the IoT Core proxy (greengrass-ipc.md §9.1)."""

from __future__ import annotations

import json

import pytest

from localgg.authorization import MQTT_PROXY, PUBSUB, Authorizer, Mode, NotAuthorized

PUB = "aws.greengrass#PublishToTopic"
SUB = "aws.greengrass#SubscribeToTopic"
IOT_PUB = "aws.greengrass#PublishToIoTCore"


def authorizer(resources: list[str], destination: str = PUBSUB, operations: list[str] | None = None) -> Authorizer:
    auth = Authorizer()
    ops = operations or ([PUB, SUB] if destination == PUBSUB else [IOT_PUB])
    auth.load("A", {destination: {"A:1": {"operations": ops, "resources": resources}}})
    return auth


@pytest.mark.parametrize(
    ("resource", "topic", "allowed"),
    [
        ("demo/*", "demo/a/b", True),
        ("demo/*", "demo", False),
        ("*", "", None),  # "" raises: "Resource cannot be empty"
        ("test/topic/#", "test/topic/#", True),
        ("test/topic/filter", "test/topic/#", False),
        ("test/*", "test/topic/#", True),
        ("sensors/+/temp", "sensors/x/temp", False),  # `+` is literal in STANDARD
        ("sensors/+/temp", "sensors/+/temp", True),
        ("a${*}b", "a*b", True),
        ("a${*}b", "axb", False),
        ("what?", "what?", False),  # an unescaped `?` makes the resource invalid
        ("what${?}", "what?", True),
    ],
)
def test_standard_matching(resource: str, topic: str, allowed: bool | None) -> None:
    auth = authorizer([resource])
    if allowed is None:
        with pytest.raises(NotAuthorized, match="Resource cannot be empty"):
            auth.is_authorized(PUBSUB, "A", SUB, topic)
    else:
        assert auth.is_authorized(PUBSUB, "A", SUB, topic) is allowed


@pytest.mark.parametrize(
    ("resource", "topic", "allowed"),
    [
        ("dt/+/telemetry", "dt/dev1/telemetry", True),
        ("dt/+/telemetry", "dt/+/telemetry", True),
        ("dt/+/telemetry", "dt/a/b/telemetry", False),
        ("cmd/#", "cmd", True),
        ("cmd/#", "cmd/", True),
        ("cmd/#", "cmd/a/b", True),
        ("cmd/#", "cmdx", False),
        ("#", "anything/at/all", True),
        ("a+/b", "ax/b", False),  # a misplaced `+` is literal
        ("dt/*", "dt/x/y", True),
    ],
)
def test_mqtt_style_matching(resource: str, topic: str, allowed: bool) -> None:
    auth = authorizer([resource], MQTT_PROXY)
    assert auth.is_authorized(MQTT_PROXY, "A", IOT_PUB, topic, Mode.MQTT_STYLE) is allowed


def test_policies_grant_only_their_own_component_and_operations() -> None:
    auth = authorizer(["*"], operations=[PUB])
    assert auth.is_authorized(PUBSUB, "A", PUB, "t")
    assert not auth.is_authorized(PUBSUB, "A", SUB, "t")
    assert not auth.is_authorized(PUBSUB, "B", PUB, "t")
    assert not auth.is_authorized(MQTT_PROXY, "A", IOT_PUB, "t", Mode.MQTT_STYLE)
    assert not auth.is_authorized(PUBSUB, "A", "aws.greengrass#GetSecretValue", "t")


def test_a_null_resource_matches_any_granted_entry() -> None:
    assert authorizer(["x"]).is_authorized(PUBSUB, "A", PUB, None)
    assert not authorizer([]).is_authorized(PUBSUB, "A", PUB, "x")  # no resources: grants nothing


def test_star_operation_json_string_and_case_insensitive_fields() -> None:
    auth = Authorizer()
    auth.load("A", json.dumps({PUBSUB: {"A:1": {"Operations": ["*"], "RESOURCES": ["t/*"]}}}))
    assert auth.is_authorized(PUBSUB, "A", SUB, "t/1")
    auth.forget("A")
    assert not auth.is_authorized(PUBSUB, "A", SUB, "t/1")


def test_invalid_access_control_loads_nothing() -> None:
    auth = Authorizer()
    auth.load("A", "{not json")
    auth.load("B", {PUBSUB: {"": {"operations": [PUB], "resources": ["*"]}}})
    assert not auth.is_authorized(PUBSUB, "A", PUB, "t")
    assert not auth.is_authorized(PUBSUB, "B", PUB, "t")


def test_a_remembered_decision_follows_policy_changes() -> None:
    auth = authorizer(["demo/*"])
    assert auth.is_authorized(PUBSUB, "A", PUB, "other/x") is False
    auth.load("A", {PUBSUB: {"A:1": {"operations": [PUB], "resources": ["other/*"]}}})
    assert auth.is_authorized(PUBSUB, "A", PUB, "other/x") is True
    auth.forget("A")
    assert auth.is_authorized(PUBSUB, "A", PUB, "other/x") is False
    with pytest.raises(NotAuthorized):  # an empty resource is refused every time, not remembered
        auth.is_authorized(PUBSUB, "A", PUB, "")
    with pytest.raises(NotAuthorized):
        auth.is_authorized(PUBSUB, "A", PUB, "")
