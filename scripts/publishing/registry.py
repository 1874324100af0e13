"""Push the subscriber's images to ECR, pinned by digest: one platform's image as it is, several as one
multi-platform index.

Login uses ECR's GetAuthorizationToken (`AWS:<password>`, base64) against the registry host of the repository
URL, as `aws ecr get-login-password | docker login` does. One image is pushed by the engine itself. Docker 20.10
cannot push a manifest list, so for several, buildah (crossbuild.push_index) pushes the engine's per-platform images
and the index over them; each core's Docker then pulls its own platform's image by the one digest.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import docker
import docker.errors

from scripts.aws import calling
from scripts.building import crossbuild
from scripts.errors import ToolError
from scripts.progress import Progress


class PushError(ToolError):
    """The image did not reach the registry; the message carries the registry's own words."""


def registry_host(repository_url: str) -> str:
    return repository_url.split("/", 1)[0]


def login(client: docker.DockerClient, ecr: Any, repository_url: str) -> tuple[str, str]:
    """The engine logged in to the repository's registry; returns the credentials (user, password) for buildah."""
    with calling("get an ECR authorization token"):
        data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    try:
        client.login(username=username, password=password, registry=registry_host(repository_url), reauth=True)
    except docker.errors.APIError as exc:
        raise PushError(f"docker login to {registry_host(repository_url)} failed: {exc.explanation or exc}") from exc
    return username, password


def push(
    client: docker.DockerClient,
    images: list[str],
    repository_url: str,
    tag: str,
    credentials: tuple[str, str],
    progress: Progress,
) -> str:
    """The engine's `images` (one per platform) at `repository_url:tag`; returns the pinned reference
    `repository_url@sha256:...`: of the image itself for one, of their index for several."""
    if len(images) > 1:
        return push_index(images, repository_url, tag, credentials, progress)
    (local,) = images
    target = f"{repository_url}:{tag}"
    try:
        client.images.get(local).tag(repository_url, tag)
        digest = None
        # The engine reports a failed push in the stream, not as an exception.
        for chunk in client.images.push(repository_url, tag, stream=True, decode=True):
            if "error" in chunk:
                raise PushError(f"push of {target} failed: {chunk['error'].strip()}")
            digest = (chunk.get("aux") or {}).get("Digest") or digest
    except docker.errors.APIError as exc:
        raise PushError(f"push of {target} failed: {exc.explanation or exc}") from exc
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(target)  # the engine's name for it only; the image stays
    if not digest or not str(digest).startswith("sha256:"):
        raise PushError(f"push of {target} failed: the registry returned no digest")
    return f"{repository_url}@{digest}"


def push_index(
    images: list[str], repository_url: str, tag: str, credentials: tuple[str, str], progress: Progress
) -> str:
    """The engine's `images` (one per platform) pushed as the index `repository_url:tag`; returns the pinned
    reference `repository_url@sha256:...` of the index. Plain HTTP only for a registry on loopback (the local
    stand-in for ECR)."""
    host = registry_host(repository_url).rsplit(":", 1)[0]
    try:
        digest = crossbuild.push_index(
            [f"docker-daemon:{image}" for image in images],
            f"{repository_url}:{tag}",
            credentials,
            tls_verify=host not in ("127.0.0.1", "localhost", "[::1]"),
            progress=progress,
        )
    except crossbuild.CrossBuildError as exc:
        raise PushError(f"push of {repository_url}:{tag} failed: {exc}") from exc
    if not digest.startswith("sha256:"):
        # buildah 1.28 can exit 0 from a push the registry never took: only a digest proves it arrived.
        raise PushError(f"push of {repository_url}:{tag} failed: the registry returned no digest for the index")
    return f"{repository_url}@{digest}"
