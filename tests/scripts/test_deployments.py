"""Deployments as the full desired state, and per-device rollout, against greengrassv2 through botocore's
Stubber (moto has no greengrassv2): exact parameters, checked against the real service model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scripts import deployments, rollout

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
PUB, SUB, OTHER = "com.edgeml.WineQualityPublisher", "com.edgeml.WineQualitySubscriber", "com.other.Team"


@pytest.fixture
def gg() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("greengrassv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_the_desired_state_keeps_other_components_and_their_configuration() -> None:
    before: deployments.Components = {
        OTHER: {"componentVersion": "3.1.0"},
        PUB: {"componentVersion": "1.0.0", "configurationUpdate": {"merge": '{"interval": 2}'}},
    }
    after = deployments.desired(before, {PUB: {"componentVersion": "1.0.1"}, SUB: {"componentVersion": "1.0.0"}})
    assert after == {
        OTHER: {"componentVersion": "3.1.0"},
        PUB: {"componentVersion": "1.0.1", "configurationUpdate": {"merge": '{"interval": 2}'}},
        SUB: {"componentVersion": "1.0.0"},
    }
    assert [str(c) for c in deployments.changes(before, after)] == [f"~ {PUB} 1.0.0 -> 1.0.1", f"+ {SUB} 1.0.0"]
    assert deployments.changes(after, after) == []
    assert [str(c) for c in deployments.changes(after, {})] == [f"- {PUB} 1.0.1", f"- {SUB} 1.0.0", f"- {OTHER} 3.1.0"]


def test_current_reads_the_latest_deployment_of_the_group(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    stubber.add_response(
        "list_deployments",
        {
            "deployments": [
                {"deploymentId": "old", "isLatestForTarget": False, "targetArn": GROUP},
                {"deploymentId": "d-2", "isLatestForTarget": True, "targetArn": GROUP},
            ]
        },
        {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"},
    )
    stubber.add_response(
        "get_deployment",
        {"deploymentId": "d-2", "components": {PUB: {"componentVersion": "1.0.0"}}},
        {"deploymentId": "d-2"},
    )
    assert deployments.current(client, GROUP) == ("d-2", {PUB: {"componentVersion": "1.0.0"}})


def test_a_group_never_deployed_to_has_no_components(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    stubber.add_response("list_deployments", {"deployments": []}, {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"})
    assert deployments.current(client, GROUP) == (None, {})


def test_create_rolls_back_on_failure_with_a_timeout_and_a_stable_token(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    components = {PUB: {"componentVersion": "1.0.1"}}
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-3"},
        {
            "targetArn": GROUP,
            "deploymentName": "edgeml",
            "components": components,
            "deploymentPolicies": {
                "failureHandlingPolicy": "ROLLBACK",
                "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
                "configurationValidationPolicy": {"timeoutInSeconds": 60},
            },
            "iotJobConfiguration": {"timeoutConfig": {"inProgressTimeoutInMinutes": 30}},
            "clientToken": hashlib.sha256(json.dumps([GROUP, "d-2", components], sort_keys=True).encode()).hexdigest()[
                :64
            ],
        },
    )
    assert deployments.create(client, GROUP, "edgeml", components, deployments.Policies(), "d-2") == "d-3"


def expect_device(
    stubber: Stubber, thing: str, execution: str | None, states: dict[str, str], reason: str = ""
) -> None:
    effective = (
        []
        if execution is None
        else [
            {
                "deploymentId": "d-3",
                "deploymentName": "edgeml",
                "targetArn": GROUP,
                "coreDeviceExecutionStatus": execution,
                "creationTimestamp": 0,
                "modifiedTimestamp": 0,
            }
            | ({"reason": reason} if reason else {})
        ]
    )
    stubber.add_response(
        "list_effective_deployments", {"effectiveDeployments": effective}, {"coreDeviceThingName": thing}
    )
    stubber.add_response(
        "list_installed_components",
        {
            "installedComponents": [
                {"componentName": name, "componentVersion": "1.0.1", "lifecycleState": state}
                | ({"lifecycleStateDetails": "exit code 1"} if state == "BROKEN" else {})
                for name, state in states.items()
            ]
            + [{"componentName": "aws.greengrass.Nucleus", "componentVersion": "2.14.0", "lifecycleState": "FINISHED"}]
        },
        {"coreDeviceThingName": thing},
    )


def expect_group(stubber: Stubber, *things: str) -> None:
    stubber.add_response(
        "list_core_devices",
        {"coreDevices": [{"coreDeviceThingName": t, "status": "HEALTHY"} for t in things]},
        {"thingGroupArn": GROUP},
    )


def follow(client: Any, timeout: float = 100) -> tuple[list[rollout.Device], list[list[rollout.Device]]]:
    seen: list[list[rollout.Device]] = []
    ticks = iter(range(10_000))
    devices = rollout.follow(
        client,
        GROUP,
        "d-3",
        {PUB, SUB},
        timeout,
        seen.append,
        interval=10,
        sleep=lambda s: None,
        clock=lambda: float(next(ticks) * 10),
    )
    return devices, seen


def test_rollout_succeeds_only_when_every_device_succeeded(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    expect_group(stubber, "core-a", "core-b")
    expect_device(stubber, "core-a", "IN_PROGRESS", {PUB: "INSTALLED"})
    expect_device(stubber, "core-b", None, {})
    expect_group(stubber, "core-a", "core-b")
    expect_device(stubber, "core-a", "SUCCEEDED", {PUB: "RUNNING", SUB: "RUNNING"})
    expect_device(stubber, "core-b", "SUCCEEDED", {PUB: "RUNNING", SUB: "RUNNING"})
    devices, seen = follow(client)
    assert len(seen) == 2 and seen[0][1].execution is None
    assert [(d.thing, d.execution, d.components[SUB].state) for d in devices] == [
        ("core-a", "SUCCEEDED", "RUNNING"),
        ("core-b", "SUCCEEDED", "RUNNING"),
    ]
    assert "aws.greengrass.Nucleus" not in devices[0].components


def test_a_failed_device_is_named_with_its_component_and_reason(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    expect_group(stubber, "core-a", "core-b")
    expect_device(stubber, "core-a", "SUCCEEDED", {PUB: "RUNNING", SUB: "RUNNING"})
    expect_device(
        stubber,
        "core-b",
        "FAILED",
        {PUB: "RUNNING", SUB: "BROKEN"},
        reason="FAILED_ROLLBACK_COMPLETE: component errored",
    )
    with pytest.raises(rollout.RolloutError) as caught:
        follow(client)
    assert str(caught.value) == (
        f"core-b: deployment FAILED: FAILED_ROLLBACK_COMPLETE: component errored; {SUB} 1.0.1 is BROKEN (exit code 1)"
    )


def test_a_rollout_that_does_not_finish_times_out_naming_who_is_waited_on(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    for _ in range(2):
        expect_group(stubber, "core-a")
        expect_device(stubber, "core-a", "IN_PROGRESS", {PUB: "STARTING"})
    with pytest.raises(rollout.RolloutError, match=r"did not finish within 15s; waiting on core-a \(IN_PROGRESS\)"):
        follow(client, timeout=15)


def test_an_empty_group_is_an_error(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    expect_group(stubber)
    with pytest.raises(rollout.RolloutError, match="no core devices in"):
        follow(client)


def test_a_device_whose_first_report_is_late_is_waited_for(gg: tuple[Any, Stubber]) -> None:
    """The service knows a core device from its first fleet status report, which can come a moment after the
    device took the deployment: an empty group is final only after a grace period."""
    client, stubber = gg
    expect_group(stubber)
    expect_group(stubber, "core-a")
    expect_device(stubber, "core-a", "SUCCEEDED", {PUB: "RUNNING"})
    ticks = iter(range(10_000))
    (device,) = rollout.follow(
        client, GROUP, "d-3", {PUB}, 100, lambda d: None, interval=1, sleep=lambda s: None, clock=lambda: next(ticks)
    )
    assert device.execution == "SUCCEEDED"
