"""Build the subscriber image (code and runtime; the model is a component of its own), online or offline alike.

The wheels are always downloaded on the host and installed in the image with `--no-index`: the same build
works on a machine whose containers cannot reach PyPI (TLS re-signed on the way, or no network), and pip's
own cache on the host makes a rebuild cheap.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from scripts.building import crossbuild, wheels
from scripts.building.engine import ensure_base_image
from scripts.errors import ToolError
from scripts.platforms import PLATFORMS, Platform, this_machine
from scripts.product import REPO
from scripts.progress import Progress, step

CONTEXT = REPO / "components" / "subscriber"
IMAGE_NAME = "edgeml/subscriber"
DEFAULT_TAG = f"{IMAGE_NAME}:local"  # `make image`
BUILD_INPUTS = ("Dockerfile", wheels.LOCK)  # and the subscriber/ package: what the Dockerfile copies


class ImageError(ToolError):
    """The image could not be built; the message carries the failing step's output."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    size_bytes: int
    base_image: str
    architecture: str  # in Greengrass's names (a recipe's Platform.architecture): what the image runs on

    def record(self) -> dict[str, Any]:
        size = round(self.size_bytes / 1e6, 1)
        return {
            "image": self.tag,
            "architecture": self.architecture,
            "id": self.image_id,
            "size_mb": size,
            **{"base_image": self.base_image},
        }


def tag_for(platform: Platform, digest: str) -> str:
    """The engine's name for the image of `platform` built from inputs of `digest` (inputs_digest): named by its
    content, so two checkouts building different code at once never push each other's image."""
    return f"{IMAGE_NAME}:{digest[:16]}-{platform.architecture}"


def inputs_digest(platforms: tuple[Platform, ...]) -> str:
    """SHA-256 of everything the images for `platforms` are built from: what the Dockerfile copies (the hashed
    requirements, which fix the wheels, and the package) and the Dockerfile itself."""
    digest = hashlib.sha256(",".join(p.docker for p in platforms).encode())
    files = [CONTEXT / name for name in BUILD_INPUTS if (CONTEXT / name).is_file()]
    files += sorted(p for p in (CONTEXT / "subscriber").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(f"\0{path.relative_to(CONTEXT)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def download_wheels(wheelhouse: Path, progress: Progress, *platform_options: str) -> None:
    """The pinned wheels into the build context (for another platform with `platform_options`); pins make a wheel
    already there the same bytes, so only the missing ones are fetched."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = wheels.missing(wheels.locked(CONTEXT), wheelhouse)
    if requirements:
        progress(f"downloading wheels into {wheelhouse.relative_to(REPO)}: {' '.join(requirements)}")
        wheels.pip("download", wheels.hashed(CONTEXT), "--dest", str(wheelhouse), *platform_options)


def build(
    client: docker.DockerClient,
    tag: str = DEFAULT_TAG,
    progress: Progress = print,
    platform: Platform | None = None,
) -> BuiltImage:
    """The subscriber's image for `platform` (default: this machine's), code and runtime without a model, in the
    engine as `tag`."""
    target = platform or this_machine()
    if target == this_machine():
        base = ensure_base_image(client, progress)
        download_wheels(CONTEXT / "wheelhouse", progress)
        image_id = _docker_build(client, tag, {"BASE_IMAGE": base, **_OFFLINE}, progress)
    else:
        base = crossbuild.ensure_base_image(target, progress)
        download_wheels(CONTEXT / "wheelhouse" / target.greengrass, progress, *wheels.platform_options(target))
        buildargs = {"BASE_IMAGE": base, "WHEELHOUSE": f"wheelhouse/{target.greengrass}"}
        crossbuild.build(CONTEXT, target, {**buildargs, **_OFFLINE}, tag, progress)
        image_id = None
    built = _inspected(client, tag, target, base)
    return built if image_id is None else BuiltImage(tag, image_id, built.size_bytes, base, built.architecture)


def _inspected(client: docker.DockerClient, tag: str, target: Platform, base: str) -> BuiltImage:
    """The engine's image `tag`, which must be `target`'s."""
    image = client.images.get(tag)
    built_for = PLATFORMS.get(f"{image.attrs.get('Os')}/{image.attrs.get('Architecture')}")
    if built_for != target:
        raise ImageError(
            f"{tag} was built for {image.attrs.get('Os')}/{image.attrs.get('Architecture')}, not {target.docker}"
        )
    return BuiltImage(tag, image.id, int(image.attrs["Size"]), base, target.greengrass)


_OFFLINE = {"PIP_ARGS": "--no-index --find-links /wheels"}


def _docker_build(client: docker.DockerClient, tag: str, buildargs: dict[str, str], progress: Progress) -> str | None:
    image_id = None
    output: list[str] = []  # the build's own words, for the error if it fails
    try:
        with step(progress, f"building {tag} from {buildargs['BASE_IMAGE']}"):
            for chunk in client.api.build(
                path=str(CONTEXT), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True
            ):
                if "error" in chunk:
                    tail = "".join(output[-20:]).rstrip()
                    raise ImageError(f"docker build failed: {chunk['error'].strip()}" + (f"\n{tail}" if tail else ""))
                output.append(str(chunk.get("stream", "")))
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build failed: {exc.explanation or exc}") from exc
    return image_id


class Builds:
    """The images of `platforms` for what the checkout holds now, built in the background from the moment this is
    made (a first deploy builds them while Terraform applies), unless the engine has each already. `result()` waits
    for them and raises what the build raised."""

    def __init__(self, client: docker.DockerClient, platforms: tuple[Platform, ...], progress: Progress) -> None:
        self.client, self.platforms, self.progress = client, platforms, progress
        self.digest = inputs_digest(platforms)
        self._built: list[BuiltImage] = []
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None
        if any(not _present(client, tag_for(p, self.digest)) for p in platforms):
            # A daemon: a failed or interrupted command does not wait for a build it no longer needs.
            self._thread = threading.Thread(target=self._build, daemon=True, name="image builds")
            self._thread.start()

    def _build(self) -> None:
        try:
            self._built = [build(self.client, tag_for(p, self.digest), self.progress, p) for p in self.platforms]
        except BaseException as exc:  # handed to result(), in the thread that asks
            self._failed = exc

    def result(self) -> list[BuiltImage]:
        if self._thread is None:  # named by their inputs' digest: present means built from these very inputs
            return [_inspected(self.client, tag_for(p, self.digest), p, "") for p in self.platforms]
        self._thread.join()
        if self._failed is not None:
            raise self._failed
        return self._built


def _present(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True
