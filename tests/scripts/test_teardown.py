"""Teardown: our components off the devices first, then versions, S3 object versions, ECR images and Terraform,
against the local cloud over HTTP (moto for S3, ECR and IoT with the images in a real registry, the Greengrass
endpoint), with a hollow core device in the group taking the deployments (localcloud.hollow)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud.cloud import Cloud, running
from localcloud.hollow import Faults, HollowFleet, ScaledClock
from scripts import product
from scripts.fleet import deployments, teardown
from tests.support.outputs import stack_outputs
from tests.support.registry import push_manifest
from tests.support.watch import watch

REGION, ACCOUNT = "eu-west-1", "123456789012"
GROUP = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/edgeml-cores"
PUB, SUB, MODEL, OTHER = product.DEFAULT.publisher, product.DEFAULT.subscriber, product.DEFAULT.model, "com.other.Team"


@dataclasses.dataclass
class Stack:
    cloud: Cloud
    group: str
    s3: Any
    ecr: Any
    gg: Any
    iot: Any
    bucket: str
    repository: str
    repository_url: str


@pytest.fixture
def stack(registry: str) -> Iterator[Stack]:
    """A deployed stack: its bucket (two versions of an artifact, and an object not ours), its image, its
    component versions and another team's, deployed together to a group whose one device took it."""
    unique = uuid.uuid4().hex[:8]
    with running(REGION, {}, registry=registry) as cloud:
        s3, ecr, gg, iot = (cloud.client(s) for s in ("s3", "ecr", "greengrassv2", "iot"))
        bucket, repository = f"td-{unique}", f"td-{unique}/subscriber"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for body in (b"v1", b"v2"):
            s3.put_object(Bucket=bucket, Key="artifacts/com.x/abc/publisher.zip", Body=body)
        s3.put_object(Bucket=bucket, Key="elsewhere/keep.txt", Body=b"not ours")
        uri = ecr.create_repository(repositoryName=repository)["repository"]["repositoryUri"]
        assert uri == f"{registry}/{repository}"  # ECR names the local registry
        push_manifest(registry, repository, "img-1")
        group = iot.create_thing_group(thingGroupName=f"td-{unique}")["thingGroupArn"]
        clock = ScaledClock(30.0)  # the hollow device takes its deployments this much faster
        hollow = HollowFleet(cloud.plane, [f"td-{unique}-core"], Faults(), clock)
        cloud.plane.jobs.notify = hollow.notified
        hollow.start()
        try:
            assert hollow.provision(iot, f"td-{unique}")
            wanted = {}
            for name, versions in ((PUB, ["1.0.0", "1.0.1"]), (SUB, ["1.0.0"]), (MODEL, ["1.0.0"]), (OTHER, ["3.0.0"])):
                for version in versions:
                    recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": name, "ComponentVersion": version,
                              "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "app"}}]}  # fmt: skip
                    gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
                wanted[name] = {"componentVersion": versions[-1]}
            deployments.create(gg, group, "edgeml", wanted, deployments.Policies(rollout="all"), None)
            yield Stack(cloud, group, s3, ecr, gg, iot, bucket, repository, uri)
        finally:
            hollow.stop()
            with contextlib.suppress(Exception):
                ecr.delete_repository(repositoryName=repository, force=True)


def test_teardown_removes_ours_keeps_others_and_ends_with_terraform(stack: Stack) -> None:
    outputs = stack_outputs(REGION, ACCOUNT, stack.repository_url, stack.bucket, stack.group)
    order: list[str] = []

    def terraform_destroy() -> None:
        order.append("terraform destroy")
        assert stack.s3.list_object_versions(Bucket=stack.bucket, Prefix="artifacts/").get("Versions") is None
        assert stack.ecr.list_images(repositoryName=stack.repository)["imageIds"] == []

    session = boto3.Session(
        region_name=REGION, aws_access_key_id=stack.cloud.owner[0], aws_secret_access_key=stack.cloud.owner[1]
    )
    result = teardown.destroy(
        outputs,
        stack.gg,
        watch(session, stack.cloud.aws, stack.cloud.greengrass),
        stack.s3,
        stack.ecr,
        lambda message: None,
        lambda devices: None,
        terraform_destroy,
        timeout=120,
        interval=0.2,
    )
    assert order == ["terraform destroy"]
    assert result.record() == {
        "deployment": result.deployment,
        "artifact_versions_deleted": 2,
        "images_deleted": 1,
        "component_versions_deleted": [f"{PUB} 1.0.1", f"{PUB} 1.0.0", f"{SUB} 1.0.0", f"{MODEL} 1.0.0"],
    }
    # The group keeps the other team's component, and only it; the device took that deployment.
    assert result.deployment is not None
    assert stack.gg.get_deployment(deploymentId=result.deployment)["components"] == {
        OTHER: {"componentVersion": "3.0.0"}
    }
    assert [c["componentName"] for c in stack.gg.list_components()["components"]] == [OTHER]
    assert [v["Key"] for v in stack.s3.list_object_versions(Bucket=stack.bucket)["Versions"]] == ["elsewhere/keep.txt"]


def test_what_the_installer_made_is_found_named_and_removed_and_terraforms_own_is_kept(moto_endpoint: str) -> None:
    """`--provision true` leaves on the stack's thing a certificate of its own, attached to Terraform's thing policy
    and to `GreengrassTESCertificatePolicy<alias>`, which Terraform also holds (DeviceProvisioningHelper reuses it):
    Terraform's DeleteThing and DeletePolicy would then answer DeleteConflict. The installer here is
    localcloud.installer, which makes those calls."""
    from localcloud import installer

    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    iot, iam = session.client("iot", endpoint_url=moto_endpoint), session.client("iam", endpoint_url=moto_endpoint)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "credentials.iot.amazonaws.com"}}]}  # fmt: skip
    role = iam.create_role(RoleName="td-tes", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iot.create_role_alias(roleAlias="td-alias", roleArn=role)
    for policy in ("td-core-pi", "GreengrassTESCertificatePolicytd-alias"):  # Terraform's
        iot.create_policy(policyName=policy, policyDocument='{"Version":"2012-10-17","Statement":[]}')
    iot.create_thing(thingName="pi")
    # Terraform's own certificate, issued from a CSR, on the same thing: it stays for Terraform to delete.
    kept = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="pi", principal=kept["certificateArn"])
    flags = installer.parser().parse_args(
        ["--aws-region", REGION, "--thing-name", "pi", "--thing-policy-name", "td-core-pi", "--tes-role-name", "td-tes",
         "--tes-role-alias-name", "td-alias", "--provision", "true"]
    )  # fmt: skip
    installer.provision(iot, iam, flags, say=lambda line: None)
    outputs = stack_outputs(REGION, ACCOUNT, "x/td", "td-bucket", GROUP)
    outputs = dataclasses.replace(
        outputs, role_alias="td-alias", iot_policy_names={"pi": "td-core-pi"},
        certificate_pems={"pi": kept["certificatePem"]},
    )  # fmt: skip

    made = teardown.installer_made(iot, outputs)
    assert list(made.certificates) == ["pi"] and len(made.certificates["pi"]) == 1
    assert made.names() == [f"certificate {made.certificates['pi'][0].rsplit('/', 1)[-1][:12]}... of pi"]
    said: list[str] = []
    teardown.remove_installer_made(iot, made, said.append)
    assert iot.list_thing_principals(thingName="pi")["principals"] == [kept["certificateArn"]]
    for policy in ("td-core-pi", "GreengrassTESCertificatePolicytd-alias"):  # detached, left for Terraform
        assert iot.list_targets_for_policy(policyName=policy)["targets"] == []
        assert iot.get_policy(policyName=policy)["policyName"] == policy
    assert said and "installer" in said[0]
    assert teardown.installer_made(iot, outputs) == teardown.InstallerMade()
