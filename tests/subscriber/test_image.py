"""The image builds offline and, with a model mounted as the model component's artifact, its inference CLI
reproduces the reference device, as a non-root user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_container_cli_reproduces_the_reference_with_the_model_mounted(
    docker_client: docker.DockerClient, subscriber_image: str, seed: Path
) -> None:
    event = json.dumps({"body": (seed / "samples.json").read_text(), "isBase64Encoded": False})
    container = docker_client.containers.run(
        subscriber_image,
        [
            "-c",
            f"import sys, io; sys.stdin = io.StringIO({event!r}); "
            "from subscriber.inference import main; sys.exit(main())",
        ],
        entrypoint="python",
        network_mode="none",
        detach=True,
        **mounted_model(seed / "xgboost_wine_quality.json"),
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        result = json.loads(container.logs(stdout=True, stderr=False))
    finally:
        container.remove(force=True)
    assert result == {"statusCode": 200, "body": [6.573914, 4.869721]}


def test_image_runs_as_a_non_root_user_and_holds_no_model(
    docker_client: docker.DockerClient, subscriber_image: str
) -> None:
    """A model in the image would tie every retrain to an image build: the model component brings it."""
    config = docker_client.images.get(subscriber_image).attrs["Config"]
    assert config["User"] not in ("", "0", "root")
    assert not any(item.startswith("MODEL_PATH=") for item in config["Env"])
    listing = docker_client.containers.run(
        subscriber_image, ["-c", "import os; print(os.path.exists('/opt/model'))"], entrypoint="python", remove=True
    )
    assert listing.decode().strip() == "False"


def mounted_model(model: Path) -> dict[str, Any]:
    """docker run options that mount `model`'s folder read-only where the subscriber recipe mounts the model
    component's artifacts, with MODEL_PATH naming the file."""
    return {
        "volumes": {str(model.parent): {"bind": "/opt/model", "mode": "ro"}},
        "environment": {"MODEL_PATH": f"/opt/model/{model.name}"},
    }
