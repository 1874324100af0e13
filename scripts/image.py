"""Build the subscriber image (code and runtime; the model is a component of its own), online or offline alike.

The wheels are always downloaded on the host and installed in the image with `--no-index`: the same build
works on a machine whose containers cannot reach PyPI (TLS re-signed on the way, or no network), and pip's
own cache on the host makes a rebuild cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from scripts import crossbuild, wheels
from scripts.engine import ensure_base_image
from scripts.errors import ToolError
from scripts.platforms import PLATFORMS, Platform, this_machine
from scripts.product import REPO
from scripts.progress import Progress

CONTEXT = REPO / "components" / "subscriber"
DEFAULT_TAG = "edgeml/subscriber:local"
BUILD_INPUTS = ("Dockerfile", "pyproject.toml")  # and the subscriber/ package: what the Dockerfile copies


class ImageError(ToolError):
    """The image could not be built; the message carries the failing step's output."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    size_bytes: int
    base_image: str
    architecture: str  # in Greengrass's names (a recipe's Platform.architecture): what the image runs on


def tag_for(platform: Platform) -> str:
    """The engine's name for the image of `platform`: DEFAULT_TAG for this machine's."""
    return DEFAULT_TAG if platform == this_machine() else f"{DEFAULT_TAG}-{platform.debian}"


def inputs_digest(platforms: tuple[Platform, ...]) -> str:
    """SHA-256 of everything the images for `platforms` are built from: what the Dockerfile copies (the declared
    dependencies, whose pins fix the wheels, and the package) and the Dockerfile itself."""
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
    requirements = wheels.missing(wheels.declared(CONTEXT), wheelhouse)
    if requirements:
        progress(f"downloading wheels into {wheelhouse.relative_to(REPO)}: {' '.join(requirements)}")
        wheels.pip("download", requirements, "--dest", str(wheelhouse), *platform_options)


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
    image = client.images.get(tag)
    built_for = PLATFORMS.get(f"{image.attrs.get('Os')}/{image.attrs.get('Architecture')}")
    if built_for != target:
        raise ImageError(
            f"{tag} was built for {image.attrs.get('Os')}/{image.attrs.get('Architecture')}, not {target.docker}"
        )
    return BuiltImage(
        tag=tag,
        image_id=image_id or image.id,
        size_bytes=int(image.attrs["Size"]),
        base_image=base,
        architecture=target.greengrass,
    )


_OFFLINE = {"PIP_ARGS": "--no-index --find-links /wheels"}


def _docker_build(client: docker.DockerClient, tag: str, buildargs: dict[str, str], progress: Progress) -> str | None:
    progress(f"building {tag} from {buildargs['BASE_IMAGE']}")
    image_id = None
    try:
        for chunk in client.api.build(
            path=str(CONTEXT), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True
        ):
            if "error" in chunk:
                raise ImageError(f"docker build failed: {chunk['error'].strip()}")
            line = str(chunk.get("stream", "")).rstrip()
            if line.startswith("Step "):
                progress(f"  {line}")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build failed: {exc.explanation or exc}") from exc
    return image_id
