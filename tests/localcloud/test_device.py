"""localgg as a core device of the local cloud: it picks up its thing group's deployments from the local
control plane, applies them, reports per deployment and per component, and rolls back a failed one. The
pipeline's own rollout follower reads the outcome through the control plane's real HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud.device import DeviceAgent
from localcloud.greengrassv2 import ControlPlane
from localcloud.server import serve
from scripts import deployments, rollout
from tests.localgg.harness import CoreThread

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
NAME = "com.example.Service"


@pytest.fixture
def fleet(gg: CoreThread) -> Iterator[tuple[ControlPlane, Any, DeviceAgent]]:
    plane = ControlPlane()
    server, url = serve(plane)
    client = boto3.client(
        "greengrassv2", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x"
    )

    async def make() -> DeviceAgent:
        return DeviceAgent(
            gg.core,
            plane,
            lambda: [GROUP],
            s3=None,
            ecr=None,
            registry_login=lambda *a: None,
            workdir=gg.root / "device",
            settle_timeout=10,
            stable_for=1.5,
        )

    agent = gg.call(make())
    yield plane, client, agent
    server.shutdown()


def version(client: Any, number: str, run: str) -> None:
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": NAME,
        "ComponentVersion": number,
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": run}}],
    }
    client.create_component_version(inlineRecipe=json.dumps(recipe).encode())


def deploy(
    gg: CoreThread, client: Any, agent: DeviceAgent, number: str, on_failure: str = "ROLLBACK"
) -> tuple[str, str | None]:
    policies = deployments.Policies().deployment_policies() | {"failureHandlingPolicy": on_failure}
    deployment = client.create_deployment(
        targetArn=GROUP, components={NAME: {"componentVersion": number}}, deploymentPolicies=policies
    )["deploymentId"]
    outcome = gg.call(agent.poll_once(), timeout=60)
    return deployment, outcome


def test_a_deployment_is_applied_and_reported(gg: CoreThread, fleet: tuple[ControlPlane, Any, DeviceAgent]) -> None:
    plane, client, agent = fleet
    version(client, "1.0.0", "exec sleep 300")
    deployment, outcome = deploy(gg, client, agent, "1.0.0")
    assert outcome == "SUCCEEDED"
    assert plane.devices["test-thing"].groups == {GROUP}  # registered with the groups it was asked for
    (device,) = rollout.follow(client, GROUP, deployment, {NAME}, timeout=5, on_update=lambda d: None, interval=0)
    assert (device.execution, device.components[NAME].version, device.components[NAME].state) == (
        "SUCCEEDED",
        "1.0.0",
        "RUNNING",
    )
    assert gg.call(agent.poll_once()) is None  # nothing new to do


@pytest.mark.parametrize(
    ("policy", "running_after", "status"),
    [("ROLLBACK", "1.0.0", "FAILED_ROLLBACK_COMPLETE"), ("DO_NOTHING", "1.0.1", "FAILED_ROLLBACK_NOT_REQUESTED")],
)
def test_a_failing_deployment_follows_its_failure_policy_and_is_reported(
    gg: CoreThread, fleet: tuple[ControlPlane, Any, DeviceAgent], policy: str, running_after: str, status: str
) -> None:
    _, client, agent = fleet
    version(client, "1.0.0", "exec sleep 300")
    deploy(gg, client, agent, "1.0.0")
    version(client, "1.0.1", "echo broken >&2; exit 3")
    deployment, outcome = deploy(gg, client, agent, "1.0.1", policy)
    assert outcome == "FAILED"
    assert gg.core.recipes[NAME].version == running_after
    with pytest.raises(rollout.RolloutError) as caught:
        rollout.follow(client, GROUP, deployment, {NAME}, timeout=5, on_update=lambda d: None, interval=0)
    message = str(caught.value)
    assert message.startswith(f"test-thing: deployment FAILED: {status}: ")
    assert f"{NAME} 1.0.1" in message  # the component that failed, named


def test_the_agent_loop_picks_deployments_up_by_itself(
    gg: CoreThread, fleet: tuple[ControlPlane, Any, DeviceAgent]
) -> None:
    _, client, agent = fleet
    task = asyncio.run_coroutine_threadsafe(agent.run(interval=0.1), gg.loop)
    try:
        version(client, "2.0.0", "exec sleep 300")
        deployment = deployments.create(
            client, GROUP, "edgeml", {NAME: {"componentVersion": "2.0.0"}}, deployments.Policies()
        )
        (device,) = rollout.follow(
            client, GROUP, deployment, {NAME}, timeout=30, on_update=lambda d: None, interval=0.2
        )
        assert device.execution == "SUCCEEDED"
    finally:
        task.cancel()
