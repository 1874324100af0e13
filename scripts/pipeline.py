"""`deploy`: Terraform outputs -> image -> artifacts -> component versions -> deployment -> rollout.

Safe to run again and again: an image already in the registry is not pushed, an artifact already in S3 is not
uploaded, an unchanged recipe reuses its version, and an unchanged desired state creates no deployment.
Recipes are checked before anything is uploaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from scripts import artifacts, components, deployments, image, recipes, registry, rollout, tfoutputs
from scripts.platforms import BY_GREENGRASS, PLATFORMS
from scripts.product import Components
from scripts.progress import Progress

DEPLOYMENT_NAME = "edgeml"


@dataclass(frozen=True)
class Clients:
    gg: Any
    s3: Any
    ecr: Any
    docker: docker.DockerClient


@dataclass(frozen=True)
class Options:
    model: Path
    bump: str = "patch"
    dry_run: bool = False
    rollout_timeout: float = 900.0
    poll_interval: float = 5.0
    policies: deployments.Policies = field(default_factory=deployments.Policies)


def check_templates(names: Components) -> None:
    """Render both templates with stand-in values: a broken recipe stops the run before any upload."""
    stand_in = {"component_version": "1.0.0"}
    recipes.render_component(
        "publisher",
        {**stand_in, "component_name": names.publisher},
        {arch: {"artifact_uri": f"s3://bucket/prefix/{arch}/publisher.zip"} for arch in BY_GREENGRASS},
    )
    recipes.render_component(
        "subscriber",
        {**stand_in, "component_name": names.subscriber, "image": "registry/repository@sha256:" + "0" * 64},
    )


@dataclass(frozen=True)
class Published:
    image: str  # the multi-platform index, pinned by digest
    pushed: bool
    architectures: tuple[str, ...]  # its platforms, in Greengrass's names: the subscriber recipe's manifests


def publish_image(clients: Clients, model: Path, repository_url: str, progress: Progress) -> Published:
    """One image per device platform (another CPU's built under emulation), pushed as one index and pinned by its
    digest; pushed only when its tag (its content) is not in the registry yet."""
    built = [
        image.build(clients.docker, model, image.tag_for(platform), progress, platform)
        for platform in PLATFORMS.values()
    ]
    architectures = tuple(b.architecture for b in built)
    content = hashlib.sha256("".join(b.image_id for b in built).encode()).hexdigest()
    tag = "img-" + content[:16]  # content-derived: tags are immutable in ECR
    credentials = registry.login(clients.docker, clients.ecr, repository_url)
    try:
        digest = clients.docker.images.get_registry_data(f"{repository_url}:{tag}").id
        progress(f"image {repository_url}:{tag} is already in the registry")
        return Published(f"{repository_url}@{digest}", False, architectures)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code not in (401, 403, 404):
            raise registry.PushError(f"cannot query {repository_url}: {exc.explanation or exc}") from exc
    progress(f"pushing {repository_url}:{tag} for {', '.join(PLATFORMS)}")
    pinned = registry.push_index([b.tag for b in built], repository_url, tag, credentials, progress)
    return Published(pinned, True, architectures)


def deploy(
    outputs: tfoutputs.Outputs,
    clients: Clients,
    options: Options,
    progress: Progress,
    on_rollout: Callable[[list[rollout.Device]], None],
    workdir: Path,
) -> dict[str, Any]:
    region, account, names = outputs.region, outputs.account_id, outputs.components
    check_templates(names)
    published = publish_image(clients, options.model, outputs.repository_url, progress)
    uploads = {
        architecture: artifacts.upload(
            clients.s3,
            outputs.artifact_bucket,
            outputs.artifact_prefix,
            names.publisher,
            artifacts.build_publisher_zip(workdir / "publisher" / architecture, architecture),
        )
        for architecture in BY_GREENGRASS
    }
    for architecture, uploaded in uploads.items():
        progress(f"artifact for {architecture}: {uploaded.uri} ({'uploaded' if uploaded.created else 'already there'})")
    registered = [
        components.register(
            clients.gg,
            "subscriber",
            names.subscriber,
            {"image": published.image},
            region,
            account,
            options.bump,
            architectures={architecture: {} for architecture in published.architectures},
        ),
        components.register(
            clients.gg,
            "publisher",
            names.publisher,
            {},
            region,
            account,
            options.bump,
            architectures={arch: {"artifact_uri": uploaded.uri} for arch, uploaded in uploads.items()},
        ),
    ]
    for item in registered:
        progress(f"component {item.name} {item.version} ({'created' if item.created else 'unchanged'})")
    group = outputs.thing_group_arn
    replaced, before = deployments.current(clients.gg, group)
    after = deployments.desired(before, {item.name: item.version for item in registered})
    changes = deployments.changes(before, after)
    result: dict[str, Any] = {
        "image": published.image,
        "image_pushed": published.pushed,
        "artifacts": {architecture: uploaded.uri for architecture, uploaded in uploads.items()},
        "artifacts_uploaded": any(uploaded.created for uploaded in uploads.values()),
        "components": {item.name: {"version": item.version, "created": item.created} for item in registered},
        "changes": [str(change) for change in changes],
        "deployment": None,
        "devices": [],
    }
    for change in changes:
        progress(f"  {change}")
    if not changes:
        progress(f"{outputs.thing_group_name} already runs these versions: no deployment created")
        return result
    if options.dry_run:
        progress("dry run: no deployment created")
        return result
    deployment_id = deployments.create(clients.gg, group, DEPLOYMENT_NAME, after, options.policies, replaced)
    result["deployment"] = deployment_id
    progress(f"deployment {deployment_id} created for {outputs.thing_group_name}; following the devices")
    devices = rollout.follow(
        clients.gg,
        group,
        deployment_id,
        set(names.names),
        options.rollout_timeout,
        on_rollout,
        options.poll_interval,
    )
    result["devices"] = [device_record(d) for d in devices]
    return result


def status(outputs: tfoutputs.Outputs, gg: Any) -> dict[str, Any]:
    """The per-device view of the group's current deployment."""
    group = outputs.thing_group_arn
    deployment_id, current = deployments.current(gg, group)
    devices = rollout.snapshot(gg, group, deployment_id, set(current) or set(outputs.components.names))
    return {
        "deployment": deployment_id,
        "components": {name: spec.get("componentVersion") for name, spec in current.items()},
        "devices": [device_record(d) for d in devices],
    }


def device_record(device: rollout.Device) -> dict[str, Any]:
    return {
        "thing": device.thing,
        "health": device.health,
        "deployment_status": device.execution,
        "reason": device.reason,
        "components": {
            name: {"version": c.version, "state": c.state, "details": c.details}
            for name, c in device.components.items()
        },
    }
