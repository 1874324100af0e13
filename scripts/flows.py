"""What each command does, on whichever target it is given (scripts/targets.py says how the two differ).

The command line (scripts/cli.py) parses, calls one function here and prints what it returns. Results are plain
dicts, the `--json` documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from scripts import aws, pipeline, platforms, product, targets, tfoutputs
from scripts.building import engine, image
from scripts.cloud import device, infra
from scripts.fleet import pacing, releases, rollout, teardown
from scripts.local import demo, sandbox
from scripts.progress import Progress

Result = dict[str, Any]


def check_engine(cold: bool, progress: Progress) -> Result:
    client = engine.ensure_engine(progress=progress)
    base = engine.ensure_base_image(client, progress=progress)
    result: Result = {"engine_version": client.version().get("Version", "?"), "base_image": base}
    if cold:
        result["built_images_removed"] = engine.remove_built_images(client)
    return result


def build_image(tag: str, progress: Progress, platform: str | None = None) -> Result:
    target = platforms.named(platform) if platform else None
    built = image.build(engine.ensure_engine(progress=progress), tag, progress, target)
    return {
        "image": built.tag,
        "architecture": built.architecture,
        "id": built.image_id,
        "size_mb": round(built.size_bytes / 1e6, 1),
        "base_image": built.base_image,
    }


def run_demo(
    model: Path,
    messages: int,
    interval: float,
    timeout: float,
    progress: Progress,
    on_prediction: Progress,
    names: product.Components = product.DEMO,
) -> Result:
    client = engine.ensure_engine(progress=progress)
    result = demo.run(client, model, messages, interval, timeout, progress, on_prediction, names)
    if result.core_exit_code != 0 or result.containers_left:
        raise demo.DemoError(
            f"localgg exited with {result.core_exit_code} and left {result.containers_left} "
            f"container(s) named {names.subscriber}"
        )
    return {
        "predictions": result.predictions,
        "messages": len(result.predictions),
        "seconds": round(result.seconds, 1),
        "containers_left": result.containers_left,
    }


def plan(target: targets.Target, progress: Progress) -> Result:
    return infra.plan(target.reach(progress).space, progress)


def move_state(target: targets.Target, to: str, progress: Progress) -> Result:
    """The stack's Terraform state moved to S3 (the bucket made if need be) or to this disk."""
    return infra.move_state(target.reach(progress).space, to, progress)


def apply(target: targets.Target, progress: Progress) -> Result:
    return asdict(target.reach(progress).applied(progress))


def deploy(
    target: targets.Target,
    options: pipeline.Options,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """Build and publish (for the platforms the target's devices need), deploy to the stack the target provisions
    (the images build while it does), follow, and prove."""
    stack = target.reach(progress)
    options = replace(options, platforms=stack.platforms(options.platforms))
    client = engine.ensure_engine(progress=progress)
    builds = pipeline.prepare(options, client, progress)  # while Terraform applies
    outputs = stack.provisioned(progress)
    rollout_options = stack.followed(options.rollout)
    with stack.proven(outputs, rollout_options.dry_run) as result:
        session = stack.session(outputs.region)
        clients = pipeline.Clients(
            aws.client(session, "greengrassv2"),
            aws.client(session, "s3"),
            aws.client(session, "ecr"),
            client,
            pacing.Watch.of(session, rollout_options.request_rate),
        )
        result.update(
            pipeline.deploy(
                outputs,
                clients,
                replace(options, rollout=rollout_options),
                progress,
                on_rollout,
                product.REPO / "build" / "deploy",
                builds,
            )
        )
    return result


def promote(
    target: targets.Target,
    rollout_options: releases.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """The deployed challenger becomes the champion (one model version, one deployment), proven like a deploy."""
    return _redeploy(target, releases.promote, rollout_options, progress, on_rollout)


def rollback(
    target: targets.Target,
    rollout_options: releases.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """The group's previous desired state, deployed again and followed, proven like a deploy."""
    return _redeploy(target, releases.rollback, rollout_options, progress, on_rollout)


def _redeploy(
    target: targets.Target,
    action: Callable[..., Result],
    rollout_options: releases.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """A deployment made from what the group already runs (no build, no upload), followed and proven."""
    stack = target.reach(progress)
    outputs = stack.outputs()
    rollout_options = stack.followed(rollout_options)
    with stack.proven(outputs, rollout_options.dry_run) as result:
        session = stack.session(outputs.region)
        gg, watch = aws.client(session, "greengrassv2"), pacing.Watch.of(session, rollout_options.request_rate)
        result.update(action(outputs, gg, watch, rollout_options, progress, on_rollout))
    return result


def destroy(
    target: targets.Target,
    keep_infrastructure: bool,
    timeout: float,
    progress: Progress,
    force: bool = False,
    approve: Callable[[str, str], bool] = lambda account, question: False,
) -> Result:
    """Everything the stack holds, then the stack, once the target approves (a real account asks `approve(account,
    question)`); the target then does what ends it (the local cloud stops)."""
    stack = target.find(progress)
    if stack is None:  # nothing runs: a dead local cloud's folder is all there is to clear
        sandbox.stop(progress)
        progress("local cloud: not running; nothing to destroy")
        return {"local_cloud_stopped": False}
    stack.check_destroy(keep_infrastructure)
    try:
        outputs = stack.outputs()
    except tfoutputs.OutputsError as exc:
        return stack.nothing_applied(exc, force, progress)
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

    result = teardown.destroy(
        outputs, gg, watch, s3, ecr, progress, lambda view: None, infrastructure, timeout, stack.poll_interval
    )
    return {**result, **({} if keep_infrastructure else stack.destroyed(force, progress))}


def join_device(target: targets.Target, thing: str, csr: bool, progress: Progress) -> Result:
    """How `thing` joins the stack (scripts/cloud/device.py), from the target's outputs."""
    outputs = target.reach(progress).outputs()
    return device.joining(outputs, thing, csr, product.REPO / "build" / "device" / thing).record()


def status(target: targets.Target, progress: Progress) -> Result:
    stack = target.find(progress)
    if stack is None:
        raise sandbox.LocalCloudError("the local cloud is not running: `make deploy` starts it")
    outputs = stack.outputs()
    session = stack.session(outputs.region)
    result = releases.status(outputs, aws.client(session, "greengrassv2"), pacing.Watch.of(session))
    # Where the devices' subscriber logs can be read, they say what a real fleet publishes: drops on edgeml/errors,
    # agreement on edgeml/shadow.
    logs = stack.subscriber_logs(outputs)
    if logs:
        result["dropped"] = {thing: product.dropped(log) for thing, log in logs.items()}
        if "challenger" in result.get("models", {}):
            result["models"]["agreement"] = {thing: product.last_agreement(log) for thing, log in logs.items()}
    return result
