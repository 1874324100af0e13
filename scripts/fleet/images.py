"""Before a deployment is created: the container images its components pull are still in the repository.

An older release's image may have been expired by the repository's lifecycle policy or deleted by hand; a
deployment of it would start, then fail at `docker pull` on every device. ECR's BatchGetImage says whether the
repository still holds the pinned digest (the index for a multi-platform image), so a rollback to such a release
is refused before anything changes, naming the release and the image.
"""

from __future__ import annotations

import json
from typing import Any

from scripts import tfoutputs
from scripts.aws import calling
from scripts.errors import ToolError
from scripts.fleet import pacing

MANIFEST_TYPES = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
]


class ImageGone(ToolError):
    """A component version of the desired state pulls an image the repository no longer holds."""


def pulled(watch: pacing.Watch, outputs: tfoutputs.Outputs, components: dict[str, Any]) -> dict[str, str]:
    """`name version` -> `repository@sha256:...` for each of the stack's components in `components` whose recipe
    pulls an image from the stack's repository."""
    found: dict[str, str] = {}
    repository = outputs.repository_url
    for name, wanted in components.items():
        if name not in outputs.components.names:
            continue
        version = wanted["componentVersion"]
        arn = f"arn:aws:greengrass:{outputs.region}:{outputs.account_id}:components:{name}:versions:{version}"
        with calling(f"get the recipe of {name} {version}"):
            recipe = json.loads(watch.gg.get_component(arn=arn, recipeOutputFormat="JSON")["recipe"])
        for manifest in recipe.get("Manifests") or []:
            for artifact in manifest.get("Artifacts") or []:
                image = str(artifact.get("URI", "")).removeprefix("docker:")
                if image.startswith(f"{repository}@"):
                    found[f"{name} {version}"] = image
    return found


def check_present(watch: pacing.Watch, outputs: tfoutputs.Outputs, components: dict[str, Any], release: str) -> None:
    """Every image the desired state pulls from the stack's repository is there, or ImageGone names it."""
    name = outputs.repository_url.split("/", 1)[1]
    for component, image in pulled(watch, outputs, components).items():
        digest = image.rsplit("@", 1)[1]
        with calling(f"find the image of {component} in {name} (ecr:BatchGetImage)"):
            answer = watch.ecr.batch_get_image(
                repositoryName=name, imageIds=[{"imageDigest": digest}], acceptedMediaTypes=MANIFEST_TYPES
            )
        if not answer.get("images"):
            raise ImageGone(
                f"{release} needs {component}, whose image {image} is no longer in the repository {name} (expired "
                "by its lifecycle policy or deleted): no deployment was created. `make deploy` builds and pushes "
                "an image again"
            )
