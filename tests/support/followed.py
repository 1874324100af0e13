"""The calls the rollout follower (scripts.fleet.rollout) makes to follow a deployment to one device that succeeds, as
botocore Stubber responses: greengrassv2's on `gg`, IoT's job operations on `iot`."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber


def expect_one_device_succeeds(
    gg: Stubber,
    iot: Stubber,
    group_arn: str,
    deployment: str,
    name: str,
    installed: dict[str, str],
    health_checked: bool = True,
) -> None:
    """`health_checked`: then the health watch (scripts/fleet/health.py) looks once, and finds no device unhealthy."""
    job, thing = f"job-{deployment}", "core-1"
    region, account = group_arn.split(":")[3:5]
    gg.add_response("get_deployment", {"deploymentId": deployment, "iotJobId": job}, {"deploymentId": deployment})
    group = group_arn.rsplit("/", 1)[-1]
    iot.add_response("list_things_in_thing_group", {"things": [thing]}, {"thingGroupName": group, "maxResults": 250})
    cores = {"coreDevices": [{"coreDeviceThingName": thing, "status": "HEALTHY"}]}
    gg.add_response("list_core_devices", cores, {"thingGroupArn": group_arn})  # which of the things joined
    iot.add_response(
        "describe_job",
        {"job": {"jobId": job, "status": "IN_PROGRESS", "jobProcessDetails": {"numberOfSucceededThings": 1}}},
        {"jobId": job},
    )
    execution = {
        "thingArn": f"arn:aws:iot:{region}:{account}:thing/{thing}",
        "jobExecutionSummary": {"status": "SUCCEEDED"},
    }
    iot.add_response(
        "list_job_executions_for_job", {"executionSummaries": [execution]}, {"jobId": job, "maxResults": 250}
    )
    gg.add_response("list_core_devices", cores, {"thingGroupArn": group_arn, "maxResults": 100})
    # Finished, in a small group: every device once in detail.
    gg.add_response("list_core_devices", cores, {"thingGroupArn": group_arn})
    effective: dict[str, Any] = {
        "deploymentId": deployment,
        "deploymentName": name,
        "targetArn": group_arn,
        "coreDeviceExecutionStatus": "SUCCEEDED",
        "creationTimestamp": 0,
        "modifiedTimestamp": 0,
    }
    gg.add_response("list_effective_deployments", {"effectiveDeployments": [effective]}, {"coreDeviceThingName": thing})
    components = [
        {"componentName": component, "componentVersion": version, "lifecycleState": "RUNNING"}
        for component, version in installed.items()
    ]
    gg.add_response("list_installed_components", {"installedComponents": components}, {"coreDeviceThingName": thing})
    if health_checked:
        gg.add_response("list_core_devices", {"coreDevices": []}, {"thingGroupArn": group_arn, "status": "UNHEALTHY"})
