"""A release: a desired state deployed to the thing group, followed across its devices and watched for the health
window; a rollback to the last good one; a challenger promoted. Also the group's status, read the same way.

Nothing here builds or uploads: what a release deploys is already registered (scripts/publishing/components.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from scripts import tfoutputs
from scripts.fleet import deployments, health, images, pacing, rollout
from scripts.progress import Progress
from scripts.publishing import components, models

DEPLOYMENT_NAME = "edgeml"


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
class Release:
    """A desired state deployed (or found deployed already) and followed across the group."""

    changes: tuple[str, ...]
    deployment: str | None = None  # None: nothing changed (the current one was followed), or a dry run
    fleet: dict[str, Any] | None = None  # the group's counts (rollout.FleetView.record)
    devices: tuple[dict[str, Any], ...] = ()  # each device in detail (device_record)
    components: dict[str, dict[str, Any]] | None = None  # what was registered for it: version, created

    def record(self) -> dict[str, Any]:
        made = {"components": self.components} if self.components is not None else {}
        followed = {"deployment": self.deployment, "fleet": self.fleet, "devices": list(self.devices)}
        return {**made, "changes": list(self.changes), **followed}


@dataclass(frozen=True)
class RolledBack:
    release: Release
    came_from: str
    went_to: str
    reason: str

    def record(self) -> dict[str, Any]:
        return {
            **self.release.record(),
            "rollback": {"from": self.came_from, "to": self.went_to, "reason": self.reason},
        }


@dataclass(frozen=True)
class Promoted:
    release: Release
    promoted: models.StoredModel
    retired: models.StoredModel

    def record(self) -> dict[str, Any]:
        return {"promoted": asdict(self.promoted), "retired": asdict(self.retired), **self.release.record()}


def roll_out(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: pacing.Watch,
    registered: list[components.Registered],
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Release:
    """The group's current deployment with `registered` in it, unless that changes nothing, followed across the
    group."""
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
    release = _deploy_and_follow(
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
    )
    made = {item.name: {"version": item.version, "created": item.created} for item in registered}
    return replace(release, components=made)


def _deploy_and_follow(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: pacing.Watch,
    before: deployments.Components,
    after: deployments.Components,
    replaced: str | None,
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
    force: bool = False,
    wanted: str = "the new release",
) -> Release:
    """A deployment of `after` replacing `replaced`, followed, then the group watched for the health window. When
    it changes nothing (and `force` does not ask for one anyway), no deployment is made, but the current one is
    followed the same way: an exit status says whether the devices run the desired state and are healthy, never
    only whether the tooling had something to do."""
    changes = deployments.changes(before, after)
    release = Release(tuple(str(change) for change in changes))
    for change in changes:
        progress(f"  {change}")
    if rollout_options.dry_run:
        progress("dry run: no deployment created")
        return release
    group = outputs.thing_group_arn
    watched = {name for name in after if name in outputs.components.names} or set(outputs.components.names)
    if not changes and not force and replaced is not None:
        progress(
            f"{outputs.thing_group_name} already wants these versions (deployment {replaced}): checking its devices"
        )
        try:
            return _followed(release, outputs, watch, replaced, watched, rollout_options, on_rollout, 0.0, progress)
        except (rollout.RolloutError, health.HealthError) as exc:
            raise type(exc)(
                f"{exc}\nNothing changed since, so no deployment was made: `make deploy REDEPLOY=1` deploys these "
                "versions again (which restarts a BROKEN component), `make rollback` returns to the last good state"
            ) from None
    policies = rollout_options.policies
    images.check_present(watch, outputs, after, wanted)
    deployment_id = deployments.create(gg, group, DEPLOYMENT_NAME, after, policies, replaced)
    release = replace(release, deployment=deployment_id)
    progress(
        f"deployment {deployment_id} created for {outputs.thing_group_name} (rollout {policies.rollout}); "
        "following the devices"
    )
    try:
        window = rollout_options.health_window
        followed = _followed(
            release, outputs, watch, deployment_id, watched, rollout_options, on_rollout, window, progress
        )
        deployments.mark(gg, outputs.region, outputs.account_id, deployment_id, deployments.HEALTHY)
        return followed
    except (rollout.RolloutError, health.HealthError) as exc:
        if isinstance(exc, health.HealthError):
            deployments.mark(gg, outputs.region, outputs.account_id, deployment_id, deployments.UNHEALTHY)
        if not rollout_options.auto_rollback:
            raise
        progress(f"deployment {deployment_id} failed; AUTO_ROLLBACK: deploying the group's last good state")
        back = rollback(outputs, gg, watch, replace(rollout_options, auto_rollback=False), progress, on_rollout)
        raise type(exc)(f"{exc}\nRolled back: {back.reason}") from None


def _followed(
    release: Release,
    outputs: tfoutputs.Outputs,
    watch: pacing.Watch,
    deployment_id: str,
    watched: set[str],
    rollout_options: Rollout,
    on_rollout: Callable[[rollout.FleetView], None],
    health_window: float,
    progress: Progress,
) -> Release:
    """The deployment followed until every device finished it, then the health window (a zero one still looks
    once)."""
    group = outputs.thing_group_arn
    view = rollout.follow(
        watch, group, deployment_id, watched, rollout_options.timeout, on_rollout, rollout_options.poll_interval
    )
    if health_window > 0:
        progress(f"health window: watching {outputs.thing_group_name} for {health_window:g} s before it counts as good")
    health.watch(watch, group, watched, health_window, rollout_options.poll_interval, rollout_options.log_of)
    devices = tuple(device_record(d) for d in view.devices or view.failures)
    return replace(release, fleet=view.record(), devices=devices)


def rollback(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: pacing.Watch,
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> RolledBack:
    """The group's last good state (the newest earlier deployment every device took and stayed healthy on) deployed
    again as a new deployment, followed like any other, and which and why."""
    latest, target, passed = deployments.last_good(gg, watch.iot.describe_job, outputs.thing_group_arn)
    skipped = "".join(f"; passed over {r.deployment_id} ({r.verdict})" for r in passed)
    reason = f"to deployment {target.deployment_id}, the last one every device took and stayed healthy on{skipped}"
    # A good latest one is followed again; any other is replaced by a new deployment, even of the same versions as
    # a failed latest one: that resets its devices.
    there = latest.good and latest.components == target.components
    if there:
        progress(f"{outputs.thing_group_name} already runs that state: deployment {latest.deployment_id} is good")
    else:
        progress(f"rolling {outputs.thing_group_name} back from deployment {latest.deployment_id} {reason}")
    release = _deploy_and_follow(
        outputs,
        gg,
        watch,
        latest.components,
        target.components,
        latest.deployment_id,
        rollout_options,
        progress,
        on_rollout,
        force=not there,
        wanted=f"the rollback to deployment {target.deployment_id}",
    )
    return RolledBack(release, latest.deployment_id, target.deployment_id, reason)


def promote(
    outputs: tfoutputs.Outputs,
    gg: Any,
    watch: pacing.Watch,
    rollout_options: Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Promoted:
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
    return Promoted(
        roll_out(outputs, gg, watch, registered, rollout_options, progress, on_rollout), challenger, champion
    )


def deployed_models(outputs: tfoutputs.Outputs, gg: Any) -> tuple[str, dict[str, models.StoredModel]]:
    """The model component's version in the group's current deployment, and the models it holds by role."""
    name = outputs.components.model
    _, current = deployments.current(gg, outputs.thing_group_arn)
    version = (current.get(name) or {}).get("componentVersion")
    if version is None:
        raise models.NothingToPromote(f"{outputs.thing_group_name} runs no {name}: `make deploy` first")
    arn = components.component_arn(outputs.region, outputs.account_id, name)
    return str(version), models.held_by(components.registered_recipe(gg, f"{arn}:versions:{version}"))


@dataclass(frozen=True)
class Status:
    """The group's current deployment across its devices, and the models it runs."""

    deployment: str | None
    components: dict[str, Any]  # version by component
    fleet: dict[str, Any] | None  # a large group's counts
    devices: tuple[dict[str, Any], ...]  # every device of a small group, the failing ones of a large one
    models: dict[str, Any] | None = None  # the model component's version and its models by role
    dropped: dict[str, int] | None = None  # messages each subscriber dropped, where its log can be read

    def record(self) -> dict[str, Any]:
        shown = {"deployment": self.deployment, "components": self.components, "fleet": self.fleet}
        optional = {key: value for key, value in (("models", self.models), ("dropped", self.dropped)) if value}
        return {**shown, "devices": list(self.devices), **optional}


def status(outputs: tfoutputs.Outputs, gg: Any, watch: pacing.Watch) -> Status:
    """Each device in detail for a small group, the failing ones for a large one."""
    group = outputs.thing_group_arn
    deployment_id, current = deployments.current(gg, group)
    watched = set(current) or set(outputs.components.names)
    fleet: dict[str, Any] | None = None
    devices: list[rollout.Device] | None = None
    if deployment_id is not None:
        follower = rollout.Follower(watch, group, deployment_id, watched)
        if len(follower.things) > rollout.SMALL_GROUP:
            view = follower.poll()
            fleet, devices = view.record(), list(view.failures)
    if devices is None:
        devices = rollout.snapshot(watch, group, deployment_id, watched)
    held: dict[str, Any] | None = None
    if outputs.components.model in current:
        version, roles = deployed_models(outputs, gg)
        held = {"version": version, **{role: asdict(m) for role, m in roles.items()}}
    versions = {name: spec.get("componentVersion") for name, spec in current.items()}
    return Status(deployment_id, versions, fleet, tuple(device_record(d) for d in devices), held)


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
