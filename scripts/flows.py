"""What each command does, against the local cloud or a real account: the one module that tells the two apart.

The command line (scripts/cli.py) parses, calls one function here and prints what it returns; everything a
command decides (which Terraform state, whether to start the local cloud, when predictions prove a deployment)
happens here. Results are plain dicts, the `--json` documents.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from scripts import aws, pipeline, platforms, product, tfoutputs
from scripts.building import engine, image
from scripts.cloud import device, infra, tfstate
from scripts.fleet import rollout, teardown
from scripts.local import demo, localdevices, sandbox
from scripts.progress import Progress

Result = dict[str, Any]
PREDICTIONS_TIMEOUT = 60.0
# The local device polls every second; a real fleet answers on the scale of seconds to minutes.
POLL_INTERVAL = {"local": 1.0, "aws": 5.0}
# How long the group is watched after every device SUCCEEDED (scripts/fleet/health.py): a real fleet's components take
# longer to start and fail; the local core's crash within seconds.
HEALTH_WINDOW = {"local": 10.0, "aws": 60.0}


@dataclass(frozen=True)
class Target:
    """Where a command acts: the local cloud (the default), or a real account, whose outputs come from a saved
    `terraform output -json` file, an applied Terraform folder, or terraform/."""

    name: str = "local"
    outputs_file: Path | None = None
    terraform_dir: Path | None = None
    local_devices: tuple[platforms.Platform, ...] | None = None  # None: whichever the local cloud runs
    local_fleet: localdevices.LocalFleet | None = None  # None: whichever hollow devices the local cloud runs

    @classmethod
    def of(
        cls,
        name: str | None,
        outputs_file: Path | None = None,
        terraform_dir: Path | None = None,
        local_devices: str | None = None,
        local_fleet: localdevices.LocalFleet | None = None,
    ) -> Target:
        explicit = outputs_file or terraform_dir
        chosen = name or ("aws" if explicit else "local")
        if chosen == "local" and explicit:
            raise infra.InfraError("--outputs and --terraform-dir are for AWS; the local cloud has its own state")
        if chosen == "aws" and (local_devices or local_fleet):
            raise infra.InfraError("--local-* options are for the local cloud; an account's devices are its own")
        devices = tuple(localdevices.parse(local_devices)) if local_devices else None
        return cls(chosen, outputs_file, terraform_dir, devices, local_fleet)


def _workspace(target: Target, progress: Progress) -> infra.Workspace:
    """The target's workspace. Local: the running cloud (started if need be), with this process's environment
    pointed at it, since boto3 and python-terraform read endpoints and the Terraform data folder there."""
    if target.name == "aws":
        return infra.Workspace("aws", workdir=target.terraform_dir or infra.WORKDIR)
    space = infra.local_workspace(progress, target.local_devices, target.local_fleet)
    os.environ.update(space.env)
    return space


def _existing_workspace(target: Target, progress: Progress) -> infra.Workspace | None:
    """As `_workspace`, but None rather than starting a local cloud that is not running."""
    return None if target.name == "local" and sandbox.find() is None else _workspace(target, progress)


def _outputs(target: Target, space: infra.Workspace) -> tfoutputs.Outputs:
    if target.outputs_file:
        return tfoutputs.from_file(target.outputs_file)
    return infra.outputs(space)


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


def plan(target: Target, progress: Progress) -> Result:
    return infra.plan(_workspace(target, progress), progress)


def move_state(target: Target, to: str, progress: Progress) -> Result:
    """The stack's Terraform state moved to S3 (the bucket made if need be) or to this disk."""
    return infra.move_state(_workspace(target, progress), to, progress)


def apply(target: Target, progress: Progress) -> Result:
    space = _workspace(target, progress)
    return asdict(_joined(space, infra.apply(space, progress), progress))


def _joined(space: infra.Workspace, outputs: tfoutputs.Outputs, progress: Progress) -> tfoutputs.Outputs:
    """The local cloud's devices provisioned with the flags `make device` prints for them, once Terraform made
    their policies: the same way in as a real device's."""
    if space.cloud is not None:
        for thing in space.cloud.devices:
            joining = device.plan(outputs, thing)
            sandbox.install(space.cloud, sandbox.ROOT, thing, joining.installer_args(), progress)
    return outputs


def deploy(
    target: Target,
    options: pipeline.Options,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """Local: apply, deploy, then a prediction from every device as proof. AWS: deploy with the applied stack's
    outputs."""
    space = _workspace(target, progress)
    if space.cloud:
        # Built for the CPUs of the local cloud's devices only: another CPU's image is minutes under emulation.
        local = tuple(dict.fromkeys(platforms.named(d.platform) for d in space.cloud.devices.values()))
        options = replace(options, platforms=local)
    client = engine.ensure_engine(progress=progress)
    builds = pipeline.prepare(options, client, progress)  # while Terraform applies
    outputs = (
        _joined(space, infra.apply_if_changed(space, progress), progress) if space.cloud else _outputs(target, space)
    )
    rollout_options = _followed_as(target, space, options.rollout)
    with _proven_by_predictions(space, outputs, rollout_options, progress) as result:
        session = aws.session(outputs.region)
        clients = pipeline.Clients(
            aws.client(session, "greengrassv2"),
            aws.client(session, "s3"),
            aws.client(session, "ecr"),
            client,
            rollout.Watch.of(session, rollout_options.request_rate),
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
    target: Target,
    rollout_options: pipeline.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """The deployed challenger becomes the champion (one model version, one deployment), proven like a deploy."""
    return _redeploy(target, pipeline.promote, rollout_options, progress, on_rollout)


def rollback(
    target: Target,
    rollout_options: pipeline.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """The group's previous desired state, deployed again and followed, proven like a deploy."""
    return _redeploy(target, pipeline.rollback, rollout_options, progress, on_rollout)


def _redeploy(
    target: Target,
    action: Callable[..., Result],
    rollout_options: pipeline.Rollout,
    progress: Progress,
    on_rollout: Callable[[rollout.FleetView], None],
) -> Result:
    """A deployment made from what the group already runs (no build, no upload), followed and proven."""
    space = _workspace(target, progress)
    outputs = _outputs(target, space)
    rollout_options = _followed_as(target, space, rollout_options)
    with _proven_by_predictions(space, outputs, rollout_options, progress) as result:
        session = aws.session(outputs.region)
        gg, watch = aws.client(session, "greengrassv2"), rollout.Watch.of(session, rollout_options.request_rate)
        result.update(action(outputs, gg, watch, rollout_options, progress, on_rollout))
    return result


def _followed_as(target: Target, space: infra.Workspace, options: pipeline.Rollout) -> pipeline.Rollout:
    """The target's poll interval, health window (unless given) and where a device's component log is."""
    followed = replace(
        options,
        poll_interval=POLL_INTERVAL[target.name],
        health_window=HEALTH_WINDOW[target.name] if options.health_window < 0 else options.health_window,
    )
    cloud = space.cloud
    if cloud is None:
        return followed
    return replace(followed, log_of=lambda thing, component: str(cloud.component_log(component, thing)))


@contextlib.contextmanager
def _proven_by_predictions(
    space: infra.Workspace, outputs: tfoutputs.Outputs, rollout_options: pipeline.Rollout, progress: Progress
) -> Iterator[Result]:
    """Local: once the block has filled the result, a prediction from every device's subscriber. With nothing
    deployed, any prediction since the block began proves the devices still predict; after a deployment, only one
    made since it settled does."""
    logs = space.cloud.component_logs(outputs.components.subscriber) if space.cloud else {}
    started_at = {thing: _size(log) for thing, log in logs.items()}
    result: Result = {}
    yield result
    if logs and not rollout_options.dry_run:
        result["predictions"] = {
            thing: _predictions_flowing(
                thing, log, started_at[thing] if result.get("deployment") is None else _size(log)
            )
            for thing, log in logs.items()
        }


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def _predictions_flowing(thing: str, log: Path, since: int) -> list[str]:
    found = product.follow_predictions(log, 1, PREDICTIONS_TIMEOUT, since)
    if not found:
        raise sandbox.LocalCloudError(
            f"{thing} runs the deployment, but its subscriber wrote no prediction within "
            f"{PREDICTIONS_TIMEOUT:.0f}s: see {log}"
        )
    return found


def destroy(
    target: Target,
    keep_infrastructure: bool,
    timeout: float,
    progress: Progress,
    force: bool = False,
    approve: Callable[[str, str], bool] = lambda account, question: False,
) -> Result:
    """Everything the stack holds, then the stack. In a real account, only once `approve(account, question)`
    says so, and Terraform runs in the folder whose state gave the outputs: a saved outputs file names no state,
    so it can remove what the scripts made but not the infrastructure."""
    if target.outputs_file and not keep_infrastructure:
        raise infra.InfraError(
            f"{target.outputs_file} names no Terraform state to destroy: use --terraform-dir with the applied "
            "folder, or --keep-infrastructure to remove only the components, artifacts and images"
        )
    space = _existing_workspace(target, progress)
    if space is None:
        sandbox.stop(progress)
        progress("local cloud: not running; nothing to destroy")
        return {"local_cloud_stopped": False}
    try:
        outputs = _outputs(target, space)
    except tfoutputs.OutputsError:
        if space.cloud is None:
            raise
        # Nothing was applied (`make plan` started it, or an apply failed early): what it holds is someone else's.
        progress("local cloud: nothing applied in it")
        return {"local_cloud_stopped": _stop_local_cloud(space, force, progress)}
    session = aws.session(outputs.region)
    gg, s3, ecr, iot = (aws.client(session, service) for service in ("greengrassv2", "s3", "ecr", "iot"))
    # The installer's certificates and alias policy hold Terraform's things and policies: they go with the
    # infrastructure, and a real account's user is told which before anything is deleted.
    made = teardown.InstallerMade() if keep_infrastructure else teardown.installer_made(iot, outputs)
    if target.name == "aws":
        what = "the components, artifacts and images" + ("" if keep_infrastructure else " and the infrastructure")
        installer = f", and what the Greengrass installer made: {', '.join(made.names())}" if made.names() else ""
        question = (
            f"This deletes {what} of the stack {outputs.thing_group_name} in account {outputs.account_id} "
            f"({outputs.region}){installer}; there is no undo."
        )
        if not approve(outputs.account_id, question):
            raise infra.InfraError("not confirmed: nothing deleted")
    watch = rollout.Watch.of(session)

    def infrastructure() -> None:
        if not keep_infrastructure:
            teardown.remove_installer_made(iot, made, progress)
            infra.destroy(space, progress)

    result = teardown.destroy(
        outputs, gg, watch, s3, ecr, progress, lambda view: None, infrastructure, timeout, POLL_INTERVAL[target.name]
    )
    if space.cloud and not keep_infrastructure:
        result["local_cloud_stopped"] = _stop_local_cloud(space, force, progress)
    return result


def _stop_local_cloud(space: infra.Workspace, force: bool, progress: Progress) -> bool:
    """Stop the local cloud when it holds nothing but the bucket of its Terraform state, or anyway with `force`.
    Otherwise it keeps running, whole, and the error says what it holds that the tooling did not put there, and the
    way out."""
    assert space.cloud is not None
    session = aws.session(space.cloud.region)
    state = tfstate.bootstrapped(space.bootstrap.state_file)
    gg, s3, ecr = (aws.client(session, service) for service in ("greengrassv2", "s3", "ecr"))
    left = sandbox.leftovers(gg, s3, ecr, ours=frozenset({state.bucket} if state else ()))
    if left and not force:
        held = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in left.items())
        raise sandbox.LocalCloudError(
            f"the local cloud still holds what this project did not create ({held}). It keeps running with them. "
            "Remove them yourself, or run `make destroy FORCE=1` to stop the local cloud and discard everything in "
            "it, the core device included."
        )
    if left:
        progress(f"local cloud: discarding what it still holds ({', '.join(left)}), as FORCE asks")
    else:
        progress("local cloud: nothing left behind (components, buckets, objects, repositories, images)")
    return sandbox.stop(progress)


def join_device(target: Target, thing: str, csr: bool, progress: Progress) -> Result:
    """How `thing` joins the stack (scripts/cloud/device.py), from the target's outputs."""
    space = _workspace(target, progress)
    return device.joining(_outputs(target, space), thing, csr, product.REPO / "build" / "device" / thing).record()


def status(target: Target, progress: Progress) -> Result:
    space = _existing_workspace(target, progress)
    if space is None:
        raise sandbox.LocalCloudError("the local cloud is not running: `make deploy` starts it")
    outputs = _outputs(target, space)
    session = aws.session(outputs.region)
    result = pipeline.status(outputs, aws.client(session, "greengrassv2"), rollout.Watch.of(session))
    if space.cloud:
        # The devices' subscribers log what a real fleet publishes: drops on edgeml/errors, agreement on edgeml/shadow.
        logs = space.cloud.component_logs(outputs.components.subscriber)
        result["dropped"] = {thing: product.dropped(log) for thing, log in logs.items()}
        if "challenger" in result.get("models", {}):
            result["models"]["agreement"] = {thing: product.last_agreement(log) for thing, log in logs.items()}
    return result
