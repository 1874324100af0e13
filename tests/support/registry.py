"""Put a minimal image straight into a registry over its v2 HTTP API, without a Docker engine."""

from __future__ import annotations

import hashlib
import json
import urllib.request


def _put(url: str, body: bytes, content_type: str, auth: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": content_type, **auth})
    urllib.request.urlopen(request, timeout=30).close()


def push_manifest(host: str, name: str, tag: str, token: str | None = None) -> str:
    """An image with a config blob and no layers, tagged `tag` (with an ECR authorization `token`, as its holder);
    returns its manifest digest."""
    auth = {"Authorization": f"Basic {token}"} if token else {}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_digest = "sha256:" + hashlib.sha256(config.encode()).hexdigest()
    start = urllib.request.Request(f"http://{host}/v2/{name}/blobs/uploads/", data=b"", method="POST", headers=auth)
    with urllib.request.urlopen(start, timeout=30) as reply:
        location = reply.headers["Location"]
    separator = "&" if "?" in location else "?"
    upload = location if location.startswith("http") else f"http://{host}{location}"
    _put(f"{upload}{separator}digest={config_digest}", config.encode(), "application/octet-stream", auth)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": config_digest,
            },
            "layers": [],
        }
    ).encode()
    _put(
        f"http://{host}/v2/{name}/manifests/{tag}",
        manifest,
        "application/vnd.docker.distribution.manifest.v2+json",
        auth,
    )
    return "sha256:" + hashlib.sha256(manifest).hexdigest()
