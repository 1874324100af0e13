"""The deploy pipeline, unchanged, against the local cloud with localgg as the core device: the control plane
over HTTP, S3 and the ECR API on moto, the image in a local registry. The device downloads the publisher from
S3, pulls the subscriber after an ECR-token login, runs both, and the predictions flow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest

from localgg.agent import DeviceAgent
from localgg.cloud.greengrassv2 import ControlPlane
from localgg.cloud.server import serve
from scripts import pipeline, recipes, rollout
from tests.localgg.harness import CoreThread

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REGION, GROUP = "eu-west-1", "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
CONTAINER = "edgeml-subscriber"


@pytest.fixture
def stack(
    gg: CoreThread, moto_endpoint: str, registry: str, docker_client: docker.DockerClient
) -> Iterator[dict[str, Any]]:
    plane = ControlPlane()
    server, url = serve(plane)
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    s3, ecr = session.client("s3", endpoint_url=moto_endpoint), session.client("ecr", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="local-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    ecr.create_repository(repositoryName="local/subscriber")
    greengrass = session.client("greengrassv2", endpoint_url=url)

    async def make() -> DeviceAgent:
        return DeviceAgent(
            gg.core,
            plane,
            lambda: [GROUP],
            s3,
            ecr,
            lambda host, user, password: docker_client.login(user, password, registry=host),
            gg.root / "device",
            settle_timeout=60,
            stable_for=4,
        )

    agent = gg.call(make())
    running = asyncio.run_coroutine_threadsafe(agent.run(interval=0.2), gg.loop)
    outputs = {
        "region": REGION,
        "account_id": "123456789012",
        "repository_url": f"{registry}/local/subscriber",
        "artifact_bucket": "local-artifacts",
        "artifact_prefix": "artifacts",
        "thing_group_arn": GROUP,
        "thing_group_name": "edgeml-cores",
    }
    yield {
        "gg": gg,
        "outputs": outputs,
        "clients": pipeline.Clients(greengrass, s3, ecr, docker_client),
        "docker": docker_client,
    }
    running.cancel()
    gg.call(gg.core.stop())
    server.shutdown()
    for version in s3.list_object_versions(Bucket="local-artifacts").get("Versions", []):
        s3.delete_object(Bucket="local-artifacts", Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket="local-artifacts")
    ecr.delete_repository(repositoryName="local/subscriber", force=True)


def deploy(stack: dict[str, Any], model: Path) -> dict[str, Any]:
    options = pipeline.Options(model, rollout_timeout=120, poll_interval=0.5)
    return pipeline.deploy(
        stack["outputs"], stack["clients"], options, lambda m: None, lambda d: None, stack["gg"].root / "pipeline"
    )


def wait_for_predictions(log: Path, count: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = log.read_text().count("result: [6.573914 4.869721]") if log.exists() else 0
        if found >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} predictions in {log}")


def test_deploy_change_the_publisher_then_break_the_subscriber(
    stack: dict[str, Any], seed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, client = stack["gg"].core, stack["docker"]
    first = deploy(stack, seed / "xgboost_wine_quality.json")
    assert [d["deployment_status"] for d in first["devices"]] == ["SUCCEEDED"]
    assert {n: c["state"] for n, c in first["devices"][0]["components"].items()} == {
        pipeline.PUBLISHER: "RUNNING",
        pipeline.SUBSCRIBER: "RUNNING",
    }
    log = core.root / "logs" / f"{pipeline.SUBSCRIBER}.log"
    wait_for_predictions(log, 1)
    started = client.containers.get(CONTAINER).attrs["State"]["StartedAt"]

    # Change only the publisher's interval: only a new publisher version; the subscriber container keeps running.
    faster = tmp_path / "publisher-recipe.yaml"
    faster.write_text(recipes.TEMPLATES["publisher"].read_text().replace("interval: 5", "interval: 1"))
    monkeypatch.setitem(recipes.TEMPLATES, "publisher", faster)
    second = deploy(stack, seed / "xgboost_wine_quality.json")
    assert second["changes"] == [f"~ {pipeline.PUBLISHER} 1.0.0 -> 1.0.1"]
    assert client.containers.get(CONTAINER).attrs["State"]["StartedAt"] == started
    assert core.recipes[pipeline.PUBLISHER].version == "1.0.1"
    # As on a device, a new default does not overwrite the value already there (a deployment MERGE or RESET does).
    assert core.config.tree(pipeline.PUBLISHER)["interval"] == 5

    # A subscriber whose model cannot load exits at once: the device fails, rolls back, and says so.
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    with pytest.raises(rollout.RolloutError) as caught:
        deploy(stack, broken)
    message = str(caught.value)
    assert message.startswith("test-thing: deployment FAILED: FAILED_ROLLBACK_COMPLETE:")
    assert pipeline.SUBSCRIBER in message
    assert core.recipes[pipeline.SUBSCRIBER].version == "1.0.0"  # the previous subscriber is back
    before = log.read_text().count("result: [6.573914 4.869721]")
    wait_for_predictions(log, before + 1)
