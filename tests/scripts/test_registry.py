"""Image push: ECR token login against a real local registry standing in for ECR, digest pinning, push errors."""

from __future__ import annotations

import boto3
import docker
import pytest

from scripts import aws
from scripts import registry as reg

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def ecr(moto_endpoint: str) -> object:
    return boto3.client(
        "ecr",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_push_pins_the_image_by_the_digest_the_registry_serves(
    docker_client: docker.DockerClient, ecr: object, registry: str, reference_image: str
) -> None:
    repository = f"{registry}/edgeml/subscriber"
    reg.login(docker_client, ecr, repository)
    layers: list[str] = []
    pinned = reg.push(docker_client, reference_image, repository, "v1", layers.append)
    assert pinned.startswith(f"{repository}@sha256:")
    assert layers, "push progress is reported per layer"
    pulled = docker_client.images.pull(pinned)
    assert pinned in pulled.attrs["RepoDigests"]
    again = reg.push(docker_client, reference_image, repository, "v1-again", lambda message: None)
    assert again == pinned  # the same image has the same digest, whatever its tag


def test_a_failed_push_is_an_error_not_silence(docker_client: docker.DockerClient, reference_image: str) -> None:
    with pytest.raises(reg.PushError, match=r"push of 127\.0\.0\.1:1/edgeml/subscriber:v1 failed"):
        reg.push(docker_client, reference_image, "127.0.0.1:1/edgeml/subscriber", "v1", lambda message: None)


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
