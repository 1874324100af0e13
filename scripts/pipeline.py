"""`deploy`: Terraform outputs -> image -> artifacts -> component versions -> deployment -> rollout.

Safe to run again and again: an image already in the registry is not pushed, an artifact already in S3 is not
uploaded, an unchanged recipe reuses its version, and an unchanged desired state creates no deployment.
Recipes are checked before anything is uploaded.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import docker
import docker.errors

from scripts import tfoutputs
from scripts.building import image
from scripts.fleet import deployments, health, rollout
from scripts.platforms import BY_GREENGRASS, PLATFORMS, Platform
from scripts.product import Components
from scripts.progress import Progress, step
from scripts.publishing import artifacts, components, modelfile, models, recipes, registry

DEPLOYMENT_NAME = "edgeml"


@dataclass(frozen=True)
class Clients:
    gg: Any
    s3: Any
    ecr: Any
    docker: docker.DockerClient
    watch: rollout.Watch


@dataclass(frozen=True)
class Rollout:
    """How a deployment is made and followed."""

    dry_run: bool = False
    timeout: float = 900.0
    poll_interval: float = 5.0
    policies: deployments.Policies = field(default_factory=deployments.Policies)
    request_rate: float = 5.0  # API requests a second while following, at most
    # After every device SUCCEEDED, how long the group is watched for a component that breaks (scripts/fleet/health.py).
    health_window: float = 60.0
    auto_rollback: bool = False  # on a failure, deploy the group's last good state
    redeploy: bool = False  # a new deployment even when it changes nothing (resets BROKEN components)
    log_of: Callable[[str, str], str] = lambda thing, component: f"/greengrass/v2/logs/{component}.log on {thing}"


@dataclass(frozen=True)
class Options:
    model: Path
    challenger: Path | None = None
    bump: str = "patch"
    rollout: Rollout = field(default_factory=Rollout)
    # The device platforms to build and publish for: each gets its image and publisher zip, and a manifest in the
    # recipes; a device of another CPU is refused by the service's own resolution (no manifest for it).
    platforms: tuple[Platform, ...] = tuple(PLATFORMS.values())


def check_templates(names: Components) -> None:
    """Render every template with stand-in values: a broken recipe stops the run before any upload."""
    stand_in = {"component_version": "1.0.0"}
    recipes.render_component(
        "publisher",
        {**stand_in, "component_name": names.publisher},
        {arch: {"artifact_uri": f"s3://bucket/prefix/{arch}/publisher.zip"} for arch in BY_GREENGRASS},
    )
    recipes.render_component(
        "subscriber",
        {
            **stand_in,
            "component_name": names.subscriber,
            **names.subscriber_values("registry/repository@sha256:" + "0" * 64),
        },
    )
    recipes.render_component(
        "model",
        {**stand_in, **models.component_values(names.model, models.StoredModel("s3://b/m/model.json", "0" * 64), None)},
    )


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
    uploaded: bool  # False: every file was already there


def publish_models(
    clients: Clients,
    outputs: tfoutputs.Outputs,
    champion: Path,
    challenger: Path | None,
    folder: Path,
    progress: Progress,
) -> PublishedModels:
    """The model files as the model component's artifacts, stored under their SHA-256 and named after it
    (`model-<sha256 prefix>.json`) whatever the files' own names: the same model is always the same artifact,
    champion or challenger, so a promoted challenger deployed again as the champion changes nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    stored: dict[str, models.StoredModel] = {}
    created = False
    for role, path in (("champion", champion), ("challenger", challenger)):
        if path is None:
            continue
        sha256 = artifacts.sha256(path)
        staged = folder / f"model-{sha256[:12]}{path.suffix}"
        shutil.copyfile(path, staged)
        uploaded = artifacts.upload(
            clients.s3, outputs.artifact_bucket, outputs.artifact_prefix, outputs.components.model, staged
        )
        progress(f"{role} model {sha256[:12]}: {'uploaded' if uploaded.created else 'already in S3'}")
        stored[role] = models.StoredModel(uploaded.uri, sha256, modelfile.metrics(path))
        created = created or uploaded.created
    return PublishedModels(stored["champion"], stored.get("challenger"), created)


def prepare(options: Options, client: docker.DockerClient, progress: Progress) -> image.Builds:
    """The models checked, then the images' builds started: what a deploy does before it needs the stack (a first
    one builds while Terraform applies). Nothing is built or sent for a model the devices could not serve."""
    for path in filter(None, (options.model, options.challenger)):
        predictions = modelfile.check(path)
        progress(f"model {path}: scores the publisher's records ({len(predictions)} predictions)")
    return image.Builds(client, options.platforms, progress)


def deploy(
    outputs: tfoutputs.Outputs,
    clients: Clients,
    options: Options,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
    workdir: Path,
    builds: image.Builds | None = None,
) -> dict[str, Any]:
    """`builds`: what `prepare` started (None: prepared here)."""
    region, account, names = outputs.region, outputs.account_id, outputs.components
    check_templates(names)
    builds = builds or prepare(options, clients.docker, progress)
    published = publish_image(clients, outputs.repository_url, builds, progress)
    held = publish_models(clients, outputs, options.model, options.challenger, workdir / "models", progress)
    model_values = models.component_values(names.model, held.champion, held.challenger)
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
    registered = [
        components.register(clients.gg, "model", names.model, model_values, region, account, options.bump),
        components.register(
            clients.gg,
            "subscriber",
            names.subscriber,
            names.subscriber_values(published.image),
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
    result = roll_out(outputs, clients.gg, clients.watch, registered, options.rollout, progress, on_rollout)
    return {
        "image": published.image,
        "image_pushed": published.pushed,
        "artifacts": {architecture: uploaded.uri for architecture, uploaded in uploads.items()},
        "artifacts_uploaded": any(uploaded.created for uploaded in uploads.values()),
        "models": {
            "uploaded": held.uploaded,
            **{role: asdict(m) for role, m in (("champion", held.champion), ("challenger", held.challenger)) if m},
        },
        **result,
    }


def roll_out(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: rollout.Watch,
    registered: list[components.Registered],
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> dict[str, Any]:
    """The group's current deployment with `registered` in it, unless that changes nothing, followed across the
    group: `components`, `changes`, `deployment`, `fleet` and `devices`."""
    names = outputs.components
    progress(
        "components: "
        + ", ".join(f"{item.name} {item.version} ({'new' if item.created else 'unchanged'})" for item in registered)
    )
    replaced, before = deployments.current(gg, outputs.thing_group_arn)
    wanted: deployments.Components = {item.name: {"componentVersion": item.version} for item in registered}
    if names.model in wanted:
        # A new model version's defaults would not replace the configuration already on the device: reset to them.
        wanted[names.model]["configurationUpdate"] = {"reset": [""]}
    result: dict[str, Any] = {
        "components": {item.name: {"version": item.version, "created": item.created} for item in registered}
    }
    return {
        **result,
        **_deploy_and_follow(
            outputs,
            gg,
            watch,
            before,
            deployments.desired(before, wanted),
            replaced,
            rollout_options,
            progress,
            on_rollout,
            force=rollout_options.redeploy,
        ),
    }


def _deploy_and_follow(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: rollout.Watch,
    before: deployments.Components,
    after: deployments.Components,
    replaced: str | None,
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
    force: bool = False,
) -> dict[str, Any]:
    """A deployment of `after` replacing `replaced`, followed, then the group watched for the health window:
    `changes`, `deployment`, `fleet` and `devices`. When it changes nothing (and `force` does not ask for one
    anyway), no deployment is made, but the current one is followed the same way: an exit status says whether the
    devices run the desired state and are healthy, never only whether the tooling had something to do."""
    changes = deployments.changes(before, after)
    result: dict[str, Any] = {
        "changes": [str(change) for change in changes],
        "deployment": None,
        "fleet": None,
        "devices": [],
    }
    for change in changes:
        progress(f"  {change}")
    if rollout_options.dry_run:
        progress("dry run: no deployment created")
        return result
    group = outputs.thing_group_arn
    watched = {name for name in after if name in outputs.components.names} or set(outputs.components.names)
    if not changes and not force and replaced is not None:
        progress(
            f"{outputs.thing_group_name} already wants these versions (deployment {replaced}): checking its devices"
        )
        try:
            return {**result, **_followed(outputs, gg, watch, replaced, watched, rollout_options, on_rollout, 0.0)}
        except (rollout.RolloutError, health.HealthError) as exc:
            raise type(exc)(
                f"{exc}\nNothing changed since, so no deployment was made: `make deploy REDEPLOY=1` deploys these "
                "versions again (which restarts a BROKEN component), `make rollback` returns to the last good state"
            ) from None
    policies = rollout_options.policies
    deployment_id = deployments.create(gg, group, DEPLOYMENT_NAME, after, policies, replaced)
    result["deployment"] = deployment_id
    progress(
        f"deployment {deployment_id} created for {outputs.thing_group_name} (rollout {policies.rollout}); "
        "following the devices"
    )
    try:
        return {
            **result,
            **_followed(
                outputs, gg, watch, deployment_id, watched, rollout_options, on_rollout, rollout_options.health_window
            ),
        }
    except (rollout.RolloutError, health.HealthError) as exc:
        if isinstance(exc, health.HealthError):
            deployments.mark_unhealthy(gg, outputs.region, outputs.account_id, deployment_id)
        if not rollout_options.auto_rollback:
            raise
        progress(f"deployment {deployment_id} failed; AUTO_ROLLBACK: deploying the group's last good state")
        back = rollback(outputs, gg, watch, replace(rollout_options, auto_rollback=False), progress, on_rollout)
        raise type(exc)(f"{exc}\nRolled back: {back.get('rollback', {}).get('reason', 'done')}") from None


def _followed(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: rollout.Watch,
    deployment_id: str,
    watched: set[str],
    rollout_options: Rollout,
    on_rollout: Callable[[rollout.FleetView], None],
    health_window: float,
) -> dict[str, Any]:
    """The deployment followed until every device finished it, then the health window (a zero one still looks
    once): `fleet` and `devices`."""
    group = outputs.thing_group_arn
    view = rollout.follow(
        watch, group, deployment_id, watched, rollout_options.timeout, on_rollout, rollout_options.poll_interval
    )
    health.watch(watch, group, watched, health_window, rollout_options.poll_interval, rollout_options.log_of)
    return {"fleet": view.record(), "devices": [device_record(d) for d in view.devices or view.failures]}


def rollback(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: rollout.Watch,
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> dict[str, Any]:
    """The group's last good state (the newest earlier deployment every device took and stayed healthy on) deployed
    again as a new deployment, followed like any other; `rollback` says which and why."""
    latest, target, passed = deployments.last_good(gg, watch.iot.describe_job, outputs.thing_group_arn)
    skipped = "".join(f"; passed over {r.deployment_id} ({r.verdict})" for r in passed)
    reason = f"to deployment {target.deployment_id}, the last one every device took and stayed healthy on{skipped}"
    record = {"from": latest.deployment_id, "to": target.deployment_id, "reason": reason}
    if latest.good and latest.components == target.components:
        progress(f"{outputs.thing_group_name} already runs that state: deployment {latest.deployment_id} is good")
        result = _deploy_and_follow(
            outputs, gg, watch, latest.components, target.components, latest.deployment_id, rollout_options, progress,
            on_rollout,
        )  # fmt: skip
        return {**result, "rollback": record}
    progress(f"rolling {outputs.thing_group_name} back from deployment {latest.deployment_id} {reason}")
    result = _deploy_and_follow(
        outputs,
        gg,
        watch,
        latest.components,
        target.components,
        latest.deployment_id,
        rollout_options,
        progress,
        on_rollout,
        force=True,  # the same versions as a failed latest one are still a new deployment: they reset its devices
    )
    return {**result, "rollback": record}


def promote(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: rollout.Watch,
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> dict[str, Any]:
    """The challenger of the model version the group runs becomes the champion, alone, in one new model version
    and one deployment (its artifact is already in S3: nothing is uploaded)."""
    version, held = deployed_models(outputs, gg)
    if "challenger" not in held:
        raise models.NothingToPromote(
            f"{outputs.components.model} {version} has no challenger: deploy one with CHALLENGER_PATH=<file>"
        )
    champion, challenger = held["champion"], held["challenger"]
    progress(f"promoting the challenger ({challenger.describe()}) over the champion ({champion.describe()})")
    values = models.component_values(outputs.components.model, challenger, None)
    registered = [
        components.register(gg, "model", outputs.components.model, values, outputs.region, outputs.account_id)
    ]
    result = roll_out(outputs, gg, watch, registered, rollout_options, progress, on_rollout)
    return {"promoted": asdict(challenger), "retired": asdict(champion), **result}


def deployed_models(outputs: tfoutputs.Outputs, gg: Any) -> tuple[str, dict[str, models.StoredModel]]:
    """The model component's version in the group's current deployment, and the models it holds by role."""
    name = outputs.components.model
    _, current = deployments.current(gg, outputs.thing_group_arn)
    version = (current.get(name) or {}).get("componentVersion")
    if version is None:
        raise models.NothingToPromote(f"{outputs.thing_group_name} runs no {name}: `make deploy` first")
    arn = components.component_arn(outputs.region, outputs.account_id, name)
    return str(version), models.held_by(components.registered_recipe(gg, f"{arn}:versions:{version}"))


def status(outputs: tfoutputs.Outputs, gg: Any, watch: rollout.Watch) -> dict[str, Any]:
    """The group's current deployment across its devices (each in detail for a small group, the failing ones
    for a large one), and the models it runs."""
    group = outputs.thing_group_arn
    deployment_id, current = deployments.current(gg, group)
    watched = set(current) or set(outputs.components.names)
    result: dict[str, Any] = {
        "deployment": deployment_id,
        "components": {name: spec.get("componentVersion") for name, spec in current.items()},
        "fleet": None,
    }
    if deployment_id is not None:
        follower = rollout.Follower(watch, group, deployment_id, watched)
        if len(follower.things) > rollout.SMALL_GROUP:
            view = follower.poll()
            result["fleet"] = view.record()
            result["devices"] = [device_record(d) for d in view.failures]
    if "devices" not in result:
        result["devices"] = [device_record(d) for d in rollout.snapshot(watch, group, deployment_id, watched)]
    if outputs.components.model in current:
        version, held = deployed_models(outputs, gg)
        result["models"] = {"version": version, **{role: asdict(m) for role, m in held.items()}}
    return result


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
