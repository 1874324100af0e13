"""Image push: ECR token login against a real local registry standing in for ECR, digest pinning, push errors."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import docker
import pytest

from scripts import aws
from scripts.publishing import registry as reg

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@pytest.fixture(scope="module")
def ecr(moto_endpoint: str) -> object:
    return boto3.client(
        "ecr",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def served_manifest(registry: str, repository: str, reference: str) -> dict[str, Any]:
    """What the registry serves for `reference` to a client that accepts manifest lists (the Registry HTTP API)."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        headers={"Accept": f"{MANIFEST_LIST}, application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        document: dict[str, Any] = json.load(answer)
    return document


def test_push_pins_the_index_by_the_digest_the_registry_serves(
    docker_client: docker.DockerClient, ecr: object, registry: str, subscriber_image: str
) -> None:
    repository = f"{registry}/edgeml/subscriber"
    credentials = reg.login(docker_client, ecr, repository)
    pinned = reg.push_index([subscriber_image], repository, "v1", credentials, lambda message: None)
    assert pinned.startswith(f"{repository}@sha256:")
    index = served_manifest(registry, "edgeml/subscriber", pinned.split("@", 1)[1])
    assert index["mediaType"] == MANIFEST_LIST
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64"]
    pulled = docker_client.images.pull(pinned)  # a Docker engine resolves the index to its own platform
    assert pulled.attrs["Architecture"] == "amd64"
    again = reg.push_index([subscriber_image], repository, "v1-again", credentials, lambda message: None)
    assert again == pinned  # the same images make the same index, whatever its tag


def test_a_failed_push_is_an_error_not_silence(subscriber_image: str) -> None:
    with pytest.raises(reg.PushError, match=r"push of 127\.0\.0\.1:1/edgeml/subscriber:v1 failed"):
        reg.push_index([subscriber_image], "127.0.0.1:1/edgeml/subscriber", "v1", ("AWS", "x"), lambda message: None)


def test_aws_errors_become_one_clear_message() -> None:
    from botocore.exceptions import ClientError, NoCredentialsError

    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetAuthorizationToken"
    )
    assert "get a token: access denied (AccessDeniedException): not allowed" in str(aws.explain("get a token", denied))
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "ListDeployments")
    assert "still throttled after 8 attempts" in str(aws.explain("list", throttled))
    missing = ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "PutObject")
    assert "terraform apply" in str(aws.explain("upload", missing))
    assert "no AWS credentials found" in str(aws.explain("x", NoCredentialsError()))
