"""The local greengrassv2 control plane as a real HTTP endpoint: boto3 parses every reply against the real
service model, errors arrive as the service's exception classes, and the pipeline's own modules (component
registration, deployments, rollout) run against it unchanged, with no Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud.greengrassv2 import ControlPlane
from localcloud.server import serve
from scripts import components, deployments, rollout

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
PUB = "com.edgeml.WineQualityPublisher"


@pytest.fixture
def cloud() -> Iterator[tuple[ControlPlane, Any]]:
    plane = ControlPlane()
    server, url = serve(plane)
    client = boto3.client(
        "greengrassv2", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    yield plane, client
    server.shutdown()


def recipe(version: str, interval: int = 5) -> bytes:
    return (
        f'{{"RecipeFormatVersion": "2020-01-25", "ComponentName": "{PUB}", "ComponentVersion": "{version}", '
        f'"ComponentConfiguration": {{"DefaultConfiguration": {{"interval": {interval}}}}}, '
        '"Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "true"}}]}'
    ).encode()


def test_component_versions_round_trip(cloud: tuple[ControlPlane, Any]) -> None:
    _, gg = cloud
    created = gg.create_component_version(inlineRecipe=recipe("1.0.0"))
    arn = created["arn"]
    assert arn == f"arn:aws:greengrass:eu-west-1:123456789012:components:{PUB}:versions:1.0.0"
    assert gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE"
    assert b'"interval": 5' in gg.get_component(arn=arn, recipeOutputFormat="JSON")["recipe"]
    assert b"interval: 5" in gg.get_component(arn=arn, recipeOutputFormat="YAML")["recipe"]
    for version in ("1.0.1", "1.0.2"):
        gg.create_component_version(inlineRecipe=recipe(version))
    pages = list(
        gg.get_paginator("list_component_versions").paginate(
            arn=components.component_arn("eu-west-1", "123456789012", PUB), PaginationConfig={"PageSize": 2}
        )
    )
    assert [v["componentVersion"] for p in pages for v in p["componentVersions"]] == ["1.0.2", "1.0.1", "1.0.0"]
    assert len(pages) == 2


def test_errors_are_the_services_own(cloud: tuple[ControlPlane, Any]) -> None:
    _, gg = cloud
    gg.create_component_version(inlineRecipe=recipe("1.0.0"))
    with pytest.raises(gg.exceptions.ConflictException) as conflict:
        gg.create_component_version(inlineRecipe=recipe("1.0.0"))
    assert conflict.value.response["resourceType"] == "COMPONENT_VERSION"
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.get_deployment(deploymentId="nope")
    with pytest.raises(gg.exceptions.ValidationException):
        gg.create_component_version(inlineRecipe=b"[not a recipe")
    with pytest.raises(gg.exceptions.ValidationException, match="does not exist"):
        gg.create_deployment(targetArn=GROUP, components={PUB: {"componentVersion": "9.9.9"}})


def test_client_tokens_make_creation_idempotent(cloud: tuple[ControlPlane, Any]) -> None:
    _, gg = cloud
    first = gg.create_component_version(inlineRecipe=recipe("1.0.0"), clientToken="t1")
    assert gg.create_component_version(inlineRecipe=recipe("1.0.0"), clientToken="t1")["arn"] == first["arn"]


def test_pipeline_registration_reuses_and_bumps_against_the_endpoint(cloud: tuple[ControlPlane, Any]) -> None:
    _, gg = cloud
    values = {"artifact_uri": "s3://bucket/artifacts/a/publisher.zip"}
    first = components.register(gg, "publisher", PUB, values, "eu-west-1", "123456789012")
    again = components.register(gg, "publisher", PUB, values, "eu-west-1", "123456789012")
    changed = components.register(
        gg, "publisher", PUB, {"artifact_uri": "s3://bucket/artifacts/b/publisher.zip"}, "eu-west-1", "123456789012"
    )
    assert (first.version, first.created) == ("1.0.0", True)
    assert (again.version, again.created) == ("1.0.0", False)
    assert (changed.version, changed.created) == ("1.0.1", True)


def test_deployments_and_a_device_rollout(cloud: tuple[ControlPlane, Any]) -> None:
    plane, gg = cloud
    gg.create_component_version(inlineRecipe=recipe("1.0.0"))
    plane.register_core_device("core-1", [GROUP])
    assert deployments.current(gg, GROUP) == (None, {})
    first = deployments.create(gg, GROUP, "edgeml", {PUB: {"componentVersion": "1.0.0"}}, deployments.Policies())
    assert deployments.current(gg, GROUP) == (first, {PUB: {"componentVersion": "1.0.0"}})
    assert plane.next_deployment("core-1")["deploymentId"] == first  # type: ignore[index]
    (device,) = rollout.snapshot(gg, GROUP, first, {PUB})
    assert device.execution == "QUEUED"
    plane.report(
        "core-1",
        first,
        "SUCCEEDED",
        installed=[{"componentName": PUB, "componentVersion": "1.0.0", "lifecycleState": "RUNNING"}],
    )
    (done,) = rollout.follow(gg, GROUP, first, {PUB}, timeout=5, on_update=lambda d: None, interval=0)
    assert (done.execution, done.components[PUB].state, done.health) == ("SUCCEEDED", "RUNNING", "HEALTHY")
    assert plane.next_deployment("core-1") is None

    gg.create_component_version(inlineRecipe=recipe("1.0.1", interval=1))
    second = deployments.create(gg, GROUP, "edgeml", {PUB: {"componentVersion": "1.0.1"}}, deployments.Policies())
    latest = gg.list_deployments(targetArn=GROUP, historyFilter="LATEST_ONLY")["deployments"]
    assert [d["deploymentId"] for d in latest] == [second]
    plane.report(
        "core-1",
        second,
        "FAILED",
        "FAILED_ROLLBACK_COMPLETE",
        installed=[{"componentName": PUB, "componentVersion": "1.0.1", "lifecycleState": "BROKEN"}],
    )
    with pytest.raises(
        rollout.RolloutError, match=f"core-1: deployment FAILED: FAILED_ROLLBACK_COMPLETE; {PUB} 1.0.1 is BROKEN"
    ):
        rollout.follow(gg, GROUP, second, {PUB}, timeout=5, on_update=lambda d: None, interval=0)
    assert gg.get_core_device(coreDeviceThingName="core-1")["status"] == "UNHEALTHY"
    assert gg.cancel_deployment(deploymentId=second)["message"]
    assert gg.get_deployment(deploymentId=second)["deploymentStatus"] == "CANCELED"


def test_deleted_versions_are_gone(cloud: tuple[ControlPlane, Any]) -> None:
    _, gg = cloud
    arn = gg.create_component_version(inlineRecipe=recipe("1.0.0"))["arn"]
    gg.delete_component(arn=arn)
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.describe_component(arn=arn)
    assert gg.list_components()["components"] == []
