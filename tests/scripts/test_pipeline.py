"""The deploy pipeline end to end: moto as a real endpoint for S3 and the ECR API, a real local registry for
the ECR registry (logged into with the ECR token), and greengrassv2 and IoT's job operations
through botocore's Stubber, with the calls each run must make, and only those.

- first run: image pushed, artifact uploaded, both components created, a deployment, every device followed;
- second run, nothing changed: nothing pushed, uploaded, created or deployed;
- only the publisher changed: only a new publisher version, and a deployment that keeps the subscriber."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
from botocore.stub import ANY, Stubber

from scripts import pipeline, product
from scripts.fleet import pacing, releases
from scripts.fleet.pacing import Pacer
from scripts.platforms import PLATFORMS
from scripts.publishing import artifacts, models, recipes
from tests.support.followed import expect_one_device_succeeds
from tests.support.outputs import stack_outputs

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REGION, ACCOUNT = "eu-west-1", "123456789012"
GROUP = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/edgeml-cores"
PUB, SUB, MODEL = product.DEFAULT.publisher, product.DEFAULT.subscriber, product.DEFAULT.model


def arn(name: str) -> str:
    return f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:{name}"


@pytest.fixture(scope="module")
def cloud(moto_endpoint: str, registry: str) -> Iterator[dict[str, Any]]:
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = session.client("s3", endpoint_url=moto_endpoint)
    ecr = session.client("ecr", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="pipe-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    ecr.create_repository(repositoryName="pipe/subscriber")
    outputs = stack_outputs(REGION, ACCOUNT, f"{registry}/pipe/subscriber", "pipe-artifacts", GROUP)
    yield {"s3": s3, "ecr": ecr, "outputs": outputs}
    for version in s3.list_object_versions(Bucket="pipe-artifacts").get("Versions", []):
        s3.delete_object(Bucket="pipe-artifacts", Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket="pipe-artifacts")
    ecr.delete_repository(repositoryName="pipe/subscriber", force=True)


def run(cloud: dict[str, Any], docker_client: docker.DockerClient, gg: Any, seed: Path, tmp: Path) -> dict[str, Any]:
    watch = pacing.Watch(gg.meta.iot, gg, Pacer(1000.0))  # the follower's clients, stubbed as gg is
    clients = pipeline.Clients(gg, cloud["s3"], cloud["ecr"], docker_client, watch)
    options = pipeline.Options(
        seed / "xgboost_wine_quality.json", rollout=releases.Rollout(poll_interval=0, health_window=0)
    )
    return pipeline.deploy(cloud["outputs"], clients, options, lambda message: None, lambda devices: None, tmp).record()


def expect_new_component(stub: Stubber, name: str, version: str, previous: dict[str, Any] | None = None) -> None:
    if previous is None:
        stub.add_client_error(
            "list_component_versions", "ResourceNotFoundException", expected_params={"arn": arn(name)}
        )
    else:
        expect_unchanged_component(stub, name, previous)
    stub.add_response(
        "create_component_version",
        {
            "arn": f"{arn(name)}:versions:{version}",
            "componentName": name,
            "componentVersion": version,
            "creationTimestamp": 0,
            "status": {"componentState": "REQUESTED"},
        },
        {"inlineRecipe": ANY, "clientToken": ANY},
    )
    stub.add_response(
        "describe_component", {"status": {"componentState": "DEPLOYABLE"}}, {"arn": f"{arn(name)}:versions:{version}"}
    )


def expect_unchanged_component(stub: Stubber, name: str, recipe: dict[str, Any]) -> None:
    version = recipe["ComponentVersion"]
    stub.add_response(
        "list_component_versions",
        {
            "componentVersions": [
                {"componentName": name, "componentVersion": version, "arn": f"{arn(name)}:versions:{version}"}
            ]
        },
        {"arn": arn(name)},
    )
    stub.add_response(
        "get_component",
        {"recipeOutputFormat": "JSON", "recipe": recipes.to_json(recipe).encode()},
        {"arn": f"{arn(name)}:versions:{version}", "recipeOutputFormat": "JSON"},
    )


def spec(name: str, version: str) -> dict[str, Any]:
    """A component in our deployment: the model's configuration is reset to its version's defaults every time."""
    return {"componentVersion": version, **({"configurationUpdate": {"reset": [""]}} if name == MODEL else {})}


def expect_current(stub: Stubber, deployment: str | None, components: dict[str, str]) -> None:
    listed = [] if deployment is None else [{"deploymentId": deployment, "isLatestForTarget": True, "targetArn": GROUP}]
    stub.add_response("list_deployments", {"deployments": listed}, {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"})
    if deployment is not None:
        stub.add_response(
            "get_deployment",
            {
                "deploymentId": deployment,
                "components": {name: spec(name, version) for name, version in components.items()},
            },
            {"deploymentId": deployment},
        )


def expect_deployment_and_success(stub: Stubber, deployment: str, components: dict[str, str]) -> None:
    stub.add_response(
        "create_deployment",
        {"deploymentId": deployment},
        {
            "targetArn": GROUP,
            "deploymentName": "edgeml",
            "components": {name: spec(name, version) for name, version in components.items()},
            "deploymentPolicies": ANY,
            "iotJobConfiguration": ANY,
            "clientToken": ANY,
        },
    )
    expect_one_device_succeeds(stub, stub.iot, GROUP, deployment, "edgeml", components)


def registered(
    kind: str,
    name: str,
    version: str,
    values: Mapping[str, recipes.Value],
    architectures: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    return recipes.render_component(
        kind, {**values, "component_name": name, "component_version": version}, architectures
    )


def test_first_run_then_no_change_then_only_the_publisher(
    cloud: dict[str, Any],
    docker_client: docker.DockerClient,
    seed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gg = boto3.client("greengrassv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    gg.meta.iot = boto3.client("iot", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(gg)
    stub.iot = Stubber(gg.meta.iot)
    stub.activate()
    stub.iot.activate()

    expect_new_component(stub, MODEL, "1.0.0")
    expect_new_component(stub, SUB, "1.0.0")
    expect_new_component(stub, PUB, "1.0.0")
    expect_current(stub, None, {})
    expect_deployment_and_success(stub, "d-1", {MODEL: "1.0.0", PUB: "1.0.0", SUB: "1.0.0"})
    first = run(cloud, docker_client, gg, seed, tmp_path)
    stub.assert_no_pending_responses()
    stub.iot.assert_no_pending_responses()
    assert first["image_pushed"] and first["artifacts_uploaded"] and first["models"]["uploaded"]
    assert sorted(first["artifacts"]) == ["aarch64", "amd64"]  # one zip per device architecture
    assert first["image"].startswith(f"{cloud['outputs'].repository_url}@sha256:")
    champion_sha = first["models"]["champion"]["sha256"]
    assert first["models"]["champion"]["uri"].endswith(f"/{champion_sha}/model-{champion_sha[:12]}.json")
    assert "challenger" not in first["models"]
    assert first["changes"] == [f"+ {MODEL} 1.0.0", f"+ {PUB} 1.0.0", f"+ {SUB} 1.0.0"]
    assert first["devices"][0]["deployment_status"] == "SUCCEEDED"

    every_platform: dict[str, dict[str, str]] = {p.greengrass: {} for p in PLATFORMS.values()}
    sub_recipe = registered(
        "subscriber", SUB, "1.0.0", product.DEFAULT.subscriber_values(first["image"]), every_platform
    )
    per_architecture = {arch: {"artifact_uri": uri} for arch, uri in first["artifacts"].items()}
    pub_recipe = registered("publisher", PUB, "1.0.0", {}, per_architecture)
    champion = models.StoredModel(**first["models"]["champion"])
    model_recipe = registered("model", MODEL, "1.0.0", models.component_values(MODEL, champion, None))
    expect_unchanged_component(stub, MODEL, model_recipe)
    expect_unchanged_component(stub, SUB, sub_recipe)
    expect_unchanged_component(stub, PUB, pub_recipe)
    expect_current(stub, "d-1", {MODEL: "1.0.0", PUB: "1.0.0", SUB: "1.0.0"})
    # Nothing to change: no deployment, but the current one is followed to its devices, and their health read.
    expect_one_device_succeeds(stub, stub.iot, GROUP, "d-1", "edgeml", {MODEL: "1.0.0", PUB: "1.0.0", SUB: "1.0.0"})
    second = run(cloud, docker_client, gg, seed, tmp_path)
    stub.assert_no_pending_responses()  # and nothing else was called: no create, no deployment
    assert (second["image_pushed"], second["artifacts_uploaded"], second["deployment"]) == (False, False, None)
    assert second["changes"] == []
    assert all(not c["created"] for c in second["components"].values())

    changed = tmp_path / "changed-publisher"
    shutil.copytree(artifacts.PUBLISHER, changed, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    samples = changed / "publisher" / "samples.json"
    samples.write_text(json.dumps(json.loads(samples.read_text())[:1]))
    monkeypatch.setattr(artifacts, "PUBLISHER", changed)
    expect_unchanged_component(stub, MODEL, model_recipe)
    expect_unchanged_component(stub, SUB, sub_recipe)
    expect_new_component(stub, PUB, "1.0.1", previous=pub_recipe)
    expect_current(stub, "d-1", {MODEL: "1.0.0", PUB: "1.0.0", SUB: "1.0.0"})
    expect_deployment_and_success(stub, "d-2", {MODEL: "1.0.0", PUB: "1.0.1", SUB: "1.0.0"})
    third = run(cloud, docker_client, gg, seed, tmp_path)
    stub.assert_no_pending_responses()
    stub.iot.assert_no_pending_responses()
    assert third["changes"] == [f"~ {PUB} 1.0.0 -> 1.0.1"]
    assert (third["image_pushed"], third["artifacts_uploaded"]) == (False, True)
    assert third["components"] == {
        MODEL: {"version": "1.0.0", "created": False},
        SUB: {"version": "1.0.0", "created": False},
        PUB: {"version": "1.0.1", "created": True},
    }
