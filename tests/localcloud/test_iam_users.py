"""IAM users of the local cloud are held to their identity policies on every endpoint, by resource where AWS checks
one, and what was allowed is recorded. Each rule is AWS's:
- Greengrass V2 actions are `greengrass:<Operation>`, and CreateDeployment also needs the IoT actions a deployment
  is made of (Service Authorization Reference, AWS IoT Greengrass V2: its dependent actions);
- ECR's repository actions act on the repository's ARN (Service Authorization Reference, Amazon ECR);
- deleting object versions with DeleteObjects needs s3:DeleteObjectVersion (S3 API reference, DeleteObjects,
  "Permissions");
- a refusal names the action: "User: <arn> is not authorized to perform: <action>"."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from localcloud.cloud import Cloud, running
from scripts.aws import AwsError
from scripts.fleet import teardown

pytestmark = pytest.mark.slow  # a local cloud per test
REGION, ACCOUNT = "eu-west-1", "123456789012"


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with running(REGION, {}) as local:
        yield local


def user(cloud: Cloud, *statements: dict[str, Any]) -> tuple[str, boto3.Session]:
    """A new IAM user holding only `statements`: its ARN and a session signing as it."""
    iam = cloud.client("iam")
    name = f"u-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    session = boto3.Session(
        region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    return arn, session


def refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**params)
    assert error.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    return str(error.value.response["Error"]["Message"])


def test_a_user_may_call_the_greengrass_actions_its_policy_allows_and_no_other(cloud: Cloud) -> None:
    arn, session = user(cloud, {"Action": ["greengrass:ListComponents"], "Resource": "*"})
    gg = session.client("greengrassv2", endpoint_url=cloud.greengrass)
    assert gg.list_components()["components"] == []
    assert refused(gg.list_core_devices) == f"User: {arn} is not authorized to perform: greengrass:ListCoreDevices"


def test_create_deployment_needs_the_iot_actions_a_deployment_is_made_of(cloud: Cloud) -> None:
    cloud.client("iot").create_thing_group(thingGroupName="g")
    group = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/g"
    arn, session = user(cloud, {"Action": ["greengrass:CreateDeployment"], "Resource": "*"})
    gg = session.client("greengrassv2", endpoint_url=cloud.greengrass)
    message = refused(gg.create_deployment, targetArn=group, components={})
    assert message.startswith(f"User: {arn} is not authorized to perform: iot:")
    assert cloud.client("greengrassv2").list_deployments()["deployments"] == []


def test_ecr_actions_are_checked_against_the_repository(cloud: Cloud) -> None:
    ecr = cloud.client("ecr")
    mine, other = (f"r-{uuid.uuid4().hex[:6]}/{name}" for name in ("mine", "other"))
    for name in (mine, other):
        ecr.create_repository(repositoryName=name)
    allowed = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{mine}"
    _, session = user(cloud, {"Action": ["ecr:ListImages"], "Resource": [allowed]})
    theirs = session.client("ecr", endpoint_url=cloud.aws)
    assert theirs.list_images(repositoryName=mine)["imageIds"] == []
    assert "ecr:ListImages" in refused(theirs.list_images, repositoryName=other)


def test_deleting_object_versions_needs_delete_object_version(cloud: Cloud) -> None:
    """DeleteObjects answers 200 and lists each key it could not delete (S3 API reference, DeleteObjects: "Errors");
    the teardown reads that list and fails naming the permission instead of counting the versions as gone."""
    s3 = cloud.client("s3")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key="artifacts/k", Body=b"v")["VersionId"]
    objects = {"Objects": [{"Key": "artifacts/k", "VersionId": version}]}
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    _, only_delete = user(cloud, {"Action": ["s3:DeleteObject", "s3:ListBucketVersions"], "Resource": resources})
    client = only_delete.client("s3", endpoint_url=cloud.aws)
    answer = client.delete_objects(Bucket=bucket, Delete=objects)
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("artifacts/k", "AccessDenied")]
    with pytest.raises(AwsError, match=r"1 of 1 object versions not deleted .*needs s3:DeleteObjectVersion"):
        teardown.purge_artifacts(client, bucket, "artifacts")
    _, versions = user(cloud, {"Action": ["s3:DeleteObjectVersion", "s3:ListBucketVersions"], "Resource": resources})
    assert teardown.purge_artifacts(versions.client("s3", endpoint_url=cloud.aws), bucket, "artifacts") == 1
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)


def test_an_iam_user_cannot_take_a_devices_credentials(cloud: Cloud) -> None:
    """The IoT credentials provider authenticates a device's X.509 certificate over mutual TLS (developer guide,
    authorizing-direct-aws): IAM keys get nothing from it, whatever their policy allows."""
    iot, iam = cloud.client("iot"), cloud.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "credentials.iot.amazonaws.com"}}]}  # fmt: skip
    role = iam.create_role(RoleName=f"r-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))
    alias = f"a-{uuid.uuid4().hex[:8]}"
    iot.create_role_alias(roleAlias=alias, roleArn=role["Role"]["Arn"])
    _, session = user(cloud, {"Action": ["iot:AssumeRoleWithCertificate", "sts:AssumeRole"], "Resource": "*"})
    url = f"{cloud.greengrass}/role-aliases/{alias}/credentials"
    request = AWSRequest("GET", url, headers={"x-amzn-iot-thingname": "t"})
    SigV4Auth(session.get_credentials(), "iot", REGION).add_auth(request)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers.items())), timeout=30)
    assert refused.value.code == 403
    assert b"X.509 certificate" in refused.value.read()
