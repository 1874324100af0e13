"""The real SDK in separate processes, and in a container with the socket mounted, against localgg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO
from tests.localgg.harness import CoreThread, pubsub

PEER = [sys.executable, str(Path(__file__).with_name("sdk_peer.py"))]


def component_env(gg: CoreThread, name: str) -> dict[str, str]:
    return {
        **os.environ,
        "SVCUID": gg.core.tokens.issue(name),
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(gg.core.socket),
    }


def test_publisher_and_subscriber_processes(gg: CoreThread) -> None:
    gg.component("Sub", configuration={"accessControl": pubsub("demo/#")})
    gg.component("Pub", configuration={"accessControl": pubsub("demo/*")})
    subscriber = subprocess.Popen(
        [*PEER, "subscribe", "demo/#", "2"], env=component_env(gg, "Sub"), stdout=subprocess.PIPE, text=True
    )
    assert subscriber.stdout is not None
    assert subscriber.stdout.readline().strip() == "READY"
    published = subprocess.run(
        [*PEER, "publish", "demo/hello", "one", "two"],
        env=component_env(gg, "Pub"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    out, _ = subscriber.communicate(timeout=30)
    assert subscriber.returncode == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"topic": "demo/hello", "message": "one"},
        {"topic": "demo/hello", "message": "two"},
    ]


@pytest.mark.docker
@pytest.mark.slow
def test_sdk_in_a_container_with_the_socket_mounted(
    gg: CoreThread, docker_client: docker.DockerClient, subscriber_image: str
) -> None:
    tag = subscriber_image  # built once per session (tests/conftest.py)
    gg.component("Boxed", configuration={"accessControl": pubsub("box/*")})
    gg.component("Host", configuration={"accessControl": pubsub("box/*")})
    socket_path = str(gg.core.socket)
    peer = (REPO / "tests" / "localgg" / "sdk_peer.py").read_text()
    container = docker_client.containers.run(
        tag,
        ["-c", peer, "subscribe", "box/in", "1"],
        entrypoint="python",
        detach=True,
        user="10001",
        network_mode="none",
        read_only=True,
        environment={
            "SVCUID": gg.core.tokens.issue("Boxed"),
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": socket_path,
        },
        volumes={socket_path: {"bind": socket_path, "mode": "rw"}},
    )
    try:
        for _ in range(100):
            if b"READY" in container.logs():
                break
            container.reload()
            assert container.status != "exited", container.logs()
            subprocess.run(["sleep", "0.1"], check=True)
        subprocess.run(
            [*PEER, "publish", "box/in", "from the host"], env=component_env(gg, "Host"), check=True, timeout=30
        )
        assert container.wait(timeout=30)["StatusCode"] == 0
        lines = container.logs(stdout=True, stderr=False).decode().splitlines()
        assert json.loads(lines[-1]) == {"topic": "box/in", "message": "from the host"}
    finally:
        container.remove(force=True)
