"""localgg as a core device of the local cloud, reaching it only through the AWS APIs a core calls: it takes
its thing group's deployments from the IoT jobs data plane, resolves its components with
ResolveComponentCandidates, downloads `s3://` artifacts with the credentials its role alias gives it, applies
the deployment, rolls a failed one back, and reports with UpdateJobExecution and fleet status reports over
MQTT. The pipeline's own rollout follower reads the outcome through the greengrassv2 endpoint. moto (IoT, IAM,
STS, S3) and mosquitto are real servers here; nothing is mocked. moto enforces IAM as the stack runs it: the
device's S3 and ECR calls are checked against the token exchange role's policy, and every request to the
Greengrass endpoint must be signed with a key it knows."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from awsiot.greengrasscoreipc.model import ConfigurationValidityReport, ConfigurationValidityStatus
from botocore.exceptions import ClientError

from localcloud import installer, moto_aws
from localcloud.cloud import digests
from localcloud.credentials import SERVICE, CredentialsProvider
from localcloud.device import Connection, DeviceAgent
from localcloud.greengrassv2 import ControlPlane
from localcloud.identities import Identities, device_secret
from localcloud.server import Endpoint, serve
from localcloud.sigv4 import Guard
from localcloud.stack import FLEET_STATUS, fleet_status_receiver
from localgg.lifecycle import State
from localgg.mqtt import MqttBridge
from scripts.cloud import device as device_plan
from scripts.fleet import deployments, pacing, rollout
from tests.conftest import REPO, Run
from tests.localgg.harness import CoreThread
from tests.support.eventually import eventually
from tests.support.watch import watch

pytestmark = pytest.mark.slow  # moto and the Greengrass endpoint started per test

NAME = "com.example.Service"
ACCOUNT = "123456789012"  # moto's
ROOT = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
provider "aws" {
  region            = "eu-west-1"
  s3_use_path_style = true
}
module "device" {
  source              = "%(module)s"
  name_prefix         = "%(prefix)s"
  artifact_bucket_arn = "arn:aws:s3:::%(bucket)s"
  artifact_prefix     = "app"
  repository_arn      = "arn:aws:ecr:eu-west-1:%(account)s:repository/%(prefix)s"
  core_device_names   = ["test-thing"]
}
output "device" {
  value = module.device
}
"""


@dataclass(frozen=True)
class Applied:
    """What terraform/modules/token-exchange made for the device, as Terraform applied it."""

    bucket: str
    role: str
    role_alias: str
    thing_policy: str
    role_policy: str  # the role's inline policy document, as applied


@dataclass
class Fleet:
    plane: ControlPlane
    client: Any  # greengrassv2, as the pipeline uses it
    agent: DeviceAgent
    group: str
    s3: Any
    bucket: str
    iam: Any
    role: str
    owner_key: str
    watch: pacing.Watch  # the pipeline's rollout follower's clients


@pytest.fixture(scope="module")
def enforcing_moto(registry: str) -> Iterator[tuple[str, tuple[str, str]]]:
    """moto as the stack runs it: IAM enforced, driven by an owner's keys."""
    from localcloud import moto_aws
    from localcloud.registry import RegistryApi

    unbind = moto_aws.bind_ecr_to_registry(RegistryApi(registry))
    server, url = moto_aws.start(enforce_iam=True)
    yield url, moto_aws.owner(ACCOUNT, f"owner-{uuid.uuid4().hex[:8]}")
    server.stop()
    unbind()


@pytest.fixture(scope="module")
def applied(
    terraform: Run, enforcing_moto: tuple[str, tuple[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Applied:
    """terraform/modules/token-exchange applied with the real provider against the enforcing moto, with the owner's
    keys: the role and its policies (the installer's `<role>Access` name held), the role alias and the device's
    IoT policy, exactly as a stack has them: none of them is retyped here."""
    moto_endpoint, (key, secret) = enforcing_moto
    unique = uuid.uuid4().hex[:8]
    prefix, bucket = f"dev-{unique}", f"artifacts-{unique}"
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id=key, aws_secret_access_key=secret)
    session.client("s3", endpoint_url=moto_endpoint).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    root = tmp_path_factory.mktemp("device-root")
    module = REPO / "terraform" / "modules" / "token-exchange"
    (root / "main.tf").write_text(ROOT % {"module": module, "prefix": prefix, "bucket": bucket, "account": ACCOUNT})
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "eu-west-1",
        "TF_DATA_DIR": str(root / ".terraform"),
    }
    for command in (("init", "-input=false"), ("apply", "-auto-approve", "-input=false", "-no-color")):
        done = terraform(*command, cwd=root, env=env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    made = json.loads(terraform("output", "-json", cwd=root, env=env).stdout)["device"]["value"]
    return Applied(
        bucket, made["role_name"], made["role_alias_name"], made["iot_policy_names"]["test-thing"],
        made["role_policy_json"],
    )  # fmt: skip


@pytest.fixture
def fleet(
    gg: CoreThread,
    enforcing_moto: tuple[str, tuple[str, str]],
    mosquitto: tuple[str, int],
    applied: Applied,
) -> Iterator[Fleet]:
    moto_endpoint, (key, secret) = enforcing_moto
    unique = uuid.uuid4().hex[:8]
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id=key, aws_secret_access_key=secret)
    iot, iam, s3 = (session.client(s, endpoint_url=moto_endpoint) for s in ("iot", "iam", "s3"))
    bucket = applied.bucket
    # The device joins as `make device` has the installer do it (localcloud.installer): a certificate of its own and
    # the stack's thing policy, role and alias. Terraform's group has properties, so the installer's bare
    # CreateThingGroup answers ResourceAlreadyExists and the group is reused (DeviceProvisioningHelper.addThingToGroup).
    iot.create_thing_group(
        thingGroupName=f"group-{unique}", thingGroupProperties={"thingGroupDescription": "made by Terraform"}
    )
    flags = installer.parser().parse_args(
        ["--aws-region", "eu-west-1", "--thing-name", "test-thing", "--thing-group-name", f"group-{unique}",
         "--thing-policy-name", applied.thing_policy, "--tes-role-name", applied.role,
         "--tes-role-alias-name", applied.role_alias, "--provision", "true"]
    )  # fmt: skip
    identity, private_key, _ = installer.provision(iot, iam, flags, say=lambda line: None)

    plane = ControlPlane(members=moto_aws.iot_members(ACCOUNT, "eu-west-1"), artifact_digest=digests(s3))
    identities = Identities({key: secret}, moto_aws.certificates(ACCOUNT, "eu-west-1"))
    endpoint = Endpoint(plane, CredentialsProvider(iot, moto_aws.service_assumer(ACCOUNT, SERVICE)), None, identities)
    moto_aws.bind_iot_jobs(endpoint.invoke)
    server, url = serve(endpoint, guard=Guard(identities.secret, "eu-west-1"))
    listener = MqttBridge(*mosquitto, f"cloud-{unique}", gg.loop)
    listener.connect()
    listener.subscribe(FLEET_STATUS, 1, fleet_status_receiver(plane))
    device_mqtt = MqttBridge(*mosquitto, f"test-thing-{unique}", gg.loop)
    device_mqtt.connect()
    client = session.client("greengrassv2", endpoint_url=url)

    async def make() -> DeviceAgent:
        return DeviceAgent(
            gg.core,
            Connection(
                url,
                url,
                moto_endpoint,
                identity.role_alias,
                "eu-west-1",
                (identity.certificate_id, device_secret(private_key)),
            ),
            device_mqtt.publish,
            registry_login=lambda *a: None,
            workdir=gg.root / "device",
            settle_timeout=10,
        )

    group = iot.describe_thing_group(thingGroupName=f"group-{unique}")["thingGroupArn"]
    yield Fleet(
        plane, client, gg.call(make()), group, s3, bucket, iam, applied.role, key, watch(session, moto_endpoint, url)
    )
    iot.remove_thing_from_thing_group(thingGroupName=f"group-{unique}", thingName="test-thing")
    # A test may have narrowed the role: the next one starts from the policy Terraform applied.
    iam.put_role_policy(RoleName=applied.role, PolicyName="least-privilege", PolicyDocument=applied.role_policy)
    device_mqtt.close()
    listener.close()
    server.shutdown()


def version(
    fleet: Fleet, number: str, run: str, artifacts: list[dict[str, Any]] | None = None, install: str | None = None
) -> None:
    lifecycle = {"Run": run, **({"Install": install} if install else {})}
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": NAME,
        "ComponentVersion": number,
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": lifecycle, "Artifacts": artifacts or []}],
    }
    fleet.client.create_component_version(inlineRecipe=json.dumps(recipe).encode())


def deploy(gg: CoreThread, fleet: Fleet, number: str, on_failure: str = "ROLLBACK") -> tuple[str, str | None]:
    policies = deployments.Policies().deployment_policies() | {"failureHandlingPolicy": on_failure}
    deployment = fleet.client.create_deployment(
        targetArn=fleet.group, components={NAME: {"componentVersion": number}}, deploymentPolicies=policies
    )["deploymentId"]
    outcome = gg.call(fleet.agent.poll_once(), timeout=60)
    return deployment, outcome


def follow(fleet: Fleet, deployment: str) -> rollout.Device:
    """The pipeline's follower, given time for the fleet status report to cross the broker."""
    view = rollout.follow(fleet.watch, fleet.group, deployment, {NAME}, timeout=10, on_update=print, interval=0.1)
    (device,) = view.devices
    return device


def test_a_deployment_is_applied_with_its_artifact_and_reported(gg: CoreThread, fleet: Fleet) -> None:
    """The artifact comes from S3 with the role alias's credentials (the nucleus's S3 downloader through the
    token exchange service); the device is a core device once its first fleet status report arrives."""
    fleet.s3.put_object(Bucket=fleet.bucket, Key="app/greeting.txt", Body=b"hello from s3\n")
    version(
        fleet,
        "1.0.0",
        "cat {artifacts:path}/greeting.txt; exec sleep 300",
        [{"URI": f"s3://{fleet.bucket}/app/greeting.txt"}],
    )
    deployment, outcome = deploy(gg, fleet, "1.0.0")
    assert outcome == "SUCCEEDED"
    device = follow(fleet, deployment)
    assert (device.execution, device.components[NAME].version, device.components[NAME].state) == (
        "SUCCEEDED",
        "1.0.0",
        "RUNNING",
    )
    installed = fleet.client.list_installed_components(coreDeviceThingName="test-thing")["installedComponents"]
    assert {c["componentName"] for c in installed} == {NAME, "aws.greengrass.Nucleus"}
    core = fleet.client.get_core_device(coreDeviceThingName="test-thing")
    assert (core["platform"], core["status"]) == ("linux", "HEALTHY")
    log = gg.root / "core" / "logs" / f"{NAME}.log"
    eventually(lambda: "hello from s3" in (log.read_text() if log.exists() else ""), 10, what="hello from s3")
    assert gg.call(fleet.agent.poll_once()) is None  # nothing new to do
    # A core device's status time moves when it reports (a fleet status message), not when it polls.
    assert (
        fleet.client.get_core_device(coreDeviceThingName="test-thing")["lastStatusUpdateTimestamp"]
        == core["lastStatusUpdateTimestamp"]
    )


def test_an_artifact_that_cannot_be_had_fails_the_deployment_without_touching_the_device(
    gg: CoreThread, fleet: Fleet
) -> None:
    """The nucleus reports FAILED_NO_STATE_CHANGE when a deployment fails while it prepares (download errors
    included), and what ran before runs on."""
    version(fleet, "1.0.0", "exec sleep 300")
    deploy(gg, fleet, "1.0.0")
    fleet.s3.put_object(Bucket=fleet.bucket, Key="app/gone.zip", Body=b"zip")
    version(fleet, "1.0.1", "exec sleep 300", [{"URI": f"s3://{fleet.bucket}/app/gone.zip"}])
    fleet.s3.delete_object(Bucket=fleet.bucket, Key="app/gone.zip")  # after the service read it
    deployment, outcome = deploy(gg, fleet, "1.0.1")
    assert outcome == "FAILED"
    assert gg.core.recipes[NAME].version == "1.0.0"
    with pytest.raises(rollout.RolloutError, match=r"FAILED_NO_STATE_CHANGE: .*NoSuchKey"):
        follow(fleet, deployment)


def test_an_artifact_replaced_after_its_version_was_made_is_refused(gg: CoreThread, fleet: Fleet) -> None:
    """The service computed the artifact's digest when the version was created and serves it in the recipe; the
    nucleus checks what it downloads against it (ArtifactDownloader: ARTIFACT_CHECKSUM_MISMATCH) and keeps nothing
    of an object someone replaced since: the deployment fails before anything changes."""
    version(fleet, "1.0.0", "exec sleep 300")
    deploy(gg, fleet, "1.0.0")
    fleet.s3.put_object(Bucket=fleet.bucket, Key="app/run.sh", Body=b"echo the reviewed release\n")
    version(fleet, "1.0.1", "sh {artifacts:path}/run.sh; exec sleep 300", [{"URI": f"s3://{fleet.bucket}/app/run.sh"}])
    fleet.s3.put_object(Bucket=fleet.bucket, Key="app/run.sh", Body=b"echo something else\n")
    deployment, outcome = deploy(gg, fleet, "1.0.1")
    assert outcome == "FAILED"
    assert gg.core.recipes[NAME].version == "1.0.0"
    with pytest.raises(rollout.RolloutError, match=r"FAILED_NO_STATE_CHANGE: .*integrity check failed"):
        follow(fleet, deployment)
    (effective,) = [
        d
        for d in fleet.client.list_effective_deployments(coreDeviceThingName="test-thing")["effectiveDeployments"]
        if d["deploymentId"] == deployment
    ]
    assert effective["statusDetails"]["errorStack"][-1] == "ARTIFACT_CHECKSUM_MISMATCH"
    assert not (gg.root / "device" / "artifacts" / NAME / "1.0.1" / "run.sh").exists()


def test_a_role_without_get_bucket_location_fails_the_download_with_the_nucleus_code(
    gg: CoreThread, fleet: Fleet
) -> None:
    """The nucleus's S3 downloader calls GetBucketLocation before GetObject and, refused, fails the deployment with
    S3_GET_BUCKET_LOCATION_ACCESS_DENIED (developer guide, "Detailed deployment error codes"; device-service-role's
    minimal token exchange policy has the permission). moto evaluates the role's policy for the credentials the
    role alias gave the device: the same artifact downloads once the permission is back."""
    fleet.s3.put_object(Bucket=fleet.bucket, Key="app/greeting.txt", Body=b"hello\n")
    artifact = [{"URI": f"s3://{fleet.bucket}/app/greeting.txt"}]
    applied = fleet.iam.get_role_policy(RoleName=fleet.role, PolicyName="least-privilege")["PolicyDocument"]
    without = [s for s in applied["Statement"] if "s3:GetBucketLocation" not in s["Action"]]
    assert len(without) == len(applied["Statement"]) - 1
    fleet.iam.put_role_policy(
        RoleName=fleet.role, PolicyName="least-privilege", PolicyDocument=json.dumps({**applied, "Statement": without})
    )
    version(fleet, "1.0.0", "exec sleep 300", artifact)
    deployment, outcome = deploy(gg, fleet, "1.0.0")
    assert outcome == "FAILED"
    with pytest.raises(rollout.RolloutError, match=r"FAILED_NO_STATE_CHANGE: .*GetBucketLocation failed: AccessDenied"):
        follow(fleet, deployment)
    (effective,) = fleet.client.list_effective_deployments(coreDeviceThingName="test-thing")["effectiveDeployments"]
    assert effective["statusDetails"]["errorStack"][-1] == "S3_GET_BUCKET_LOCATION_ACCESS_DENIED"
    assert "PERMISSION_ERROR" in effective["statusDetails"]["errorTypes"]
    assert NAME not in gg.core.recipes

    fleet.iam.put_role_policy(RoleName=fleet.role, PolicyName="least-privilege", PolicyDocument=json.dumps(applied))
    version(fleet, "1.0.1", "exec sleep 300", artifact)
    assert deploy(gg, fleet, "1.0.1")[1] == "SUCCEEDED"


def test_the_greengrass_endpoint_answers_only_signed_loopback_requests(fleet: Fleet) -> None:
    """Only a caller with one of the stack's keys gets in (SigV4, as AWS checks it); a Host that is not loopback
    (a web page that rebound its own name) and an oversized body are refused before anything is read."""
    url = fleet.client.meta.endpoint_url
    assert fleet.client.list_components()["components"] is not None
    stranger = boto3.client(
        "greengrassv2", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with pytest.raises(ClientError, match="UnrecognizedClient"):
        stranger.list_components()
    forged = boto3.client(
        "greengrassv2",
        region_name="eu-west-1",
        endpoint_url=url,
        aws_access_key_id=fleet.owner_key,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError, match="InvalidSignature"):
        forged.list_components()
    host = url.removeprefix("http://")
    for headers, status in (({"Host": "evil.example"}, 403), ({"Host": host, "Content-Length": str(64 << 20)}, 413)):
        connection = http.client.HTTPConnection(host, timeout=10)
        connection.putrequest("POST", "/greengrass/v2/components", skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        assert connection.getresponse().status == status
        connection.close()


@pytest.mark.core_error(r"deployment FAILED: com\.example\.Service is BROKEN")
@pytest.mark.parametrize(
    ("policy", "running_after", "status"),
    [("ROLLBACK", "1.0.0", "FAILED_ROLLBACK_COMPLETE"), ("DO_NOTHING", "1.0.1", "FAILED_ROLLBACK_NOT_REQUESTED")],
)
def test_a_failing_deployment_follows_its_failure_policy_and_is_reported(
    gg: CoreThread, fleet: Fleet, policy: str, running_after: str, status: str
) -> None:
    """A component whose Install fails never runs: it is BROKEN after its retries, whenever the nucleus looks.
    (A Run that exits at once can be caught RUNNING by one of the merger's looks, a second apart, and the
    deployment then holds on a real core too: the next test.)"""
    version(fleet, "1.0.0", "exec sleep 300")
    deploy(gg, fleet, "1.0.0")
    version(fleet, "1.0.1", "exec sleep 300", install="echo broken >&2; exit 3")
    deployment, outcome = deploy(gg, fleet, "1.0.1", policy)
    assert outcome == "FAILED"
    assert gg.core.recipes[NAME].version == running_after
    with pytest.raises(rollout.RolloutError) as caught:
        follow(fleet, deployment)
    head, device_line = str(caught.value).splitlines()[:2]
    assert head.startswith(f"deployment {deployment}: 1 of 1 devices failed")
    assert device_line.startswith(f"test-thing: deployment FAILED: {status}: ")
    message = str(caught.value)
    assert f"{NAME} 1.0.1" in message  # the component that failed, named


@pytest.mark.core_error(r"deployment FAILED: com\.example\.Service is BROKEN")
def test_a_component_that_dies_after_the_merger_looked_is_a_success_then_broken(gg: CoreThread, fleet: Fleet) -> None:
    """DeploymentConfigMerger.waitForServicesToStart: the deployment holds at the first look (right after the merge,
    then once a second) that finds every component RUNNING; there is no window for it to stay so. A Run that dies
    three seconds in is RUNNING at a look, so the deployment SUCCEEDED, and the component is BROKEN afterwards:
    what the fleet status then reports, and the tooling's health window catches (scripts.fleet.health)."""
    version(fleet, "1.0.0", "sleep 3; exit 3")
    deployment, outcome = deploy(gg, fleet, "1.0.0")
    assert outcome == "SUCCEEDED"
    assert gg.call(gg.core.components[NAME].wait_for(State.BROKEN, timeout=30)) is State.BROKEN
    assert follow(fleet, deployment).execution == "SUCCEEDED"


def test_a_component_that_errors_once_is_reported_at_once_and_stays_unhealthy(gg: CoreThread, fleet: Fleet) -> None:
    """FleetStatusService.handleServiceStateChange: a component that goes ERRORED is reported at once, alone in a
    PARTIAL report carrying the whole device's status; the restart that follows sends nothing, so the cloud shows
    the device UNHEALTHY until its next report (a deployment, or the daily cadence), however briefly it erred."""
    # It errs once told to (the file `err` in its work folder), not after a delay a loaded machine may outlast.
    version(fleet, "1.0.0", "test -e erred || { until test -e err; do sleep 0.05; done; touch erred; exit 1; }; "
            "exec sleep 300")  # fmt: skip
    deployment, outcome = deploy(gg, fleet, "1.0.0")
    assert outcome == "SUCCEEDED"
    # The deployment's report crosses the broker after the job's update: the device is HEALTHY once it is in.
    assert follow(fleet, deployment).health == "HEALTHY"
    (gg.core.root / "work" / NAME / "err").touch()

    def recovered() -> bool:
        component = gg.core.components[NAME]
        return component.errors == 1 and component.state is State.RUNNING

    eventually(lambda: gg.call(asyncio.sleep(0, recovered())), timeout=30, what="the component erred and ran again")

    def reported_unhealthy() -> list[dict[str, Any]]:
        if fleet.client.get_core_device(coreDeviceThingName="test-thing")["status"] != "UNHEALTHY":
            return []
        listed: list[dict[str, Any]] = fleet.client.list_installed_components(coreDeviceThingName="test-thing")[
            "installedComponents"
        ]
        return listed

    installed = eventually(reported_unhealthy, what="the device reported UNHEALTHY")
    assert {c["componentName"]: c["lifecycleState"] for c in installed}[NAME] == "ERRORED"


def test_the_agent_loop_picks_deployments_up_by_itself(gg: CoreThread, fleet: Fleet) -> None:
    task = asyncio.run_coroutine_threadsafe(fleet.agent.run(interval=0.1), gg.loop)
    try:
        # Its first fleet status report, sent as it starts.
        eventually(lambda: "test-thing" in fleet.plane.devices, 10, what="the device reported")
        version(fleet, "2.0.0", "exec sleep 300")
        deployment = deployments.create(
            fleet.client, fleet.group, "edgeml", {NAME: {"componentVersion": "2.0.0"}}, deployments.Policies(), None
        )
        view = rollout.follow(fleet.watch, fleet.group, deployment, {NAME}, timeout=30, on_update=print, interval=0.2)
        (device,) = view.devices
        assert device.execution == "SUCCEEDED"
    finally:
        task.cancel()


def test_a_configuration_the_component_rejects_fails_the_deployment_with_no_state_change(
    gg: CoreThread, fleet: Fleet
) -> None:
    """DynamicComponentConfigurationValidator: a running component that keeps its version is asked to validate
    the configuration a cloud deployment brings; its REJECTED report fails the deployment as
    FAILED_NO_STATE_CHANGE (error code COMPONENT_CONFIGURATION_NOT_VALID) and nothing is rolled back or
    restarted. The component's side is the real SDK client, connected with the component's own token."""
    version(fleet, "1.0.0", "exec sleep 300")
    deploy(gg, fleet, "1.0.0")
    ipc = gg.client(NAME)

    def validate(event: Any) -> None:
        proposal = event.validate_configuration_update_event
        report = ConfigurationValidityReport(
            status=ConfigurationValidityStatus.REJECTED, deployment_id=proposal.deployment_id, message="too high"
        )
        ipc.send_configuration_validity_report(configuration_validity_report=report)

    ipc.subscribe_to_validate_configuration_updates(on_stream_event=validate)
    started = gg.core.components[NAME]
    deployment = fleet.client.create_deployment(
        targetArn=fleet.group,
        components={NAME: {"componentVersion": "1.0.0", "configurationUpdate": {"merge": '{"threshold": 50}'}}},
        deploymentPolicies=deployments.Policies().deployment_policies(),
    )["deploymentId"]
    assert gg.call(fleet.agent.poll_once(), timeout=60) == "FAILED"
    assert gg.core.components[NAME] is started and gg.core.config.tree(NAME) == {}
    with pytest.raises(rollout.RolloutError) as caught:
        follow(fleet, deployment)
    assert "FAILED_NO_STATE_CHANGE" in str(caught.value) and "too high" in str(caught.value)
    effective = fleet.client.list_effective_deployments(coreDeviceThingName="test-thing")["effectiveDeployments"]
    (entry,) = [e for e in effective if e["deploymentId"] == deployment]
    assert entry["statusDetails"]["errorStack"] == ["DEPLOYMENT_FAILURE", "COMPONENT_CONFIGURATION_NOT_VALID"]


def _installer_as(
    moto_endpoint: str, owner: tuple[str, str], policy: dict[str, Any], plan: device_plan.Plan
) -> tuple[Any, Any]:
    """An IAM user holding only `policy`, and the installer's IoT and IAM clients signing as it."""
    key, secret = owner
    iam = boto3.client(
        "iam", region_name="eu-west-1", endpoint_url=moto_endpoint, aws_access_key_id=key, aws_secret_access_key=secret
    )
    user = f"installer-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="installer", PolicyDocument=json.dumps(policy))
    made = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.Session(
        region_name=plan.region, aws_access_key_id=made["AccessKeyId"], aws_secret_access_key=made["SecretAccessKey"]
    )
    return session.client("iot", endpoint_url=moto_endpoint), session.client("iam", endpoint_url=moto_endpoint)


def test_the_installer_needs_exactly_the_policy_make_device_prints(
    enforcing_moto: tuple[str, tuple[str, str]], applied: Applied
) -> None:
    """`--provision true` as DeviceProvisioningHelper makes its calls (localcloud.installer), signed by an identity
    holding only the policy `make device` prints: it provisions the thing. Without any one statement it stops at
    the call that statement allows, AccessDenied naming the action. The resources are checked as IAM checks them
    for AWS IoT (Service Authorization Reference; localcloud.iot_resources): this thing, this group, this stack's
    policies and alias; iot:CreatePolicy is not granted at all, since Terraform holds both policies it attaches."""
    moto_endpoint, owner = enforcing_moto
    group = f"group-{uuid.uuid4().hex[:8]}"
    owners = boto3.client(
        "iot", region_name="eu-west-1", endpoint_url=moto_endpoint, aws_access_key_id=owner[0],
        aws_secret_access_key=owner[1],
    )  # fmt: skip
    owners.create_thing_group(thingGroupName=group, thingGroupProperties={"thingGroupDescription": "Terraform's"})

    def plan(thing: str) -> device_plan.Plan:
        return device_plan.Plan(
            thing, "eu-west-1", ACCOUNT, group, applied.thing_policy, applied.role, applied.role_alias, "d", "c"
        )

    def provision(thing: str, policy: dict[str, Any]) -> None:
        iot, iam = _installer_as(moto_endpoint, owner, policy, plan(thing))
        flags = installer.parser().parse_args(plan(thing).installer_args())
        installer.provision(iot, iam, flags, say=lambda line: None)

    whole = plan("pi-whole").installer_policy()
    provision("pi-whole", whole)
    assert owners.list_things_in_thing_group(thingGroupName=group)["things"] == ["pi-whole"]
    for index, statement in enumerate(whole["Statement"]):
        thing = f"pi-{index}"
        policy = plan(thing).installer_policy()
        del policy["Statement"][index]
        with pytest.raises(ClientError) as refused:
            provision(thing, policy)
        assert refused.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
        denied = refused.value.response["Error"]["Message"]
        assert any(action in denied for action in statement["Action"]), (statement["Sid"], denied)
