"""Debian's distribution registry on a loopback port, standing in for the ECR registry, and the part of its HTTP
API that the ECR image operations need (list tags, resolve a tag to its digest, delete a manifest)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt

from localcloud.net import dies_with_parent, free_port, wait_until_listening

# What `docker push` stores: Docker v2 and OCI manifests and indexes. HEAD answers the digest of whichever it is.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


USER = "AWS"  # the user name in every ECR authorization token


class RegistryUnavailable(RuntimeError):
    pass


def start(folder: Path, port: int | None = None, password: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A registry storing under `folder` (deletes enabled, as ECR allows); returns the process and `127.0.0.1:port`.
    With `password`, it answers only the user `AWS` with it (HTTP basic auth against a bcrypt htpasswd file only
    the stack reads), as ECR answers only the token GetAuthorizationToken gave; without, anyone (a test's own)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryUnavailable("docker-registry is not installed (apt-get install docker-registry)")
    port = port or free_port()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    auth = ""
    if password is not None:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        with os.fdopen(os.open(folder / "htpasswd", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(f"{USER}:{hashed}\n")
        auth = f"auth:\n  htpasswd:\n    realm: localcloud-ecr\n    path: {folder / 'htpasswd'}\n"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    server = subprocess.Popen(
        [binary, "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=dies_with_parent,  # from the stack's main thread
    )
    if not wait_until_listening(port, 10, lambda: server.poll() is None):
        server.kill()
        raise RegistryUnavailable(f"docker-registry did not start on port {port}")
    return server, f"127.0.0.1:{port}"


class RegistryApi:
    """The registry's v2 HTTP API for one host; names are repository names (`edgeml/subscriber`)."""

    def __init__(self, host: str, password: str | None = None) -> None:
        self.host, self.password = host, password
        self.base = f"http://{host}/v2"

    def _request(self, method: str, path: str) -> urllib.request.Request:
        headers = {"Accept": MANIFEST_TYPES}
        if self.password is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{self.password}".encode()).decode()
        return urllib.request.Request(f"{self.base}/{path}", method=method, headers=headers)

    def tags(self, name: str) -> list[str]:
        try:
            with urllib.request.urlopen(self._request("GET", f"{name}/tags/list"), timeout=30) as reply:
                return sorted(json.load(reply).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # NAME_UNKNOWN: nothing was ever pushed, or everything was deleted
                return []
            raise

    def digest(self, name: str, reference: str) -> str | None:
        try:
            with urllib.request.urlopen(self._request("HEAD", f"{name}/manifests/{reference}"), timeout=30) as reply:
                digest: str | None = reply.headers.get("Docker-Content-Digest")
                return digest
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def manifest(self, name: str, reference: str) -> tuple[str, str, str] | None:
        """(digest, media type, manifest) of a tag or digest, None when it is not there."""
        try:
            with urllib.request.urlopen(self._request("GET", f"{name}/manifests/{reference}"), timeout=30) as reply:
                return (
                    str(reply.headers.get("Docker-Content-Digest")),
                    str(reply.headers.get("Content-Type")),
                    reply.read().decode(),
                )
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def images(self, name: str) -> list[tuple[str, str | None]]:
        """(digest, tag) for every tag, as ECR's ListImages answers."""
        found = [(self.digest(name, tag), tag) for tag in self.tags(name)]
        return [(digest, tag) for digest, tag in found if digest is not None]

    def delete(self, name: str, digest: str) -> bool:
        """Delete the manifest (and so every tag on it); False when it is not there."""
        try:
            with urllib.request.urlopen(self._request("DELETE", f"{name}/manifests/{digest}"), timeout=30):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise
