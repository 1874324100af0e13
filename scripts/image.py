"""Build the subscriber image with the model baked in, online or offline alike.

The wheels are always downloaded on the host and installed in the image with `--no-index`: the same build
works on a machine whose containers cannot reach PyPI (TLS re-signed on the way, or no network), and pip's
own cache on the host makes a rebuild cheap.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from scripts import modelfile, wheels
from scripts.engine import ensure_base_image
from scripts.errors import ToolError
from scripts.product import REPO
from scripts.progress import Progress

CONTEXT = REPO / "components" / "subscriber"
DEFAULT_TAG = "edgeml/subscriber:local"


class ImageError(ToolError):
    """The image could not be built; the message carries the failing step's output."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    size_bytes: int
    base_image: str
    architecture: str  # in Greengrass's names (a recipe's Platform.architecture): what the image runs on


# Docker's (OCI's) architecture names -> Greengrass's.
_GREENGRASS_ARCHITECTURES = {"amd64": "amd64", "arm64": "aarch64", "arm": "arm", "386": "x86"}


def download_wheels(wheelhouse: Path, progress: Progress) -> None:
    """The pinned wheels into the build context; pins make a wheel already there the same bytes, so only the
    missing ones are fetched."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = wheels.missing(wheels.declared(CONTEXT), wheelhouse)
    if requirements:
        progress(f"downloading wheels into {wheelhouse.relative_to(REPO)}: {' '.join(requirements)}")
        wheels.pip("download", requirements, "--dest", str(wheelhouse))


def stage_model(model: Path, context: Path = CONTEXT) -> str:
    """The model into the build context, once `modelfile.check` has passed it."""
    folder = context / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copyfile(model, folder / f"model{model.suffix}")
    return f"model{model.suffix}"


def build(client: docker.DockerClient, model: Path, tag: str = DEFAULT_TAG, progress: Progress = print) -> BuiltImage:
    predictions = modelfile.check(model)
    progress(f"model {model}: scores the publisher's records ({len(predictions)} predictions)")
    base = ensure_base_image(client, progress)
    download_wheels(CONTEXT / "wheelhouse", progress)
    model_file = stage_model(model)
    progress(f"building {tag} from {base}")
    buildargs = {"BASE_IMAGE": base, "MODEL_FILE": model_file, "PIP_ARGS": "--no-index --find-links /wheels"}
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
                image_id = chunk["aux"]["ID"]
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build failed: {exc.explanation or exc}") from exc
    image = client.images.get(tag)
    docker_architecture = str(image.attrs.get("Architecture", ""))
    return BuiltImage(
        tag=tag,
        image_id=image_id or image.id,
        size_bytes=int(image.attrs["Size"]),
        base_image=base,
        architecture=_GREENGRASS_ARCHITECTURES.get(docker_architecture, docker_architecture),
    )
