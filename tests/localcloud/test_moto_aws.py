"""What localcloud/moto_aws.py changes in moto, each against moto as a real endpoint: policy conditions as
IAM evaluates them, and ECR's image operations acting on the real registry that `docker push` writes to."""

from __future__ import annotations

import json
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
