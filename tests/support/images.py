"""The image names the tests leave in the machine's engine. Every pull from a registry of a test's own names an image
once more (`127.0.0.1:<port>/<prefix>/subscriber@sha256:...`), and every test session has new ports and prefixes, so
without this the user's `docker images` grows by a dozen lines a run. Only the names go: an image the user's own tags
or containers still hold stays, as `docker rmi <name>` leaves it."""

from __future__ import annotations

from collections.abc import Callable

import docker

from scripts.building import engine


def repository(name: str) -> str:
    """`host:port/path` of `host:port/path:tag` or `host:port/path@sha256:...`."""
    if "@" in name:
        return name.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def forget(owned: Callable[[str], bool]) -> int:
    """Remove every tag and digest name whose repository `owned` picks; how many went. No engine: nothing pulled."""
    client = engine.connect()
    if client is None:
        return 0
    removed = 0
    try:
        for image in client.images.list():
            for name in (image.attrs.get("RepoTags") or []) + (image.attrs.get("RepoDigests") or []):
                if owned(repository(name)) and _remove(client, name):
                    removed += 1
    finally:
        client.close()
    return removed


def forget_registry(host: str) -> int:
    """The names of everything pulled from (or pushed to) the registry at `host:port`."""
    return forget(lambda repo: repo.startswith(f"{host}/"))


def forget_stack(prefix: str) -> int:
    """The names of a stack's images, from any registry: its ECR repository is `<prefix>/subscriber`."""
    return forget(lambda repo: repo.partition("/")[2].startswith(f"{prefix}/"))


def _remove(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.remove(name)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # a container, running or stopped, still uses it: it stays with its last name
            return False
        raise
    return True
