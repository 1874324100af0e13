"""The local greengrassv2 service as a real HTTP endpoint: boto3 parses every reply against the real service
model, errors arrive as the service's exception classes, and the pipeline's own modules (component
registration, deployments, rollout) run against it unchanged, with no Stubber. A device's side is played with
the jobs data plane client and fleet status reports, as a core sends them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import boto3
import pytest

from localcloud.cloud import running
from localcloud.greengrassv2 import ControlPlane
from scripts.fleet import deployments, rollout, teardown
from scripts.publishing import components
from tests.support.outputs import stack_outputs
from tests.support.watch import watch

pytestmark = pytest.mark.slow  # moto and the Greengrass endpoint

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
PUB = "com.edgeml.WineQualityPublisher"


@pytest.fixture
def cloud() -> Iterator[tuple[ControlPlane, Any]]:
    """The local cloud's services (moto for IoT and S3, the Greengrass endpoint), with core-1 in the group and the
    artifacts the tests' recipes name in S3."""
    with running("eu-west-1", {}) as local:
        iot = local.client("iot")
        for thing in ("core-1", "other-thing"):
            with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
                iot.create_thing(thingName=thing)
        with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_thing_group(thingGroupName=GROUP.rsplit("/", 1)[-1])
        iot.add_thing_to_thing_group(thingGroupName=GROUP.rsplit("/", 1)[-1], thingName="core-1")
        s3 = local.client("s3")  # the service checks that a version's artifacts exist
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for key in ("artifacts/a/publisher.zip", "artifacts/b/publisher.zip"):
            s3.put_object(Bucket="bucket", Key=key, Body=b"zip")
        client = local.client("greengrassv2")
        client.meta.jobs = local.client("iot-jobs-data")
        session = boto3.Session(
            region_name="eu-west-1", aws_access_key_id=local.owner[0], aws_secret_access_key=local.owner[1]
        )
        client.meta.watch = watch(session, local.aws, local.greengrass)
        yield local.plane, client


def fleet_status(plane: ControlPlane, *components: tuple[str, str, str]) -> None:
    """What arrives on `$aws/things/core-1/greengrassv2/health/json` (the nucleus's FleetStatusDetails)."""
    broken = any(state in ("ERRORED", "BROKEN") for _, _, state in components)
    plane.fleet_status(
        "core-1",
        {
            "ggcVersion": "2.14.0",
            "platform": "linux",
            "architecture": "amd64",
            "thing": "core-1",
            "overallDeviceStatus": "UNHEALTHY" if broken else "HEALTHY",
            "sequenceNumber": 1,
            "timestamp": 1_700_000_000_000,
            "messageType": "COMPLETE",
            "trigger": "THING_GROUP_DEPLOYMENT",
            "components": [{"componentName": n, "version": v, "status": s, "isRoot": True} for n, v, s in components],
        },
    )


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
    components.wait_deployable(gg, arn, attempts=10)
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


def test_deployments_are_jobs_that_a_device_takes_and_reports(cloud: tuple[ControlPlane, Any]) -> None:
    """A deployment is an IoT job on its target (developer guide, "Deploy AWS IoT Greengrass components to
    devices"); the core takes it through the jobs data plane and reports with UpdateJobExecution and its
    status details (the nucleus's DeploymentService: `detailed-deployment-status`, `deployment-failure-cause`)."""
    plane, gg = cloud
    jobs = gg.meta.jobs
    gg.create_component_version(inlineRecipe=recipe("1.0.0"))
    fleet_status(plane)
    assert deployments.current(gg, GROUP) == (None, {})
    first = deployments.create(gg, GROUP, "edgeml", {PUB: {"componentVersion": "1.0.0"}}, deployments.Policies(), None)
    assert deployments.current(gg, GROUP) == (first, {PUB: {"componentVersion": "1.0.0"}})
    assert gg.get_deployment(deploymentId=first)["iotJobId"] == first
    (device,) = rollout.snapshot(gg.meta.watch, GROUP, first, {PUB})
    assert device.execution == "QUEUED"
    assert jobs.start_next_pending_job_execution(thingName="other-thing") == {"ResponseMetadata": ANY}
    execution = jobs.start_next_pending_job_execution(thingName="core-1")["execution"]
    document = json.loads(execution["jobDocument"])
    assert (execution["jobId"], execution["status"]) == (first, "IN_PROGRESS")
    assert document["components"] == {PUB: {"version": "1.0.0"}}
    assert document["failureHandlingPolicy"] == "ROLLBACK"
    jobs.update_job_execution(
        jobId=first, thingName="core-1", status="SUCCEEDED", statusDetails={"detailed-deployment-status": "SUCCESSFUL"}
    )
    fleet_status(plane, (PUB, "1.0.0", "RUNNING"))
    (done,) = rollout.follow(gg.meta.watch, GROUP, first, {PUB}, timeout=5, on_update=print, interval=0).devices
    assert (done.execution, done.components[PUB].state, done.health) == ("SUCCEEDED", "RUNNING", "HEALTHY")
    assert jobs.get_pending_job_executions(thingName="core-1")["queuedJobs"] == []
    with pytest.raises(jobs.exceptions.InvalidStateTransitionException):
        jobs.update_job_execution(jobId=first, thingName="core-1", status="IN_PROGRESS")

    gg.create_component_version(inlineRecipe=recipe("1.0.1", interval=1))
    second = deployments.create(
        gg, GROUP, "edgeml", {PUB: {"componentVersion": "1.0.1"}}, deployments.Policies(), first
    )
    latest = gg.list_deployments(targetArn=GROUP, historyFilter="LATEST_ONLY")["deployments"]
    assert [d["deploymentId"] for d in latest] == [second]
    assert gg.get_deployment(deploymentId=first)["deploymentStatus"] == "INACTIVE"
    assert jobs.start_next_pending_job_execution(thingName="core-1")["execution"]["jobId"] == second
    jobs.update_job_execution(
        jobId=second,
        thingName="core-1",
        status="FAILED",
        statusDetails={
            "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
            "deployment-failure-cause": f"{PUB} 1.0.1 is BROKEN",
        },
    )
    fleet_status(plane, (PUB, "1.0.1", "BROKEN"))
    with pytest.raises(
        rollout.RolloutError, match=f"core-1: deployment FAILED: FAILED_ROLLBACK_COMPLETE: {PUB} 1.0.1 is BROKEN"
    ):
        rollout.follow(gg.meta.watch, GROUP, second, {PUB}, timeout=5, on_update=print, interval=0)
    assert gg.get_core_device(coreDeviceThingName="core-1")["status"] == "UNHEALTHY"
    assert gg.cancel_deployment(deploymentId=second)["message"]
    assert gg.get_deployment(deploymentId=second)["deploymentStatus"] == "CANCELED"


def test_going_back_to_an_earlier_desired_state_is_a_new_deployment(cloud: tuple[ControlPlane, Any]) -> None:
    """CreateDeployment (API reference, clientToken): an idempotency token answers with the first deployment made
    with it for 8 hours. Deploying 1.0.0, then 1.0.1, then 1.0.0 again must create a third deployment, so the
    token covers the deployment being replaced; a retry of the same request still gets the same deployment."""
    _, gg = cloud
    for version in ("1.0.0", "1.0.1"):
        gg.create_component_version(inlineRecipe=recipe(version))
    made = []
    for version in ("1.0.0", "1.0.1", "1.0.0"):
        replaced, _ = deployments.current(gg, GROUP)
        made.append(
            deployments.create(
                gg, GROUP, "edgeml", {PUB: {"componentVersion": version}}, deployments.Policies(), replaced
            )
        )
        assert deployments.current(gg, GROUP) == (made[-1], {PUB: {"componentVersion": version}})
    assert len(set(made)) == 3
    again = deployments.create(
        gg, GROUP, "edgeml", {PUB: {"componentVersion": "1.0.0"}}, deployments.Policies(), made[1]
    )
    assert again == made[2]


def test_a_replaced_deployment_never_reaches_a_device_that_had_not_taken_it(cloud: tuple[ControlPlane, Any]) -> None:
    """The service cancels the job of the deployment that a new one replaces: its queued executions are
    canceled, and a device that asks afterwards gets only the new one."""
    plane, gg = cloud
    jobs = gg.meta.jobs
    for version in ("1.0.0", "1.0.1"):
        gg.create_component_version(inlineRecipe=recipe(version))
    fleet_status(plane)
    gg.create_deployment(targetArn=GROUP, components={PUB: {"componentVersion": "1.0.0"}})
    second = gg.create_deployment(targetArn=GROUP, components={PUB: {"componentVersion": "1.0.1"}})["deploymentId"]
    pending = jobs.get_pending_job_executions(thingName="core-1")
    assert [j["jobId"] for j in pending["queuedJobs"]] == [second]
    assert pending["inProgressJobs"] == []


def test_resolve_component_candidates_picks_the_greatest_fitting_version(cloud: tuple[ControlPlane, Any]) -> None:
    """ResolveComponentCandidates (API reference): the version that meets every requirement for the platform;
    the recipe comes with it. Requirements are npm-style ranges, as in the recipe format's dependencies."""
    _, gg = cloud
    for version in ("1.0.0", "1.2.0", "2.0.0"):
        gg.create_component_version(inlineRecipe=recipe(version))
    arm_only = json.loads(recipe("1.3.0"))
    arm_only["Manifests"][0]["Platform"] = {"os": "linux", "architecture": "aarch64"}
    gg.create_component_version(inlineRecipe=json.dumps(arm_only).encode())
    amd64 = {"name": "linux", "attributes": {"os": "linux", "architecture": "amd64"}}

    def resolve(requirement: str, platform: dict[str, Any] = amd64) -> str:
        (found,) = gg.resolve_component_candidates(
            platform=platform,
            componentCandidates=[{"componentName": PUB, "versionRequirements": {"group": requirement}}],
        )["resolvedComponentVersions"]
        assert json.loads(found["recipe"])["ComponentVersion"] == found["componentVersion"]
        return str(found["componentVersion"])

    assert resolve("^1.0.0") == "1.2.0"
    assert resolve(">=1.0.0 <3.0.0") == "2.0.0"
    assert resolve("=1.0.0") == "1.0.0"
    assert resolve("^1.0.0", {"name": "linux", "attributes": {"os": "linux", "architecture": "aarch64"}}) == "1.3.0"
    with pytest.raises(gg.exceptions.ResourceNotFoundException, match="architecture=amd64"):
        resolve("=1.3.0")


def test_deleted_versions_are_gone(cloud: tuple[ControlPlane, Any]) -> None:
    _, gg = cloud
    arn = gg.create_component_version(inlineRecipe=recipe("1.0.0"))["arn"]
    gg.delete_component(arn=arn)
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.describe_component(arn=arn)
    assert gg.list_components()["components"] == []


def test_two_stacks_in_one_account_keep_to_their_own_components(cloud: tuple[ControlPlane, Any]) -> None:
    """Component names are account-wide (a component ARN holds only region, account and name), so each stack's
    names carry its `component_namespace`: registering and tearing down one stack never lists, reuses or deletes
    the other's versions."""
    _, gg = cloud
    values = {"artifact_uri": "s3://bucket/artifacts/a/publisher.zip"}
    stacks = {
        prefix: stack_outputs(
            "eu-west-1", "123456789012", "registry/r", "bucket", GROUP.replace("edgeml", prefix), f"com.{prefix}"
        )
        for prefix in ("alpha", "beta")
    }
    for outputs in stacks.values():
        registered = components.register(
            gg, "publisher", outputs.components.publisher, values, "eu-west-1", "123456789012"
        )
        assert (registered.version, registered.created) == ("1.0.0", True)  # beta did not reuse alpha's version
    assert teardown.delete_component_versions(gg, stacks["alpha"]) == ["com.alpha.WineQualityPublisher 1.0.0"]
    assert [c["componentName"] for c in gg.list_components()["components"]] == ["com.beta.WineQualityPublisher"]
