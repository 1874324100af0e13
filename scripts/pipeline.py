"""`deploy`: Terraform outputs -> image -> artifacts -> component versions -> deployment -> rollout.

Safe to run again and again: an image already in the registry is not pushed, an artifact already in S3 is not
uploaded, an unchanged recipe reuses its version, and an unchanged desired state creates no deployment.
Recipes are checked before anything is uploaded.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from scripts import tfoutputs
from scripts.building import image
from scripts.fleet import pacing, releases, rollout
from scripts.platforms import BY_GREENGRASS, PLATFORMS, Platform
from scripts.product import COMPONENTS, REPO, Components, Made
from scripts.progress import Progress, step
from scripts.publishing import artifacts, components, modelfile, models, recipes, registry


@dataclass(frozen=True)
class Clients:
    gg: Any
    s3: Any
    ecr: Any
    docker: docker.DockerClient
    watch: pacing.Watch


@dataclass(frozen=True)
class Options:
    model: Path
    challenger: Path | None = None
    bump: str = "patch"
    rollout: releases.Rollout = field(default_factory=releases.Rollout)
    # The device platforms to build and publish for: each gets its image and publisher zip, and a manifest in the
    # recipes; a device of another CPU is refused by the service's own resolution (no manifest for it).
    platforms: tuple[Platform, ...] = tuple(PLATFORMS.values())
    profile_data: Path | None = None  # rows to profile the champion on (PROFILE_DATA), else `make model`'s profile


@dataclass(frozen=True)
class Deployed:
    """What a deploy published, and its release."""

    release: releases.Release
    image: str  # pinned by digest
    image_pushed: bool
    artifacts: dict[str, str]  # the publisher's zip by architecture
    artifacts_uploaded: bool
    models: dict[str, Any]  # `uploaded`, and each model by role

    def record(self) -> dict[str, Any]:
        published = {"image": self.image, "image_pushed": self.image_pushed, "artifacts": self.artifacts}
        return {
            **published,
            "artifacts_uploaded": self.artifacts_uploaded,
            "models": self.models,
            **self.release.record(),
        }


def check_templates(names: Components) -> None:
    """Render every template with stand-in values, for every architecture: a broken recipe stops the run before any
    upload."""
    model = models.component_values(names.model, models.StoredModel("s3://b/m/model.json", "0" * 64), None)
    zips = {architecture: f"s3://bucket/prefix/{architecture}/publisher.zip" for architecture in BY_GREENGRASS}
    stand_in = Made("registry/repository@sha256:" + "0" * 64, model, zips)
    for component in COMPONENTS:
        recipes.render_release(component, names, stand_in, "1.0.0")


@dataclass(frozen=True)
class Published:
    image: str  # the multi-platform index, pinned by digest
    pushed: bool
    architectures: tuple[str, ...]  # its platforms, in Greengrass's names: the subscriber recipe's manifests


def publish_image(clients: Clients, repository_url: str, builds: image.Builds, progress: Progress) -> Published:
    """One image per device platform (another CPU's built under emulation), pushed (several as one index) and
    pinned by digest. The tag is the digest of what the images are built from: when the registry has it, nothing is
    pushed (a model-only redeploy), and what `builds` built is left in the engine."""
    platforms = builds.platforms
    architectures = tuple(platform.greengrass for platform in platforms)
    tag = "img-" + builds.digest[:16]  # immutable tags in ECR: one per content
    credentials = registry.login(clients.docker, clients.ecr, repository_url)
    try:
        digest = clients.docker.images.get_registry_data(f"{repository_url}:{tag}").id
        progress(f"image {repository_url}:{tag} is already in the registry: the subscriber's code is unchanged")
        return Published(f"{repository_url}@{digest}", False, architectures)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code not in (401, 403, 404):
            raise registry.PushError(f"cannot query {repository_url}: {exc.explanation or exc}") from exc
    built = builds.result()
    with step(progress, f"pushing {repository_url}:{tag} for {', '.join(p.docker for p in platforms)}"):
        pinned = registry.push(clients.docker, [b.tag for b in built], repository_url, tag, credentials, progress)
    return Published(pinned, True, tuple(b.architecture for b in built))


@dataclass(frozen=True)
class PublishedModels:
    champion: models.StoredModel
    challenger: models.StoredModel | None
    profile: models.StoredModel | None  # the champion's reference profile
    uploaded: bool  # False: every file was already there


PROFILES = REPO / "build" / "profiles"  # those PROFILE_DATA made, named after the model and the data


def publish_models(
    clients: Clients,
    outputs: tfoutputs.Outputs,
    champion: Path,
    challenger: Path | None,
    folder: Path,
    progress: Progress,
    checked: Mapping[Path, str],
    profile_data: Path | None = None,
) -> PublishedModels:
    """The model files as the model component's artifacts, stored under their SHA-256 and named after it
    (`model-<sha256 prefix>.json`) whatever the files' own names: the same model is always the same artifact,
    champion or challenger, so a promoted challenger deployed again as the champion changes nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    stored: dict[str, models.StoredModel] = {}
    created = False
    profile = modelfile.profile(champion, profile_data, PROFILES)
    for role, path in (("champion", champion), ("challenger", challenger), ("profile", profile)):
        if path is None:
            continue
        # The copy is what is uploaded: hashed after it was made, and for a model held to the bytes that were checked.
        copy = folder / f"staging{path.suffix}"
        shutil.copyfile(path, copy)
        sha256 = artifacts.sha256(copy)
        if path in checked and checked[path] != sha256:
            copy.unlink()
            raise modelfile.ModelFileError(
                f"model file {path} changed after it was checked (SHA-256 {checked[path][:12]} then {sha256[:12]}): "
                "nothing of it was uploaded; run the command again to check the new file"
            )
        staged = folder / f"{'profile' if role == 'profile' else 'model'}-{sha256[:12]}{path.suffix}"
        os.replace(copy, staged)
        uploaded = artifacts.upload(
            clients.s3, outputs.artifact_bucket, outputs.artifact_prefix, outputs.components.model, staged
        )
        what = "reference profile" if role == "profile" else f"{role} model"
        progress(f"{what} {sha256[:12]}: {'uploaded' if uploaded.created else 'already in S3'}")
        measured = modelfile.metrics(path) if role != "profile" else {}
        stored[role] = models.StoredModel(uploaded.uri, sha256, measured)
        created = created or uploaded.created
    return PublishedModels(stored["champion"], stored.get("challenger"), stored.get("profile"), created)


@dataclass(frozen=True)
class Prepared:
    builds: image.Builds
    checked: dict[Path, str]  # each model file -> the SHA-256 of the bytes that were checked


def prepare(options: Options, client: docker.DockerClient, progress: Progress) -> Prepared:
    """The models checked, then the images' builds started: what a deploy does before it needs the stack (a first
    one builds while Terraform applies). Nothing is built or sent for a model the devices could not serve."""
    checked = {}
    for path in filter(None, (options.model, options.challenger)):
        found = modelfile.checked(path)
        checked[path] = found.sha256
        progress(f"model {path}: scores the publisher's records ({len(found.predictions)} predictions)")
    profile = modelfile.profile(options.model, options.profile_data, PROFILES)
    progress(
        f"reference profile {profile}: the devices' telemetry is binned with it"
        if profile
        else f"no reference profile for {options.model} (PROFILE_DATA=<csv> makes one): telemetry says 'no reference'"
    )
    return Prepared(image.Builds(client, options.platforms, progress), checked)


def deploy(
    outputs: tfoutputs.Outputs,
    clients: Clients,
    options: Options,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
    workdir: Path,
    prepared: Prepared | None = None,
) -> Deployed:
    """`prepared`: what `prepare` checked and started (None: prepared here)."""
    region, account, names = outputs.region, outputs.account_id, outputs.components
    check_templates(names)
    prepared = prepared or prepare(options, clients.docker, progress)
    published = publish_image(clients, outputs.repository_url, prepared.builds, progress)
    held = publish_models(
        clients, outputs, options.model, options.challenger, workdir / "models", progress, prepared.checked,
        options.profile_data,
    )  # fmt: skip
    uploads = {
        architecture: artifacts.upload(
            clients.s3,
            outputs.artifact_bucket,
            outputs.artifact_prefix,
            names.publisher,
            artifacts.publisher_zip(workdir / "publisher", architecture),
        )
        for architecture in published.architectures
    }
    for architecture, uploaded in uploads.items():
        progress(f"publisher zip for {architecture}: {'uploaded' if uploaded.created else 'already in S3'}")
    made = Made(
        published.image,
        models.component_values(names.model, held.champion, held.challenger, held.profile),
        {architecture: uploaded.uri for architecture, uploaded in uploads.items()},
    )
    registered = [
        components.register(
            clients.gg,
            component.folder,
            names.of(component),
            component.values(names, made),
            region,
            account,
            options.bump,
            architectures=component.architectures(made),
        )
        for component in COMPONENTS
    ]
    release = releases.roll_out(outputs, clients.gg, clients.watch, registered, options.rollout, progress, on_rollout)
    held_by_role = (("champion", held.champion), ("challenger", held.challenger))
    return Deployed(
        release,
        published.image,
        published.pushed,
        {architecture: uploaded.uri for architecture, uploaded in uploads.items()},
        any(uploaded.created for uploaded in uploads.values()),
        {"uploaded": held.uploaded, **{role: asdict(m) for role, m in held_by_role if m}},
    )
