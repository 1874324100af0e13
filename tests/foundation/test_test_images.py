"""The tests clean up the image names their registries and stacks gave the machine's engine (tests/support/images.py),
and only those: a user's tags, and the image itself while anything else names it, stay."""

from __future__ import annotations

import contextlib

import docker
import pytest

from tests.support import checkout, images


@pytest.mark.parametrize(
    ("name", "repository"),
    [
        ("127.0.0.1:5000/t1/subscriber:v1", "127.0.0.1:5000/t1/subscriber"),
        ("127.0.0.1:5000/t1/subscriber@sha256:" + "a" * 64, "127.0.0.1:5000/t1/subscriber"),
        ("127.0.0.1:5000/t1/subscriber", "127.0.0.1:5000/t1/subscriber"),
        ("edgeml/subscriber:local", "edgeml/subscriber"),
    ],
)
def test_the_repository_of_a_name_keeps_the_registry_port(name: str, repository: str) -> None:
    assert images.repository(name) == repository


@pytest.mark.docker
def test_a_stacks_names_go_and_everything_else_stays(docker_client: docker.DockerClient, base_image: str) -> None:
    prefix = checkout.name_prefix()
    ours, longer = f"127.0.0.1:1/{prefix}/subscriber", f"127.0.0.1:1/{prefix}x/subscriber"  # longer: another stack's
    image = docker_client.images.get(base_image)
    image.tag(ours, "v1")
    image.tag(longer, "v1")
    try:
        assert images.forget_stack(prefix) == 1
        names = docker_client.images.get(base_image).tags
        assert f"{ours}:v1" not in names and f"{longer}:v1" in names and base_image in names
        assert images.forget_registry("127.0.0.1:1") == 1
        names = docker_client.images.get(base_image).tags
        assert base_image in names and not [name for name in names if name.startswith("127.0.0.1:1/")]
    finally:
        for name in (f"{ours}:v1", f"{longer}:v1"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(name)
