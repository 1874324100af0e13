"""What localcloud/moto_aws.py changes in moto, each against moto as a real endpoint: policy conditions as
IAM evaluates them, and ECR's image operations acting on the real registry that `docker push` writes to."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from localcloud import moto_aws
from tests.support.registry import push_manifest

REGION = "eu-west-1"
DENY_WITHOUT_TLS = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, PermissionResult.NEUTRAL),  # the key is absent: the condition is false, the statement does not apply
        ({"aws:SecureTransport": "true"}, PermissionResult.NEUTRAL),
        ({"aws:SecureTransport": "false"}, PermissionResult.DENIED),
    ],
)
def test_a_deny_applies_only_when_its_condition_holds(context: dict[str, str], expected: PermissionResult) -> None:
    moto_aws.install_condition_semantics()
    statement = IAMPolicyStatement(DENY_WITHOUT_TLS)
    assert statement.is_action_permitted("s3:GetObject", "arn:aws:s3:::b/k", None, context) is expected


def test_a_tls_only_bucket_policy_lets_requests_through(moto_endpoint: str) -> None:
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket="tls-only", CreateBucketConfiguration={"LocationConstraint": REGION})
    statement = {**DENY_WITHOUT_TLS, "Resource": ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"]}
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    try:
        s3.put_object(Bucket="tls-only", Key="k", Body=b"v")
        assert s3.head_object(Bucket="tls-only", Key="k")["ContentLength"] == 1
    finally:
        s3.delete_object(Bucket="tls-only", Key="k")
        s3.delete_bucket(Bucket="tls-only")


def test_ecr_images_are_the_registrys(moto_endpoint: str, registry: str) -> None:
    ecr = client("ecr", moto_endpoint)
    uri = ecr.create_repository(repositoryName="bound/app")["repository"]["repositoryUri"]
    assert uri == f"{registry}/bound/app"
    first, second = push_manifest(registry, "bound/app", "one"), push_manifest(registry, "bound/app", "one-again")
    assert first == second  # the same manifest under two tags
    assert sorted(i["imageTag"] for i in ecr.list_images(repositoryName="bound/app")["imageIds"]) == [
        "one",
        "one-again",
    ]
    with pytest.raises(ecr.exceptions.RepositoryNotEmptyException):
        ecr.delete_repository(repositoryName="bound/app")
    missing = ecr.batch_delete_image(repositoryName="bound/app", imageIds=[{"imageTag": "nope"}])
    assert [f["failureCode"] for f in missing["failures"]] == ["ImageNotFound"]
    deleted = ecr.batch_delete_image(repositoryName="bound/app", imageIds=[{"imageDigest": first}])
    assert [i["imageDigest"] for i in deleted["imageIds"]] == [first]
    assert ecr.list_images(repositoryName="bound/app")["imageIds"] == []  # deleting the manifest drops its tags
    ecr.delete_repository(repositoryName="bound/app")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.list_images(repositoryName="bound/app")


def test_force_deleting_a_repository_deletes_its_images(moto_endpoint: str, registry: str) -> None:
    ecr = client("ecr", moto_endpoint)
    ecr.create_repository(repositoryName="bound/forced")
    push_manifest(registry, "bound/forced", "v1")
    ecr.delete_repository(repositoryName="bound/forced", force=True)
    ecr.create_repository(repositoryName="bound/forced")
    try:
        assert ecr.list_images(repositoryName="bound/forced")["imageIds"] == []
    finally:
        ecr.delete_repository(repositoryName="bound/forced")


@pytest.fixture(scope="module")
def enforcing() -> Iterator[tuple[str, Any]]:
    """An enforcing server and an owner's IAM client on it."""
    server, url = moto_aws.start(enforce_iam=True)
    key, secret = moto_aws.owner("123456789012", "enforcing-owner")
    yield (
        url,
        boto3.client("iam", region_name=REGION, endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=secret),
    )
    server.stop()


def user_with(enforcing: tuple[str, Any], user: str, statements: list[dict[str, Any]]) -> boto3.Session:
    _, iam = enforcing
    iam.create_user(UserName=user)
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=document)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return boto3.Session(
        region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )


def test_head_bucket_is_checked_as_list_bucket(enforcing: tuple[str, Any]) -> None:
    """The S3 API reference (HeadBucket, Permissions): "you must have permissions to perform the s3:ListBucket
    action". moto's own name for it, `s3:HeadBucket`, is no IAM action, so a policy written for AWS was refused."""
    url, _ = enforcing
    everything = user_with(enforcing, "bucket-maker", [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    everything.client("s3", endpoint_url=url).create_bucket(
        Bucket="head-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    allowed = {}
    for user, action in (("lister", "s3:ListBucket"), ("locator", "s3:GetBucketLocation")):
        statement = {"Effect": "Allow", "Action": action, "Resource": "arn:aws:s3:::head-bucket"}
        s3 = user_with(enforcing, user, [statement]).client("s3", endpoint_url=url)
        try:
            s3.head_bucket(Bucket="head-bucket")
            allowed[user] = True
        except s3.exceptions.ClientError as exc:
            allowed[user] = exc.response["Error"]["Code"] != "403"
    assert allowed == {"lister": True, "locator": False}


@pytest.mark.parametrize(
    ("service", "call", "code"),
    [
        ("ecr", lambda c: c.describe_repositories(), "AccessDeniedException"),  # awsJson1_1
        ("iot", lambda c: c.list_things(), "AccessDeniedException"),  # restJson1
        ("kms", lambda c: c.list_keys(), "AccessDeniedException"),  # awsJson1_1
        ("iam", lambda c: c.list_roles(), "AccessDenied"),  # awsQuery
    ],
)
def test_a_refusal_comes_in_the_services_own_protocol(
    enforcing: tuple[str, Any], service: str, call: Callable[[Any], Any], code: str
) -> None:
    """Each service's error shape (the AWS protocols' specifications: JSON services send `__type` in a JSON body,
    query services `ErrorResponse/Error` XML), read by botocore's strict parser for that protocol: moto's own
    query-style XML for every service left JSON clients with an undecodable body."""
    url, _ = enforcing
    session = user_with(enforcing, f"nothing-{service}", [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}])
    client = session.client(service, endpoint_url=url)
    with pytest.raises(client.exceptions.ClientError) as refused:
        call(client)
    error = refused.value.response
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) == (403, code)
    assert "is not authorized to perform" in error["Error"]["Message"]
