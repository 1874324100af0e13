"""What each command does, on whichever target it is given (scripts/targets.py says how the two differ).

The command line (scripts/cli.py) parses, calls one function here and renders what it returns: a frozen dataclass
whose `record()` is the `--json` document (scripts/records.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from scripts import aws, logs, pipeline, platforms, product, targets, tfoutputs
from scripts.building import engine, image
from scripts.cloud import device, infra, plans
from scripts.fleet import pacing, releases, rollout, teardown
from scripts.local import demo, sandbox
from scripts.monitoring import monitor as monitoring
from scripts.progress import Progress, step


@dataclass(frozen=True)
class EngineChecked:
    engine_version: str
    base_image: str
    built_images_removed: int | None = None  # with `cold`

    def record(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Destroyed:
    removed: teardown.Removed | None  # None: nothing was applied
    local_cloud_stopped: bool | None = None  # None: not a local cloud, or one kept

    def record(self) -> dict[str, Any]:
        stopped = {} if self.local_cloud_stopped is None else {"local_cloud_stopped": self.local_cloud_stopped}
        return {**(self.removed.record() if self.removed else {}), **stopped}


def check_engine(cold: bool, progress: Progress) -> EngineChecked:
    client = engine.ensure_engine(progress=progress)
    base = engine.ensure_base_image(client, progress=progress)
    removed = engine.remove_built_images(client) if cold else None
    return EngineChecked(client.version().get("Version", "?"), base, removed)


def build_image(tag: str, progress: Progress, platform: str | None = None) -> image.BuiltImage:
    target = platforms.named(platform) if platform else None
    return image.build(engine.ensure_engine(progress=progress), tag, progress, target)


def run_demo(
    model: Path,
    messages: int,
    interval: float,
    timeout: float,
    progress: Progress,
    on_prediction: Progress,
    names: product.Components = product.DEMO,
) -> demo.DemoResult:
    client = engine.ensure_engine(progress=progress)
    result = demo.run(client, model, messages, interval, timeout, progress, on_prediction, names)
    if result.core_exit_code != 0 or result.containers_left:
        raise demo.DemoError(
            f"localgg exited with {result.core_exit_code} and left {result.containers_left} "
            f"container(s) named {names.subscriber}"
        )
    return result


def plan(target: targets.Target, progress: Progress) -> plans.Planned:
    return plans.plan(target.reach(progress).space, progress)


def move_state(target: targets.Target, to: str, progress: Progress) -> infra.StateMoved:
    """The stack's Terraform state moved to S3 (the bucket made if need be) or to this disk."""
    return infra.move_state(target.reach(progress).changing(), to, progress)


def apply(target: targets.Target, progress: Progress) -> tfoutputs.Outputs:
    return target.reach(progress).applied(progress)


def deploy(
    target: targets.Target,
    options: pipeline.Options,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> targets.Proven:
    """Build and publish (for the platforms the target's devices need), deploy to the stack the target provisions
    (the images build while it does), follow, and prove."""
    stack = target.reach(progress)
    options = replace(options, platforms=stack.platforms(options.platforms))
    client = engine.ensure_engine(progress=progress)
    prepared = pipeline.prepare(options, client, progress)  # the images build while Terraform applies
    outputs = stack.provisioned(progress)
    rollout_options = stack.followed(options.rollout)
    session = stack.session(outputs.region)
    clients = pipeline.Clients(
        aws.client(session, "greengrassv2"),
        aws.client(session, "s3"),
        aws.client(session, "ecr"),
        client,
        pacing.Watch.of(session, rollout_options.request_rate),
    )
    followed = replace(options, rollout=rollout_options)
    workdir = product.REPO / "build" / "deploy"
    return stack.proven(
        outputs,
        rollout_options.dry_run,
        lambda: pipeline.deploy(outputs, clients, followed, progress, on_rollout, workdir, prepared),
    )


def promote(
    target: targets.Target,
    rollout_options: releases.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> targets.Proven:
    """The deployed challenger becomes the champion (one model version, one deployment), proven like a deploy."""
    return _redeploy(target, releases.promote, rollout_options, progress, on_rollout)


def rollback(
    target: targets.Target,
    rollout_options: releases.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> targets.Proven:
    """The group's previous desired state, deployed again and followed, proven like a deploy."""
    return _redeploy(target, releases.rollback, rollout_options, progress, on_rollout)


def _redeploy(
    target: targets.Target,
    action: Callable[..., targets.Released],
    rollout_options: releases.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> targets.Proven:
    """A deployment made from what the group already runs (no build, no upload), followed and proven."""
    stack = target.reach(progress)
    outputs = stack.outputs()
    rollout_options = stack.followed(rollout_options)
    session = stack.session(outputs.region)
    gg, watch = aws.client(session, "greengrassv2"), pacing.Watch.of(session, rollout_options.request_rate)
    return stack.proven(
        outputs, rollout_options.dry_run, lambda: action(outputs, gg, watch, rollout_options, progress, on_rollout)
    )


def destroy(
    target: targets.Target,
    keep_infrastructure: bool,
    timeout: float,
    progress: Progress,
    force: bool = False,
    approve: Callable[[str, str], bool] = lambda account, question: False,
) -> Destroyed:
    """Everything the stack holds, then the stack, once the target approves (a real account asks `approve(account,
    question)`); the target then does what ends it (the local cloud stops)."""
    stack = target.find(progress)
    if stack is None:  # nothing runs: a dead local cloud's folder is all there is to clear
        sandbox.stop(progress)
        progress("local cloud: not running; nothing to destroy")
        return Destroyed(None, False)
    stack.check_destroy(keep_infrastructure)
    try:
        outputs = stack.outputs()
    except tfoutputs.OutputsError as exc:
        return Destroyed(None, stack.nothing_applied(exc, force, progress))
    session = stack.session(outputs.region)
    gg, s3, ecr, iot = (aws.client(session, service) for service in ("greengrassv2", "s3", "ecr", "iot"))
    # The installer's certificates and alias policy hold Terraform's things and policies: they go with the
    # infrastructure, and a real account's user is told which before anything is deleted.
    made = teardown.InstallerMade() if keep_infrastructure else teardown.installer_made(iot, outputs)
    stack.approve_destroy(outputs, keep_infrastructure, made, approve)
    watch = pacing.Watch.of(session)

    def infrastructure() -> None:
        if not keep_infrastructure:
            teardown.remove_installer_made(iot, made, progress)
            infra.destroy(stack.space, progress)

    removed = teardown.destroy(
        outputs, gg, watch, s3, ecr, progress, lambda view: None, infrastructure, timeout, stack.poll_interval
    )
    return Destroyed(removed, None if keep_infrastructure else stack.destroyed(force, progress))


def join_device(target: targets.Target, thing: str, csr: bool, progress: Progress) -> device.Joining:
    """How `thing` joins the stack (scripts/cloud/device.py), from the target's outputs."""
    outputs = target.reach(progress).outputs()
    return device.joining(outputs, thing, csr, product.REPO / "build" / "device" / thing)


def monitor(target: targets.Target, since: str, thing: str, progress: Progress) -> monitoring.Monitored:
    """The group's telemetry of the last `since` from the account's S3, merged and judged (scripts.monitoring)."""
    stack = target.find(progress)
    if stack is None:
        raise sandbox.LocalCloudError("the local cloud is not running: `make deploy` starts it")
    outputs = stack.outputs()
    s3 = aws.client(stack.session(outputs.region), "s3")
    with step(progress, f"reading the telemetry of the last {since}"):
        return monitoring.monitor(s3, outputs, since, thing, product.REPO / "build" / "monitor")


@dataclass(frozen=True)
class Logged:
    lines: list[logs.Line]
    followed: bool  # the lines were printed as they came

    def record(self) -> dict[str, Any]:
        return {**logs.record(self.lines), "followed": self.followed}


def show_logs(
    target: targets.Target,
    thing: str,
    kind: str,
    since: str,
    grep: str,
    follow: bool,
    say: Callable[[logs.Line], None],
    progress: Progress,
) -> Logged:
    """The components' log lines of the last `since` on every device (or `thing`); with `follow`, then each new one
    as it is written, said at once, until Ctrl-C."""
    stack = target.find(progress)
    if stack is None:
        raise sandbox.LocalCloudError("the local cloud is not running: `make deploy` starts it")
    names = stack.outputs().components
    files = logs.files(stack.log_folders(), names, thing, kind)
    if not follow:
        return Logged(logs.since(monitoring.parse_since(since), files, grep), False)
    follower = logs.Follower(files, grep)
    for line in logs.since(monitoring.parse_since(since), files, grep):
        say(line)
    with contextlib.suppress(KeyboardInterrupt):
        logs.follow(follower, say)
    return Logged([], True)


def status(target: targets.Target, progress: Progress) -> releases.Status:
    stack = target.find(progress)
    if stack is None:
        raise sandbox.LocalCloudError("the local cloud is not running: `make deploy` starts it")
    outputs = stack.outputs()
    session = stack.session(outputs.region)
    found = releases.status(outputs, aws.client(session, "greengrassv2"), pacing.Watch.of(session))
    # Where the devices' subscriber logs can be read, they say what a real fleet publishes: drops on edgeml/errors,
    # agreement on edgeml/shadow.
    logs = stack.subscriber_logs(outputs)
    if not logs:
        return found
    dropped = {thing: product.dropped(log) for thing, log in logs.items()}
    held = found.models
    if held is not None and "challenger" in held:
        held = {**held, "agreement": {thing: product.last_agreement(log) for thing, log in logs.items()}}
    return replace(found, models=held, dropped=dropped)
