"""The subscriber image for arm64 devices, built on this amd64 machine with buildah and Debian's arm64 packages, and
run here under qemu emulation (binfmt_misc): its inference CLI reproduces the reference device's predictions, as
a non-root user. Only what proves the point runs emulated: one build, one scoring run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import docker
import pytest

from scripts.building import crossbuild, image
from scripts.platforms import PLATFORMS, this_machine
from scripts.publishing import registry as registry_module
from tests.conftest import TEST_IMAGES
from tests.subscriber.test_image import mounted_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ARM64 = PLATFORMS["linux/arm64"]
TAG = f"{TEST_IMAGES}:test-arm64"


@pytest.fixture(scope="module")
def arm64_image(docker_client: docker.DockerClient) -> str:
    if this_machine() == ARM64:
        pytest.skip("this machine is arm64: its own image is the arm64 one, tested by test_image.py")
    if not crossbuild.emulation_ready(ARM64) and os.geteuid() != 0:
        pytest.skip("arm64 emulation is not set up and only root can set it up (qemu-user-static, binfmt_misc)")
    built = image.build(docker_client, TAG, progress=lambda message: None, platform=ARM64)
    assert built.architecture == "aarch64"
    return built.tag


def test_the_arm64_image_reproduces_the_reference_under_emulation(
    docker_client: docker.DockerClient, arm64_image: str, seed: Path
) -> None:
    attributes = docker_client.images.get(arm64_image).attrs
    assert (attributes["Os"], attributes["Architecture"]) == ("linux", "arm64")
    assert attributes["Config"]["User"] not in ("", "0", "root")
    event = json.dumps({"body": (seed / "samples.json").read_text(), "isBase64Encoded": False})
    script = (
        f"import sys, io, platform; sys.stdin = io.StringIO({event!r}); print(platform.machine()); "
        "from subscriber.inference import main; sys.exit(main())"
    )
    container = docker_client.containers.run(
        arm64_image,
        ["-c", script],
        entrypoint="python",
        platform="linux/arm64",
        network_mode="none",
        detach=True,
        **mounted_model(seed / "xgboost_wine_quality.json"),
    )
    try:
        assert container.wait(timeout=300)["StatusCode"] == 0
        machine, result = container.logs(stdout=True, stderr=False).decode().splitlines()
    finally:
        container.remove(force=True)
    assert machine == "aarch64"  # really the arm64 binaries, emulated
    assert json.loads(result) == {"statusCode": 200, "body": [6.573914, 4.869721]}


def test_one_index_serves_both_platforms(
    docker_client: docker.DockerClient, arm64_image: str, subscriber_image: str, registry: str
) -> None:
    """The amd64 and arm64 images pushed as one index, pinned by one digest: a Docker engine pulls its own
    platform's image by it, and the arm64 one when asked for linux/arm64, as an arm64 core's engine does."""
    repository = f"{registry}/edgeml/multi"
    pinned = registry_module.push_index(
        [subscriber_image, arm64_image], repository, "both", ("AWS", "local"), progress=lambda message: None
    )
    for platform, architecture in (("linux/arm64", "arm64"), (None, "amd64")):
        pulled = docker_client.images.pull(pinned, platform=platform)
        assert pulled.attrs["Architecture"] == architecture
        # The engine keeps one image per pinned reference: untag it (the built images keep their own tags).
        docker_client.images.remove(pinned)
