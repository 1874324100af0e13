"""The local greengrassv2 service against the real service's contract, as clients (GDK, the AWS CLI, boto3)
meet it: botocore's model for shapes and error codes, the API reference for semantics. Each test names the
page it follows; where the reference is silent, the test says what it assumes."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud.cloud import digests
from localcloud.greengrassv2 import ControlPlane
from localcloud.server import Endpoint, serve
from scripts.publishing import components

pytestmark = pytest.mark.slow  # moto and the Greengrass endpoint

REGION, ACCOUNT = "eu-west-1", "123456789012"


@pytest.fixture
def gg(moto_endpoint: str) -> Iterator[Any]:
    s3 = boto3.client(
        "s3", region_name=REGION, endpoint_url=moto_endpoint, aws_access_key_id="x", aws_secret_access_key="x"
    )
    server, url = serve(Endpoint(ControlPlane(REGION, ACCOUNT, artifact_digest=digests(s3))))
    client = boto3.client(
        "greengrassv2", region_name=REGION, endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    client.meta.s3 = s3
    yield client
    server.shutdown()


def recipe(name: str = "com.example.App", version: str = "1.0.0", **changes: Any) -> bytes:
    document: dict[str, Any] = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "true"}}],
    }
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return json.dumps(document).encode()


def arn(name: str) -> str:
    return components.component_arn(REGION, ACCOUNT, name)


def test_versions_of_a_component_never_published_are_an_empty_list(gg: Any) -> None:
    """ListComponentVersions: a component with no versions answers 200 and an empty list, which GDK's
    NEXT_PATCH relies on for a first publish (the reference lists no ResourceNotFound case for a new name)."""
    assert gg.list_component_versions(arn=arn(f"com.example.New{uuid.uuid4().hex[:6]}"))["componentVersions"] == []


def test_versions_are_listed_greatest_first(gg: Any) -> None:
    """ListComponentVersions: "Retrieves a paginated list of all versions for a component. Greater versions
    are listed first." ListComponents' latestVersion is the greatest too."""
    for version in ("1.0.10", "1.0.9", "1.0.2"):
        gg.create_component_version(inlineRecipe=recipe(version=version))
    pages = gg.get_paginator("list_component_versions").paginate(
        arn=arn("com.example.App"), PaginationConfig={"PageSize": 2}
    )
    assert [v["componentVersion"] for p in pages for v in p["componentVersions"]] == ["1.0.10", "1.0.9", "1.0.2"]
    (listed,) = gg.list_components()["components"]
    assert listed["latestVersion"]["componentVersion"] == "1.0.10"
    assert components.next_version(components.latest(gg, arn("com.example.App"))[0], "patch") == "1.0.11"  # type: ignore[index]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ComponentVersion": "1.0"}, "'1.0' is not a semantic version"),
        ({"RecipeFormatVersion": None}, "RecipeFormatVersion is required"),
        ({"Manifests": {"Platform": {"os": "linux"}}}, "Manifests must be a list"),
        ({"ComponentName": "my component"}, "ComponentName 'my component' may hold only"),
        ({"Manifests": [{"Lifecycle": {"Run": ["not", "a", "script"]}}]}, "Lifecycle.Run must be a script"),
        ({"ComponentDependencies": {"Lib": {"VersionRequirement": "newest"}}}, "not an npm-style range"),
    ],
)
def test_recipes_the_service_rejects_are_rejected(gg: Any, changes: dict[str, Any], message: str) -> None:
    """CreateComponentVersion: ValidationException for a recipe that breaks the recipe reference's rules, and
    nothing is stored (DescribeComponent and ListComponents stay clean, never a server error)."""
    with pytest.raises(gg.exceptions.ValidationException, match=message):
        gg.create_component_version(inlineRecipe=recipe(**changes))
    assert gg.list_components()["components"] == []


def test_an_s3_artifact_must_be_readable(gg: Any) -> None:
    """CreateComponentVersion: the service checks that it can read each s3:// artifact and answers
    "Specified artifact resource cannot be accessed" when it cannot."""
    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gg.meta.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    manifest = {"Platform": {"os": "linux"}, "Artifacts": [{"URI": f"s3://{bucket}/app.zip"}]}
    with pytest.raises(gg.exceptions.ValidationException, match="Specified artifact resource cannot be accessed"):
        gg.create_component_version(inlineRecipe=recipe(Manifests=[manifest]))
    gg.meta.s3.put_object(Bucket=bucket, Key="app.zip", Body=b"zip")
    created = gg.create_component_version(inlineRecipe=recipe(Manifests=[manifest]))
    assert created["componentVersion"] == "1.0.0"
    # And it serves the recipe with each artifact's digest, as it computed it then (the base64 of its SHA-256,
    # which the nucleus's ArtifactDownloader checks every download against).
    served = json.loads(gg.get_component(arn=created["arn"], recipeOutputFormat="JSON")["recipe"])
    (artifact,) = served["Manifests"][0]["Artifacts"]
    assert artifact == {
        "URI": f"s3://{bucket}/app.zip",
        "Digest": base64.b64encode(hashlib.sha256(b"zip").digest()).decode(),
        "Algorithm": "SHA-256",
    }


def test_a_new_version_is_requested_then_deployable(gg: Any) -> None:
    """CreateComponentVersion answers the version's state; the service processes it (REQUESTED, INITIATED)
    before it is DEPLOYABLE, so clients wait for DEPLOYABLE (scripts.publishing.components.wait_deployable does)."""
    created = gg.create_component_version(inlineRecipe=recipe())
    assert created["status"]["componentState"] == "REQUESTED"
    components.wait_deployable(gg, created["arn"], attempts=10)
    assert gg.describe_component(arn=created["arn"])["status"]["componentState"] == "DEPLOYABLE"


def test_a_deleted_version_is_gone_and_its_number_free(gg: Any) -> None:
    """DeleteComponent: "deletes the component's recipe and artifacts. As a result, deployments that refer to
    this component version will fail" (a core resolving it is answered ResourceNotFound). The reference does not
    say whether the number may be reused; GDK's documentation has users delete a version to publish it again, so
    it may."""
    version_arn = gg.create_component_version(inlineRecipe=recipe())["arn"]
    gg.delete_component(arn=version_arn)
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.describe_component(arn=version_arn)
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.resolve_component_candidates(
            platform={"name": "linux", "attributes": {"os": "linux", "architecture": "amd64"}},
            componentCandidates=[{"componentName": "com.example.App", "versionRequirements": {"group": "=1.0.0"}}],
        )
    assert gg.create_component_version(inlineRecipe=recipe())["arn"] == version_arn


def test_an_operation_the_local_cloud_does_not_offer_is_named(gg: Any) -> None:
    """An operation outside the local cloud is answered as one the caller may not use (AccessDeniedException,
    403): the request was well formed and nothing failed on the server, and the message names the operation."""
    with pytest.raises(gg.exceptions.AccessDeniedException, match="ListClientDevicesAssociatedWithCoreDevice"):
        gg.list_client_devices_associated_with_core_device(coreDeviceThingName="core")


def test_pages_follow_max_results(gg: Any) -> None:
    """Every List operation pages with maxResults and nextToken; the last page has no nextToken."""
    for index in range(5):
        gg.create_component_version(inlineRecipe=recipe(name=f"com.example.C{index}"))
    first = gg.list_components(maxResults=2)
    assert len(first["components"]) == 2 and "nextToken" in first
    names = [c["componentName"] for p in gg.get_paginator("list_components").paginate() for c in p["components"]]
    assert names == [f"com.example.C{i}" for i in range(5)]
