"""The image builds offline and its inference CLI reproduces the reference device, as a non-root user."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_container_cli_reproduces_the_reference(
    docker_client: docker.DockerClient, reference_image: str, seed: Path
) -> None:
    event = json.dumps({"body": (seed / "samples.json").read_text(), "isBase64Encoded": False})
    container = docker_client.containers.run(
        reference_image,
        [
            "-c",
            f"import sys, io; sys.stdin = io.StringIO({event!r}); "
            "from subscriber.inference import main; sys.exit(main())",
        ],
        entrypoint="python",
        network_mode="none",
        detach=True,
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        result = json.loads(container.logs(stdout=True, stderr=False))
    finally:
        container.remove(force=True)
    assert result == {"statusCode": 200, "body": [6.573914, 4.869721]}


def test_image_runs_as_a_non_root_user_with_the_model_from_the_environment(
    docker_client: docker.DockerClient, reference_image: str
) -> None:
    config = docker_client.images.get(reference_image).attrs["Config"]
    assert config["User"] not in ("", "0", "root")
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MODEL_PATH"] == "/opt/model/model.json"
