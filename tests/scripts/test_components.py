"""Component registration against greengrassv2 through botocore's Stubber: moto has no greengrassv2, so the
calls and their exact parameters are checked against the real service model instead of a live endpoint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scripts.publishing import components, recipes

REGION, ACCOUNT = "eu-west-1", "123456789012"
NAME = "com.edgeml.WineQualityPublisher"
ARN = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:{NAME}"
VALUES = {"artifact_uri": "s3://bucket/artifacts/com.edgeml.WineQualityPublisher/abc/publisher.zip"}


@pytest.fixture
def gg() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("greengrassv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def recipe(version: str, values: dict[str, str] = VALUES) -> dict[str, Any]:
    return recipes.render_component("publisher", {**values, "component_name": NAME, "component_version": version})


def expect_versions(stubber: Stubber, *versions: str) -> None:
    stubber.add_response(
        "list_component_versions",
        {
            "componentVersions": [
                {"componentName": NAME, "componentVersion": v, "arn": f"{ARN}:versions:{v}"} for v in versions
            ]
        },
        {"arn": ARN},
    )


def expect_create(stubber: Stubber, version: str, values: dict[str, str] = VALUES) -> None:
    body = recipes.to_json(recipe(version, values)).encode()
    stubber.add_response(
        "create_component_version",
        {
            "arn": f"{ARN}:versions:{version}",
            "componentName": NAME,
            "componentVersion": version,
            "creationTimestamp": 0,
            "status": {"componentState": "REQUESTED"},
        },
        {"inlineRecipe": body, "clientToken": hashlib.sha256(body).hexdigest()[:64]},
    )


def no_wait(client: Any, arn: str) -> None:
    pass


def test_the_first_registration_creates_1_0_0(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    stubber.add_client_error("list_component_versions", "ResourceNotFoundException", expected_params={"arn": ARN})
    expect_create(stubber, "1.0.0")
    assert components.register(
        client, "publisher", NAME, VALUES, REGION, ACCOUNT, wait=no_wait
    ) == components.Registered(NAME, "1.0.0", f"{ARN}:versions:1.0.0", created=True)


def test_an_unchanged_recipe_reuses_the_latest_version(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    expect_versions(stubber, "1.0.0", "1.0.10", "1.0.9")
    stubber.add_response(
        "get_component",
        {"recipeOutputFormat": "JSON", "recipe": recipes.to_json(recipe("1.0.10")).encode()},
        {"arn": f"{ARN}:versions:1.0.10", "recipeOutputFormat": "JSON"},
    )
    registered = components.register(client, "publisher", NAME, VALUES, REGION, ACCOUNT, wait=no_wait)
    assert registered == components.Registered(NAME, "1.0.10", f"{ARN}:versions:1.0.10", created=False)


@pytest.mark.parametrize(("bump", "expected"), [("patch", "1.2.4"), ("minor", "1.3.0"), ("major", "2.0.0")])
def test_a_changed_recipe_creates_the_next_version(gg: tuple[Any, Stubber], bump: str, expected: str) -> None:
    client, stubber = gg
    expect_versions(stubber, "1.2.3")
    old = recipe("1.2.3", {"artifact_uri": "s3://bucket/artifacts/old/publisher.zip"})
    stubber.add_response(
        "get_component",
        {"recipeOutputFormat": "JSON", "recipe": json.dumps(old).encode()},
        {"arn": f"{ARN}:versions:1.2.3", "recipeOutputFormat": "JSON"},
    )
    expect_create(stubber, expected)
    registered = components.register(client, "publisher", NAME, VALUES, REGION, ACCOUNT, bump=bump, wait=no_wait)
    assert (registered.version, registered.created) == (expected, True)


def test_a_version_that_fails_shows_its_errors(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    arn = f"{ARN}:versions:1.0.0"
    stubber.add_response(
        "describe_component",
        {
            "status": {
                "componentState": "FAILED",
                "message": "artifact check failed",
                "errors": {"s3://bucket/x.zip": "ACCESS_DENIED"},
            }
        },
        {"arn": arn},
    )
    with pytest.raises(
        components.ComponentError, match=r"FAILED: artifact check failed s3://bucket/x\.zip: ACCESS_DENIED"
    ):
        components.wait_deployable(client, arn, attempts=3, sleep=lambda s: None)


def test_a_version_that_never_becomes_deployable_times_out(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    arn = f"{ARN}:versions:1.0.0"
    for _ in range(3):
        stubber.add_response("describe_component", {"status": {"componentState": "REQUESTED"}}, {"arn": arn})
    with pytest.raises(components.ComponentError, match="still REQUESTED after 3 checks"):
        components.wait_deployable(client, arn, attempts=3, sleep=lambda s: None)


def test_deployable_after_a_while(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    arn = f"{ARN}:versions:1.0.0"
    for state in ("REQUESTED", "INITIATED", "DEPLOYABLE"):
        stubber.add_response("describe_component", {"status": {"componentState": state}}, {"arn": arn})
    components.wait_deployable(client, arn, attempts=5, sleep=lambda s: None)


def test_throttling_that_outlasts_the_retries_is_one_clear_error(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    stubber.add_client_error(
        "list_component_versions", "ThrottlingException", "Rate exceeded", expected_params={"arn": ARN}
    )
    with pytest.raises(Exception, match="still throttled after"):
        components.register(client, "publisher", NAME, VALUES, REGION, ACCOUNT, wait=no_wait)
