"""Teardown: our components off the devices first, then versions, S3 object versions, ECR images and Terraform.
S3 and the ECR API are moto as a real endpoint, its images in a real registry; greengrassv2 and IoT's job operations are
botocore's Stubber here (the control plane's own tests and the local cloud's cover it over HTTP)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from scripts import product
from scripts.fleet import pacing, teardown
from scripts.fleet.pacing import Pacer
from tests.support.followed import expect_one_device_succeeds
from tests.support.outputs import stack_outputs
from tests.support.registry import push_manifest

REGION, ACCOUNT = "eu-west-1", "123456789012"
GROUP = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/edgeml-cores"
PUB, SUB, MODEL, OTHER = product.DEFAULT.publisher, product.DEFAULT.subscriber, product.DEFAULT.model, "com.other.Team"


@pytest.fixture
def cloud(moto_endpoint: str, registry: str) -> Iterator[dict[str, Any]]:
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    s3, ecr = session.client("s3", endpoint_url=moto_endpoint), session.client("ecr", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="td-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket="td-bucket", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket="td-bucket", Key="artifacts/com.x/abc/publisher.zip", Body=body)
    s3.put_object(Bucket="td-bucket", Key="elsewhere/keep.txt", Body=b"not ours")
    uri = ecr.create_repository(repositoryName="td/subscriber")["repository"]["repositoryUri"]
    assert uri == f"{registry}/td/subscriber"  # ECR names the local registry
    digest = push_manifest(registry, "td/subscriber", "img-1")
    assert ecr.list_images(repositoryName="td/subscriber")["imageIds"] == [{"imageDigest": digest, "imageTag": "img-1"}]
    outputs = stack_outputs(REGION, ACCOUNT, uri, "td-bucket", GROUP)
    yield {"s3": s3, "ecr": ecr, "outputs": outputs}
    for version in s3.list_object_versions(Bucket="td-bucket").get("Versions", []):
        s3.delete_object(Bucket="td-bucket", Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket="td-bucket")
    ecr.delete_repository(repositoryName="td/subscriber", force=True)


def test_teardown_removes_ours_keeps_others_and_ends_with_terraform(cloud: dict[str, Any]) -> None:
    gg = boto3.client("greengrassv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    iot = boto3.client("iot", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub, iot_stub = Stubber(gg), Stubber(iot)
    stub.activate()
    iot_stub.activate()
    stub.add_response(
        "list_deployments",
        {"deployments": [{"deploymentId": "d-1", "isLatestForTarget": True}]},
        {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"},
    )
    stub.add_response(
        "get_deployment",
        {
            "components": {
                PUB: {"componentVersion": "1.0.1"},
                SUB: {"componentVersion": "1.0.0"},
                MODEL: {"componentVersion": "1.0.0", "configurationUpdate": {"reset": [""]}},
                OTHER: {"componentVersion": "3.0.0"},
            }
        },
        {"deploymentId": "d-1"},
    )
    stub.add_response(
        "create_deployment",
        {"deploymentId": "d-2"},
        {
            "targetArn": GROUP,
            "deploymentName": "edgeml-teardown",
            "components": {OTHER: {"componentVersion": "3.0.0"}},
            "deploymentPolicies": ANY,
            "iotJobConfiguration": ANY,
            "clientToken": ANY,
        },
    )
    expect_one_device_succeeds(stub, iot_stub, GROUP, "d-2", "edgeml-teardown", {}, health_checked=False)
    for name, versions in ((PUB, ["1.0.0", "1.0.1"]), (SUB, ["1.0.0"]), (MODEL, ["1.0.0"])):
        arn = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:{name}"
        stub.add_response(
            "list_component_versions",
            {
                "componentVersions": [
                    {"componentName": name, "componentVersion": v, "arn": f"{arn}:versions:{v}"} for v in versions
                ]
            },
            {"arn": arn},
        )
        for version in versions:
            stub.add_response("delete_component", {}, {"arn": f"{arn}:versions:{version}"})
    order: list[str] = []

    def terraform_destroy() -> None:
        order.append("terraform destroy")
        assert cloud["s3"].list_object_versions(Bucket="td-bucket", Prefix="artifacts/").get("Versions") is None
        assert cloud["ecr"].list_images(repositoryName="td/subscriber")["imageIds"] == []

    result = teardown.destroy(
        cloud["outputs"],
        gg,
        pacing.Watch(iot, gg, cloud["ecr"], Pacer(1000.0)),
        cloud["s3"],
        cloud["ecr"],
        lambda message: None,
        lambda devices: None,
        terraform_destroy,
        interval=0,
    )
    stub.assert_no_pending_responses()
    iot_stub.assert_no_pending_responses()
    assert order == ["terraform destroy"]
    assert result.record() == {
        "deployment": "d-2",
        "artifact_versions_deleted": 2,
        "images_deleted": 1,
        "component_versions_deleted": [f"{PUB} 1.0.0", f"{PUB} 1.0.1", f"{SUB} 1.0.0", f"{MODEL} 1.0.0"],
    }
    assert [v["Key"] for v in cloud["s3"].list_object_versions(Bucket="td-bucket")["Versions"]] == [
        "elsewhere/keep.txt"
    ]


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
