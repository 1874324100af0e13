"""ECR's registry endpoint in the local cloud (localcloud.ecr_front) holds each registry call to the IAM identity that
got the token it carries, as ECR does. From the ECR User Guide and API reference:
- "Private registry authentication": the token GetAuthorizationToken returns is used as the password of the user
  `AWS`, is valid for 12 hours, and gives access to what the caller's IAM permissions allow;
- "Pushing a Docker image" and the API reference of each layer action: a push needs ecr:BatchCheckLayerAvailability,
  InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload and PutImage; a pull needs BatchGetImage and
  GetDownloadUrlForLayer, on the repository's ARN (Service Authorization Reference, Amazon ECR);
- a push to a repository that was never created is refused (NAME_UNKNOWN): ECR does not create repositories on push;
- a refusal names the identity and the action: "User: <arn> is not authorized to perform: <action> on resource:
  <arn>"."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from localcloud import registry as local_registry
from localcloud.cloud import Cloud, running
from localcloud.ecr_front import Call, call_of
from localcloud.registry import MANIFEST_TYPES
from tests.conftest import machine_command
from tests.support.registry import push_manifest

pytestmark = pytest.mark.slow  # a local cloud and a registry
REGION, ACCOUNT = "eu-west-1", "123456789012"
PUSH = ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload", "ecr:PutImage"]  # fmt: skip
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("HEAD", "/v2/edgeml/subscriber/manifests/img-1", Call("ecr:BatchGetImage", "edgeml/subscriber")),
        ("GET", f"/v2/edgeml/subscriber/manifests/{DIGEST}", Call("ecr:BatchGetImage", "edgeml/subscriber")),
        ("PUT", "/v2/app/manifests/img-1", Call("ecr:PutImage", "app")),
        ("DELETE", f"/v2/app/manifests/{DIGEST}", Call("ecr:BatchDeleteImage", "app")),
        ("GET", "/v2/app/tags/list", Call("ecr:ListImages", "app")),
        ("HEAD", f"/v2/a/b/c/blobs/{DIGEST}", Call("ecr:BatchCheckLayerAvailability", "a/b/c")),
        ("GET", f"/v2/app/blobs/{DIGEST}", Call("ecr:GetDownloadUrlForLayer", "app")),
        ("POST", "/v2/app/blobs/uploads/", Call("ecr:InitiateLayerUpload", "app")),
        ("PATCH", "/v2/app/blobs/uploads/0d2c-11", Call("ecr:UploadLayerPart", "app")),
        ("PUT", "/v2/app/blobs/uploads/0d2c-11", Call("ecr:CompleteLayerUpload", "app")),
        ("GET", "/v2/_catalog", None),  # ECR serves no catalog
        ("DELETE", f"/v2/app/blobs/{DIGEST}", None),  # nor deletes a layer
        ("GET", "/v2/../secret/manifests/x", None),
    ],
)
def test_each_registry_call_is_the_ecr_action_that_authorizes_it(method: str, path: str, expected: Call | None) -> None:
    assert call_of(method, path) == expected


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    machine_command("docker-registry")
    password = secrets.token_urlsafe(32)
    server, backend = local_registry.start(tmp_path / "registry", password=password)
    try:
        with running(REGION, {}, registry=backend, registry_password=password) as local:
            yield local
    finally:
        server.terminate()
        server.wait(timeout=10)


def user(cloud: Cloud, *statements: dict[str, Any]) -> tuple[str, Any]:
    """A new IAM user holding only `statements`: its name and an ECR client signing as it."""
    iam = cloud.client("iam")
    name = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    allow(cloud, name, *statements)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    session = boto3.Session(
        region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    return name, session.client("ecr", endpoint_url=cloud.aws)


def allow(cloud: Cloud, name: str, *statements: dict[str, Any]) -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}
    cloud.client("iam").put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(document))


def token(ecr: Any) -> str:
    (data,) = ecr.get_authorization_token()["authorizationData"]
    return str(data["authorizationToken"])


def answer(url: str, method: str = "GET", token: str | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Accept": MANIFEST_TYPES, **({"Authorization": f"Basic {token}"} if token else {})}
    request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), {}
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, dict(exc.headers), json.loads(body) if body else {}


def test_a_push_goes_through_with_the_push_actions_and_lands_where_ecr_lists_it(cloud: Cloud) -> None:
    ecr, app = cloud.client("ecr"), f"team/app-{uuid.uuid4().hex[:6]}"
    uri = ecr.create_repository(repositoryName=app)["repository"]["repositoryUri"]
    host = uri.split("/", 1)[0]
    assert host == cloud.registry
    _, pusher = user(cloud, {"Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                     {"Action": PUSH, "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{app}"})  # fmt: skip
    (data,) = pusher.get_authorization_token()["authorizationData"]
    assert data["proxyEndpoint"] == f"http://{host}"
    assert base64.b64decode(data["authorizationToken"]).decode().startswith("AWS:")
    digest = push_manifest(host, app, "v1", data["authorizationToken"])
    assert ecr.list_images(repositoryName=app)["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]


def test_a_caller_without_an_action_is_refused_that_call_naming_itself_and_the_action(cloud: Cloud) -> None:
    """A puller may read the image, not start an upload; the refusal is ECR's words, then its policy grows and the
    same token may: policies are read at each call, not when the token was made."""
    ecr, app = cloud.client("ecr"), f"app-{uuid.uuid4().hex[:6]}"
    host = ecr.create_repository(repositoryName=app)["repository"]["repositoryUri"].split("/", 1)[0]
    push_manifest(host, app, "v1", token(ecr))  # as the owner
    arn = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{app}"
    name, puller = user(cloud, {"Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                        {"Action": PULL, "Resource": arn})  # fmt: skip
    held = token(puller)
    status, _, _ = answer(f"http://{host}/v2/{app}/manifests/v1", "HEAD", held)
    assert status == 200
    status, _, body = answer(f"http://{host}/v2/{app}/blobs/uploads/", "POST", held)
    assert status == 403
    (error,) = body["errors"]
    assert error["code"] == "DENIED"
    assert error["message"].startswith(f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized to perform: "
                                       f"ecr:InitiateLayerUpload on resource: {arn}")  # fmt: skip
    allow(
        cloud, name, {"Action": "ecr:GetAuthorizationToken", "Resource": "*"}, {"Action": PULL + PUSH, "Resource": arn}
    )
    push_manifest(host, app, "v2", held)
    allow(cloud, name, {"Action": "ecr:GetAuthorizationToken", "Resource": "*"})
    assert answer(f"http://{host}/v2/{app}/manifests/v1", "GET", held)[0] == 403


def test_another_repository_is_not_the_callers(cloud: Cloud) -> None:
    """Allowed on one repository's ARN, refused on its neighbour's."""
    ecr, unique = cloud.client("ecr"), uuid.uuid4().hex[:6]
    mine, theirs = f"mine-{unique}", f"theirs-{unique}"
    for name in (mine, theirs):
        host = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"].split("/", 1)[0]
        push_manifest(host, name, "v1", token(ecr))
    _, puller = user(cloud, {"Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                     {"Action": PULL, "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{mine}"})  # fmt: skip
    held = token(puller)
    assert answer(f"http://{host}/v2/{mine}/manifests/v1", "GET", held)[0] == 200
    status, _, body = answer(f"http://{host}/v2/{theirs}/manifests/v1", "GET", held)
    assert status == 403 and "ecr:BatchGetImage" in body["errors"][0]["message"]


def test_no_token_a_wrong_one_an_unknown_repository_and_the_catalog(cloud: Cloud) -> None:
    ecr, app = cloud.client("ecr"), f"app-{uuid.uuid4().hex[:6]}"
    host = ecr.create_repository(repositoryName=app)["repository"]["repositoryUri"].split("/", 1)[0]
    status, headers, _ = answer(f"http://{host}/v2/")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic realm=")  # docker login's challenge
    assert answer(f"http://{host}/v2/", token=token(ecr))[0] == 200
    forged = base64.b64encode(b"AWS:" + secrets.token_urlsafe(48).encode()).decode()
    assert answer(f"http://{host}/v2/{app}/tags/list", token=forged)[0] == 401
    status, _, body = answer(f"http://{host}/v2/nothere/blobs/uploads/", "POST", token(ecr))
    assert status == 404 and body["errors"][0]["code"] == "NAME_UNKNOWN"
    assert "nothere" in body["errors"][0]["message"]
    assert "nothere" not in {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}  # not made
    assert answer(f"http://{host}/v2/_catalog", token=token(ecr))[0] == 405


def test_the_registry_behind_answers_only_the_stack(cloud: Cloud, tmp_path: Path) -> None:
    """ECR's tokens open the front, not the registry it forwards to: the front is the only way in."""
    ecr = cloud.client("ecr")
    backend = yaml.safe_load((tmp_path / "registry" / "config.yml").read_text())["http"]["addr"]
    status, _, _ = answer(f"http://{backend}/v2/", token=token(ecr))
    assert status == 401
