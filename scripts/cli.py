"""`python -m scripts <command>`: the deploy tooling's one command line.

Exit codes: 0 done, 1 the work failed (the message says why), 2 the command line was wrong.
Human output by default; `--json` prints one JSON document on stdout (progress then goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from scripts import (
    aws,
    components,
    demo,
    engine,
    image,
    infra,
    localcloud,
    pipeline,
    recipes,
    registry,
    rollout,
    teardown,
    tfoutputs,
    wheels,
)

Result = dict[str, Any]
PREDICTIONS_TIMEOUT = 60.0
# Errors that end a command with exit code 1 and their message, never a traceback.
EXPECTED_ERRORS = (
    engine.EngineError,
    image.ImageError,
    recipes.RecipeError,
    demo.DemoError,
    infra.InfraError,
    localcloud.LocalCloudError,
    aws.AwsError,
    components.ComponentError,
    registry.PushError,
    rollout.RolloutError,
    tfoutputs.OutputsError,
    wheels.WheelsError,
)


@dataclass(frozen=True)
class Command:
    summary: str
    run: Callable[[argparse.Namespace, engine.Progress], Result]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cold",
        action="store_true",
        help="remove every image the project built (not the base image), so the next build starts from nothing",
    )


def _engine(args: argparse.Namespace, progress: engine.Progress) -> Result:
    client = engine.ensure_engine(progress=progress)
    base = engine.ensure_base_image(client, progress=progress)
    result: Result = {"engine_version": client.version().get("Version", "?"), "base_image": base}
    if args.cold:
        result["built_images_removed"] = engine.remove_built_images(client)
    return result


def _image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="XGBoost JSON/UBJ model to bake into the image")
    parser.add_argument("--tag", default=image.DEFAULT_TAG, help=f"image name (default: {image.DEFAULT_TAG})")


def _image(args: argparse.Namespace, progress: engine.Progress) -> Result:
    client = engine.ensure_engine(progress=progress)
    built = image.build(client, args.model, args.tag, progress)
    return {
        "image": built.tag,
        "id": built.image_id,
        "size_mb": round(built.size_bytes / 1e6, 1),
        "base_image": built.base_image,
    }


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="XGBoost JSON/UBJ model to bake into the image")
    parser.add_argument("--messages", type=int, default=5, help="stop after this many predictions (default: 5)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between published messages")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")


def _demo(args: argparse.Namespace, progress: engine.Progress) -> Result:
    client = engine.ensure_engine(progress=progress)
    result = demo.run(
        client,
        args.model,
        args.messages,
        args.interval,
        args.timeout,
        progress,
        on_prediction=print if not args.json else progress,
    )
    if result.core_exit_code != 0 or result.containers_left:
        raise demo.DemoError(
            f"localgg exited with {result.core_exit_code} and left {result.containers_left} "
            f"container(s) named {demo.CONTAINER}"
        )
    return {
        "predictions": result.predictions,
        "messages": len(result.predictions),
        "seconds": round(result.seconds, 1),
        "containers_left": result.containers_left,
    }


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=infra.TARGETS,
        help="local (the default): the local cloud in build/local, started if need be, no AWS account; "
        "aws (the default with --outputs or --terraform-dir): the normal credential chain and the Terraform "
        "state in terraform/",
    )


def _outputs_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--outputs", type=Path, help="AWS: a saved `terraform output -json` file")
    source.add_argument(
        "--terraform-dir", type=Path, help="AWS: read the outputs from this applied Terraform folder (terraform/)"
    )


def _target(args: argparse.Namespace) -> str:
    explicit_outputs = getattr(args, "outputs", None) or getattr(args, "terraform_dir", None)
    target: str = args.target or ("aws" if explicit_outputs else "local")
    if target == "local" and explicit_outputs:
        raise infra.InfraError("--outputs and --terraform-dir are for AWS; the local cloud has its own Terraform state")
    return target


def _workspace(args: argparse.Namespace, progress: engine.Progress) -> infra.Workspace:
    """The target's workspace. Local: the running cloud (started if need be), with this process's environment
    pointed at it, since boto3 and python-terraform read it there."""
    if _target(args) == "aws":
        return infra.Workspace("aws")
    space = infra.local_workspace(progress)
    os.environ.update(space.env)
    return space


def _existing_workspace(args: argparse.Namespace, progress: engine.Progress) -> infra.Workspace | None:
    """As `_workspace`, but None rather than starting a local cloud that is not running."""
    return None if _target(args) == "local" and localcloud.find() is None else _workspace(args, progress)


def _read_outputs(args: argparse.Namespace, space: infra.Workspace) -> dict[str, Any]:
    if space.target == "local":
        return infra.outputs(space)
    if args.outputs:
        return tfoutputs.from_file(args.outputs)
    return tfoutputs.from_workdir(args.terraform_dir or infra.WORKDIR)


def _plan(args: argparse.Namespace, progress: engine.Progress) -> Result:
    space = _workspace(args, progress)
    return infra.plan(space, progress)


def _apply(args: argparse.Namespace, progress: engine.Progress) -> Result:
    space = _workspace(args, progress)
    return infra.apply(space, progress)


def _device_table(records: list[dict[str, Any]]) -> Table:
    """The per-device view, from `pipeline.device_record`s: the live table of `deploy` and the output of `status`."""
    table = Table(title="core devices", expand=False)
    for column in ("device", "health", "deployment", "components", "reason"):
        table.add_column(column)
    for record in records:
        states = ", ".join(
            f"{name.rsplit('.', 1)[-1]} {c['version']} {c['state']}" for name, c in sorted(record["components"].items())
        )
        table.add_row(
            record["thing"], record["health"], record["deployment_status"] or "waiting", states or "-", record["reason"]
        )
    return table


class _LiveDevices:
    """The per-device table, redrawn while a rollout is followed; nothing at all when no deployment is made."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console()
        self.live: Live | None = None

    def update(self, devices: list[rollout.Device]) -> None:
        if not self.enabled:
            return
        table = _device_table([pipeline.device_record(d) for d in devices])
        if self.live is None:
            self.live = Live(table, console=self.console, auto_refresh=False)
            self.live.start()
        self.live.update(table, refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            if not self.console.is_terminal:
                self.console.line()  # a redirected Live leaves the cursor after its last frame


def _deploy_arguments(parser: argparse.ArgumentParser) -> None:
    _outputs_arguments(parser)
    parser.add_argument("--model", type=Path, required=True, help="XGBoost JSON/UBJ model to bake into the image")
    parser.add_argument(
        "--bump",
        choices=components.BUMPS,
        default="patch",
        help="which version part a changed component gets (default: patch)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show what the deployment would change, and stop")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every device (default 900)")


def _deploy(args: argparse.Namespace, progress: engine.Progress) -> Result:
    space = _workspace(args, progress)
    log = localcloud.subscriber_log(space.cloud, pipeline.SUBSCRIBER) if space.cloud else None
    started_at = _size(log)
    outputs = infra.apply(space, progress) if space.cloud else _read_outputs(args, space)
    session = aws.session(outputs["region"])
    clients = pipeline.Clients(
        aws.client(session, "greengrassv2"),
        aws.client(session, "s3"),
        aws.client(session, "ecr"),
        engine.ensure_engine(progress=progress),
    )
    # The local device polls every second; a real fleet answers on the scale of seconds to minutes.
    options = pipeline.Options(args.model, args.bump, args.dry_run, args.timeout, 1.0 if space.cloud else 5.0)
    workdir = infra.REPO / "build" / "deploy"
    table = _LiveDevices(enabled=not args.json)
    try:
        result = pipeline.deploy(outputs, clients, options, progress, table.update, workdir)
    finally:
        table.close()
    if log is not None and not args.dry_run:
        # With nothing deployed, any prediction since this command started proves the devices still predict; after a
        # deployment, only one made since it settled does.
        since = started_at if result["deployment"] is None else _size(log)
        result["predictions"] = _predictions_flowing(log, since, progress)
    # Humans saw the devices in the table.
    return result if args.json else {key: value for key, value in result.items() if key != "devices"}


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def _predictions_flowing(log: Path, since: int, progress: engine.Progress) -> list[str]:
    found = localcloud.predictions(log, 1, PREDICTIONS_TIMEOUT, since)
    if not found:
        raise localcloud.LocalCloudError(
            f"the devices run the deployment, but the subscriber wrote no prediction within "
            f"{PREDICTIONS_TIMEOUT:.0f}s: see {log}"
        )
    for line in found:
        progress(f"  prediction: {line}")
    return found


def _destroy_arguments(parser: argparse.ArgumentParser) -> None:
    _outputs_arguments(parser)
    parser.add_argument("--yes", action="store_true", required=True, help="really delete (required: there is no undo)")
    parser.add_argument("--keep-infrastructure", action="store_true", help="skip the final terraform destroy")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every device (default 900)")


def _destroy(args: argparse.Namespace, progress: engine.Progress) -> Result:
    space = _existing_workspace(args, progress)
    if space is None:
        localcloud.stop(progress)
        progress("local cloud: not running; nothing to destroy")
        return {"local_cloud_stopped": False}
    try:
        outputs = _read_outputs(args, space)
    except tfoutputs.OutputsError:
        if space.cloud is None:
            raise
        # Nothing was applied (`make plan` started it, or an apply failed early): everything is in its memory.
        progress("local cloud: nothing applied in it")
        return {"local_cloud_stopped": localcloud.stop(progress)}
    session = aws.session(outputs["region"])
    gg, s3, ecr = (aws.client(session, service) for service in ("greengrassv2", "s3", "ecr"))

    def infrastructure() -> None:
        if not args.keep_infrastructure:
            infra.destroy(space, progress)

    interval = 1.0 if space.cloud else 5.0
    result = teardown.destroy(
        outputs, gg, s3, ecr, progress, lambda devices: None, infrastructure, args.timeout, interval
    )
    if space.cloud and not args.keep_infrastructure:
        left = localcloud.leftovers(gg, s3, ecr)
        if left:
            raise localcloud.LocalCloudError(
                "the teardown left " + "; ".join(f"{kind}: {', '.join(items)}" for kind, items in left.items())
            )
        progress("local cloud: nothing left behind (components, buckets, objects, repositories, images)")
        result["local_cloud_stopped"] = localcloud.stop(progress)
    return result


def _status(args: argparse.Namespace, progress: engine.Progress) -> Result:
    space = _existing_workspace(args, progress)
    if space is None:
        raise localcloud.LocalCloudError("the local cloud is not running: `make deploy` starts it")
    outputs = _read_outputs(args, space)
    result = pipeline.status(outputs, aws.client(aws.session(outputs["region"]), "greengrassv2"))
    if args.json:
        return result
    Console().print(_device_table(result["devices"]))
    return {key: value for key, value in result.items() if key != "devices"}  # the table showed them


COMMANDS: dict[str, Command] = {
    "engine": Command(
        "make sure a Docker engine answers (started as root if needed) and the base image exists",
        _engine,
        _engine_arguments,
    ),
    "image": Command(
        "build the subscriber image with a model baked in; prints its name and size", _image, _image_arguments
    ),
    "plan": Command("terraform plan of the cloud side (local cloud by default)", _plan, _target_arguments),
    "apply": Command(
        "terraform apply of the cloud side: the local cloud without asking, a real account after asking",
        _apply,
        _target_arguments,
    ),
    "deploy": Command(
        "build, publish and deploy both components to the thing group, then follow every device",
        _deploy,
        _deploy_arguments,
    ),
    "destroy": Command(
        "remove the components from the devices, delete versions, artifacts and images, then the infrastructure",
        _destroy,
        _destroy_arguments,
    ),
    "status": Command("the per-device view of the thing group's current deployment", _status, _outputs_arguments),
    "demo": Command(
        "run the publisher and the subscriber container under localgg and print predictions", _demo, _demo_arguments
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts",
        description="Build, publish and deploy the edge ML components to AWS IoT Greengrass.",
        epilog="Exit codes: 0 done, 1 failed (message on stderr), 2 bad command line. "
        "Run `python -m scripts COMMAND --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        cmd = sub.add_parser(name, help=command.summary, description=command.summary)
        command.arguments(cmd)
        cmd.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    out = sys.stderr if args.json else sys.stdout

    def progress(message: str) -> None:
        print(message, file=out, flush=True)

    try:
        result = command.run(args, progress)
    except EXPECTED_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_human(result)
    return 0


def print_human(result: Result, indent: str = "") -> None:
    """One `key: value` line each; nested mappings and lists indented below their key."""
    for key, value in result.items():
        if isinstance(value, dict) and value:
            print(f"{indent}{key}:")
            print_human(value, indent + "  ")
        elif isinstance(value, list) and value:
            print(f"{indent}{key}:")
            for item in value:
                print(f"{indent}  - {item}")
        else:
            print(f"{indent}{key}: {value}")
