"""Push the subscriber image to ECR and pin it by digest.

Login uses ECR's GetAuthorizationToken (`AWS:<password>`, base64) against the registry host of the repository
URL, as `aws ecr get-login-password | docker login` does. The docker SDK reports push failures only inside the
streamed progress, so every chunk is checked; the digest comes from the push's own result.
"""

from __future__ import annotations

import base64
from typing import Any

import docker
import docker.errors

from scripts.aws import calling
from scripts.errors import ToolError
from scripts.progress import Progress


class PushError(ToolError):
    """The image did not reach the registry; the message carries the registry's own words."""


def registry_host(repository_url: str) -> str:
    return repository_url.split("/", 1)[0]


def login(client: docker.DockerClient, ecr: Any, repository_url: str) -> None:
    with calling("get an ECR authorization token"):
        data = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    try:
        client.login(username=username, password=password, registry=registry_host(repository_url), reauth=True)
    except docker.errors.APIError as exc:
        raise PushError(f"docker login to {registry_host(repository_url)} failed: {exc.explanation or exc}") from exc


def push(client: docker.DockerClient, local_image: str, repository_url: str, tag: str, progress: Progress) -> str:
    """Push `local_image` as `repository_url:tag`; returns the pinned reference `repository_url@sha256:...`."""
    client.images.get(local_image).tag(repository_url, tag)
    digest = None
    reported: set[tuple[str, str]] = set()
    try:
        for chunk in client.api.push(repository_url, tag=tag, stream=True, decode=True):
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
                raise PushError(f"push of {repository_url}:{tag} failed: {detail}")
            layer, status = chunk.get("id", ""), chunk.get("status", "")
            final = status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")
            if layer and final and (layer, status) not in reported:
                reported.add((layer, status))
                progress(f"  {layer}: {status}")
            digest = chunk.get("aux", {}).get("Digest", digest)
    except docker.errors.APIError as exc:
        raise PushError(f"push of {repository_url}:{tag} failed: {exc.explanation or exc}") from exc
    if not digest:
        raise PushError(f"push of {repository_url}:{tag} reported no digest")
    return f"{repository_url}@{digest}"
