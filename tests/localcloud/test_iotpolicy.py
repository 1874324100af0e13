"""The IoT policy evaluator (localcloud.iotpolicy) against the AWS IoT Core developer guide's rules and examples:
iot-policies (evaluation: explicit deny, default deny), pub-sub-policy (topic vs topicfilter, MQTT wildcards
literal in policies, `*`/`?`), thing-policy-variables (thing variables only when the client id is an attached
thing's name), and device-auth in the Greengrass guide (no thing variables for core devices, `<thing>#2`)."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcloud import core_mqtt
from localcloud.iotpolicy import Connection, PolicyError, Statement, allowed, statements

REGION, ACCOUNT = "eu-west-1", "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
LEVEL = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
TOPIC = st.lists(LEVEL, min_size=1, max_size=5).map("/".join)


def policy(*statement: tuple[str, list[str], list[str]]) -> list[Statement]:
    return statements(
        {"Version": "2012-10-17", "Statement": [{"Effect": e, "Action": a, "Resource": r} for e, a, r in statement]}
    )


def device(client_id: str = "core-1", thing: str | None = "core-1") -> Connection:
    return Connection(REGION, ACCOUNT, client_id, thing)


def test_subscribe_checks_the_topic_filter_and_publish_the_topic() -> None:
    """pub-sub-policy: iot:Subscribe is checked against `topicfilter/`, iot:Publish and iot:Receive against
    `topic/`; a resource of one kind grants nothing of the other."""
    rules = policy(("Allow", ["iot:Subscribe"], [f"{ARN}:topicfilter/sensors/temp"]))
    assert allowed([rules], device().subscribe("sensors/temp"), device())
    assert not allowed([rules], device().publish("sensors/temp"), device())
    assert not allowed([rules], device().receive("sensors/temp"), device())


def test_mqtt_wildcards_are_plain_characters_to_a_policy() -> None:
    """pub-sub-policy: a policy allowing `sensors/temp` does not allow subscribing to `sensors/+`; only a resource
    naming `+` (or a policy `*`) covers the wildcard filter."""
    exact = policy(("Allow", ["iot:Subscribe"], [f"{ARN}:topicfilter/sensors/temp"]))
    assert not allowed([exact], device().subscribe("sensors/+"), device())
    plus = policy(("Allow", ["iot:Subscribe"], [f"{ARN}:topicfilter/sensors/+"]))
    assert allowed([plus], device().subscribe("sensors/+"), device())
    assert not allowed([plus], device().subscribe("sensors/temp"), device())
    star = policy(("Allow", ["iot:Subscribe"], [f"{ARN}:topicfilter/sensors/*"]))
    assert allowed([star], device().subscribe("sensors/+"), device())
    assert allowed([star], device().subscribe("sensors/#"), device())


@given(TOPIC, TOPIC)
def test_star_spans_levels_and_question_mark_one_character(prefix: str, rest: str) -> None:
    """iot-policies: `*` matches any characters, `/` included; `?` exactly one."""
    star = policy(("Allow", ["iot:Publish"], [f"{ARN}:topic/{prefix}/*"]))
    assert allowed([star], device().publish(f"{prefix}/{rest}"), device())
    assert not allowed([star], device().publish(rest), device()) or rest.startswith(f"{prefix}/")
    one = policy(("Allow", ["iot:Publish"], [f"{ARN}:topic/{prefix}/?"]))
    assert allowed([one], device().publish(f"{prefix}/{rest[0]}"), device())
    assert allowed([one], device().publish(f"{prefix}/{rest}"), device()) == (len(rest) == 1)


@given(TOPIC, TOPIC)
def test_a_literal_resource_matches_only_itself(granted: str, asked: str) -> None:
    rules = policy(("Allow", ["iot:Publish"], [f"{ARN}:topic/{granted}"]))
    assert allowed([rules], device().publish(asked), device()) == (granted == asked)


@given(st.lists(st.sampled_from(["allow-all", "deny-secret", "allow-secret"]), min_size=1, max_size=6), TOPIC)
def test_an_explicit_deny_wins_whatever_the_order(kinds: list[str], rest: str) -> None:
    """iot-policies: an explicit Deny overrides any Allow, in any policy, in any order; no Allow means denied."""
    chosen = {
        "allow-all": ("Allow", ["iot:*"], [f"{ARN}:topic/*"]),
        "deny-secret": ("Deny", ["iot:Publish"], [f"{ARN}:topic/secret/*"]),
        "allow-secret": ("Allow", ["iot:Publish"], [f"{ARN}:topic/secret/{rest}"]),
    }
    policies = [policy(chosen[kind]) for kind in kinds]
    random.Random(0).shuffle(policies)
    expected = "deny-secret" not in kinds and bool({"allow-all", "allow-secret"} & set(kinds))
    assert allowed(policies, device().publish(f"secret/{rest}"), device()) == expected


def test_actions_match_case_insensitively_with_wildcards() -> None:
    rules = policy(("Allow", ["IOT:publ*"], [f"{ARN}:topic/a"]))
    assert allowed([rules], device().publish("a"), device())
    assert not allowed([rules], device().subscribe("a"), device())


def test_thing_variables_need_the_client_id_to_name_an_attached_thing() -> None:
    """thing-policy-variables: `iot:Connection.Thing.ThingName` has a value only when the client id is the name of
    a thing attached to the certificate; a statement whose variable has no value matches nothing. So a core's
    `<thing>#2` connection (Greengrass device-auth) is refused by a policy written with the variable."""
    rules = policy(("Allow", ["iot:Connect"], [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"]))
    assert allowed([rules], device().connect(), device())
    second = device("core-1#2")
    assert not allowed([rules], second.connect(), second)
    unattached = device("core-1", thing=None)
    assert not allowed([rules], unattached.connect(), unattached)


def test_the_client_id_variable_is_literal_text() -> None:
    """A variable's value is substituted as text: a `*` in a client id grants no wildcard."""
    rules = policy(("Allow", ["iot:Publish"], [f"{ARN}:topic/devices/${{iot:ClientId}}"]))
    odd = device("a*", thing=None)
    assert allowed([rules], odd.publish("devices/a*"), odd)
    assert not allowed([rules], odd.publish("devices/abc"), odd)


def test_a_policy_with_the_thing_variable_fails_the_cores_second_connection() -> None:
    """The policy this project used to write: fine for the first connection, refused for `<thing>#2`."""
    thing = "${iot:Connection.Thing.ThingName}"
    old = policy(
        ("Allow", ["iot:Connect"], [f"{ARN}:client/{thing}"]),
        ("Allow", ["iot:Publish", "iot:Receive"], [f"{ARN}:topic/$aws/things/{thing}/*"]),
        ("Allow", ["iot:Subscribe"], [f"{ARN}:topicfilter/$aws/things/{thing}/*"]),
    )
    refused = core_mqtt.refused("core-1", REGION, ACCOUNT, [old])
    assert "core-1#2: iot:Connect arn:aws:iot:eu-west-1:123456789012:client/core-1#2" in refused
    assert not [line for line in refused if line.startswith("core-1: ")]


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        {"Statement": [{"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": {}}]},
    ],
)
def test_a_policy_it_cannot_read_is_an_error(document: object) -> None:
    with pytest.raises(PolicyError):
        statements(document)  # type: ignore[arg-type]
