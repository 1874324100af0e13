"""`python -m scripts <command>`: the deploy tooling's one command line. It parses, calls scripts/flows.py and
prints; it decides nothing.

Exit statuses (scripts/errors.py ExitStatus): 0 done, 1 the work failed (one line says why), 2 the command line was
wrong, 130 interrupted (Ctrl-C). Human output by default; `--json` prints one JSON document on stdout, and
progress then goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import requests
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from recipeformat.document import RecipeError
from scripts import flows, pipeline, product, render
from scripts.building import image
from scripts.cloud import infra
from scripts.errors import ExitStatus, ToolError
from scripts.fleet import deployments, presets, rollout
from scripts.local.localdevices import LocalFleet
from scripts.platforms import PLATFORMS, Platform
from scripts.progress import Progress
from scripts.publishing import components

Result = flows.Result


@dataclass(frozen=True)
class Command:
    summary: str
    run: Callable[[argparse.Namespace, Progress], Result]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    # What a person reads at the end (scripts/render.py); None: every key of the result, one a line.
    render: Callable[[Result], list[str]] | None = None


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cold",
        action="store_true",
        help="remove every image the project built (not the base image), so the next build starts from nothing",
    )


def _model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="XGBoost JSON/UBJ model file")


def _image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", default=image.DEFAULT_TAG, help=f"image name (default: {image.DEFAULT_TAG})")
    parser.add_argument(
        "--platform",
        choices=sorted(PLATFORMS),
        help="build for this platform (default: this machine's); another CPU's build runs under qemu emulation",
    )


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    _model_argument(parser)
    parser.add_argument("--messages", type=int, default=5, help="stop after this many predictions (default: 5)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between published messages")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")
    parser.add_argument(
        "--namespace",
        default=product.DEMO.namespace,
        help="the components' names are NAMESPACE.WineQuality...; their container is named after the subscriber's "
        "(default %(default)s, apart from any stack's)",
    )


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=infra.TARGETS,
        help="local (the default): the local cloud in build/local, started if need be, no AWS account; "
        "aws (the default with --outputs or --terraform-dir): the normal credential chain and the Terraform "
        "state in terraform/",
    )
    parser.add_argument(
        "--local-devices",
        metavar="CPUS",
        help="local: the local cloud's core devices by CPU, e.g. amd64,arm64 (default: one, this machine's); "
        "another CPU's device is emulated. Takes effect when the local cloud starts",
    )
    parser.add_argument(
        "--local-hollow",
        type=int,
        metavar="N",
        help="local: also N hollow core devices in the group (simulated, in the local cloud's process)",
    )
    parser.add_argument(
        "--local-faults",
        default="",
        metavar="FAULT=SHARE,...",
        help="local: hollow devices' faults (offline, slow, failing, broken), e.g. failing=0.2",
    )
    parser.add_argument(
        "--local-time-scale", type=float, default=1.0, help="local: run the jobs' clock and hollow devices faster"
    )
    parser.add_argument(
        "--local-throttle",
        default="",
        metavar="NAME=RATE,...",
        help="local: requests a second per operation or "
        "service, over which the local cloud answers ThrottlingException",
    )


def _state_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser)
    parser.add_argument(
        "--to",
        choices=("s3", "local"),
        default="s3",
        help="s3 (the default): an S3 bucket made by terraform/state, locked with a lock file, shared by a team and "
        "the workflow's plan; local: a file on this disk (backend_override.tf says so). The state is moved with "
        "`terraform init -migrate-state`; in an account Terraform asks first",
    )


def _outputs_arguments(parser: argparse.ArgumentParser) -> None:
    _target_arguments(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--outputs", type=Path, help="AWS: a saved `terraform output -json` file")
    source.add_argument(
        "--terraform-dir", type=Path, help="AWS: read the outputs from this applied Terraform folder (terraform/)"
    )


def _deploy_arguments(parser: argparse.ArgumentParser) -> None:
    _outputs_arguments(parser)
    _model_argument(parser)
    parser.add_argument(
        "--bump",
        choices=components.BUMPS,
        default="patch",
        help="which version part a changed component gets (default: patch)",
    )
    parser.add_argument(
        "--challenger",
        type=Path,
        help="a second model, scored in the shadow of --model on every message (its agreement on edgeml/shadow)",
    )
    parser.add_argument(
        "--redeploy",
        action="store_true",
        help="make a new deployment even when nothing changed (it restarts a BROKEN component on the devices)",
    )
    parser.add_argument(
        "--platforms",
        metavar="PLATFORM,...",
        help="aws: the device platforms to build and publish for (default: "
        f"{','.join(PLATFORMS)}); a device of another CPU is refused by the service. Local: the local devices' CPUs",
    )
    _rollout_arguments(parser)


def _platforms(args: argparse.Namespace) -> tuple[Platform, ...]:
    if args.platforms is None:
        return tuple(PLATFORMS.values())
    if (args.target or "local") == "local" and not (args.outputs or args.terraform_dir):
        raise ToolError("--platforms is for TARGET=aws; locally the devices' CPUs decide (LOCAL_DEVICES)")
    names = [name.strip() for name in args.platforms.split(",") if name.strip()]
    unknown = [name for name in names if name not in PLATFORMS]
    if unknown or not names:
        raise ToolError(f"--platforms {args.platforms!r}: each must be one of {', '.join(PLATFORMS)}")
    return tuple(PLATFORMS[name] for name in dict.fromkeys(names))


def _rollout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show what the deployment would change, and stop")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every device (default 900)")
    parser.add_argument(
        "--rollout",
        choices=sorted(presets.PRESETS),
        default=presets.DEFAULT,
        help="how fast the deployment reaches the group and when it stops itself (default "
        f"{presets.DEFAULT}; the README gives each preset's numbers)",
    )
    parser.add_argument(
        "--request-rate",
        type=float,
        default=pipeline.Rollout.request_rate,
        help="API requests a second while following the rollout, at most (default %(default)s)",
    )
    parser.add_argument(
        "--health-window",
        type=float,
        metavar="SECONDS",
        help="after every device succeeded, watch the group this long for a component that breaks, and fail "
        f"naming it (default {flows.HEALTH_WINDOW['aws']:.0f} on aws, {flows.HEALTH_WINDOW['local']:.0f} locally)",
    )
    parser.add_argument(
        "--auto-rollback",
        action="store_true",
        help="when the rollout or the health window fails, deploy the group's last good state (the command still "
        "fails)",
    )


def _rollout(args: argparse.Namespace) -> pipeline.Rollout:
    if args.request_rate <= 0:
        raise ToolError(f"--request-rate must be positive, not {args.request_rate}")
    if args.health_window is not None and args.health_window < 0:
        raise ToolError(f"--health-window cannot be negative, not {args.health_window}")
    return pipeline.Rollout(
        args.dry_run,
        args.timeout,
        policies=deployments.Policies(rollout=args.rollout),
        request_rate=args.request_rate,
        health_window=-1.0 if args.health_window is None else args.health_window,  # -1: the target's default
        auto_rollback=args.auto_rollback,
        redeploy=getattr(args, "redeploy", False),
    )


def _redeploy_arguments(parser: argparse.ArgumentParser) -> None:
    _outputs_arguments(parser)
    _rollout_arguments(parser)


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    _outputs_arguments(parser)
    parser.add_argument("--thing", required=True, help="the core device's thing name (one of Terraform's core_devices)")
    parser.add_argument(
        "--csr",
        action="store_true",
        help="the device made its key and a CSR, and Terraform issued its certificate: write a complete --init-config "
        "file under build/device/THING (the installer then provisions nothing)",
    )


def _destroy_arguments(parser: argparse.ArgumentParser) -> None:
    _outputs_arguments(parser)
    parser.add_argument(
        "--confirm",
        metavar="ACCOUNT_ID",
        help="aws: delete without asking, if this is the stack's account id (otherwise it asks on the terminal)",
    )
    parser.add_argument("--keep-infrastructure", action="store_true", help="skip the final terraform destroy")
    parser.add_argument(
        "--force",
        action="store_true",
        help="local cloud: stop it even when it holds things this project did not create (they are discarded)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every device (default 900)")


def _approval(confirmed: str | None) -> Callable[[str, str], bool]:
    """How a destroy in a real account is approved: by `--confirm <account id>`, else by typing the account id on
    the terminal; with neither, it is refused (no undo, and no one to ask)."""

    def approve(account: str, question: str) -> bool:
        if confirmed is not None:
            if confirmed != account:
                raise ToolError(f"--confirm {confirmed} is not the stack's account ({account}): nothing deleted")
            return True
        if not sys.stdin.isatty():
            raise ToolError(
                f"{question}\nNo terminal to ask on: pass --confirm {account} "
                f"(make destroy TARGET=aws CONFIRM={account}) to delete; nothing deleted"
            )
        print(question, file=sys.stderr)
        return input(f"Type the account id ({account}) to delete, anything else to keep it: ").strip() == account

    return approve


def _target(args: argparse.Namespace) -> flows.Target:
    fleet = None
    if args.local_hollow is not None:
        fleet = LocalFleet(args.local_hollow, args.local_faults, args.local_time_scale, args.local_throttle)
    return flows.Target.of(
        args.target, getattr(args, "outputs", None), getattr(args, "terraform_dir", None), args.local_devices, fleet
    )


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


BAR_WIDTH = 40


def _fleet_summary(view: rollout.FleetView) -> Group:
    """A large group's live view: a progress bar over the group, the counts, and the first failures."""
    done = view.notified - view.active
    share = min(1.0, done / view.expected) if view.expected else 0.0
    filled = round(BAR_WIDTH * share)
    bar = Text.assemble(("━" * filled, "green"), ("━" * (BAR_WIDTH - filled), "grey37"), f" {share:.0%} finished")
    lines: list[Any] = [Text(f"deployment {view.deployment_id}: job {view.job_status}"), bar, Text(view.summary())]
    if view.comment:
        lines.append(Text(view.comment, style="bold red"))
    if view.failures:
        table = Table(title=f"first failures ({view.failed} in all)", expand=False)
        for column in ("device", "deployment", "reason"):
            table.add_column(column)
        for device in view.failures:
            table.add_row(device.thing, device.execution or "-", device.reason or "(not read yet)")
        lines.append(table)
    return Group(*lines)


class _LiveRollout:
    """The rollout, redrawn at every poll: the per-device table for a small group, a summary for a large one;
    nothing at all when no deployment is made."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console()
        self.live: Live | None = None

    def update(self, view: rollout.FleetView) -> None:
        if not self.enabled:
            return
        shown: Any = (
            _device_table([pipeline.device_record(d) for d in view.devices])
            if view.expected <= rollout.SMALL_GROUP
            else _fleet_summary(view)
        )
        if self.live is None:
            self.live = Live(shown, console=self.console, auto_refresh=False)
            self.live.start()
        self.live.update(shown, refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            if not self.console.is_terminal:
                self.console.line()  # a redirected Live leaves the cursor after its last frame


def _followed(args: argparse.Namespace, action: Callable[[Callable[[rollout.FleetView], None]], Result]) -> Result:
    """A command that makes a deployment and follows it, shown live to humans."""
    live = _LiveRollout(enabled=not args.json)
    try:
        result = action(live.update)
    finally:
        live.close()
    # Humans saw the devices live.
    return result if args.json else {key: value for key, value in result.items() if key != "devices"}


def _deploy(args: argparse.Namespace, progress: Progress) -> Result:
    options = pipeline.Options(args.model, args.challenger, args.bump, _rollout(args), _platforms(args))
    return _followed(args, lambda on_rollout: flows.deploy(_target(args), options, progress, on_rollout))


def _promote(args: argparse.Namespace, progress: Progress) -> Result:
    options = _rollout(args)
    return _followed(args, lambda on_rollout: flows.promote(_target(args), options, progress, on_rollout))


def _rollback(args: argparse.Namespace, progress: Progress) -> Result:
    options = _rollout(args)
    return _followed(args, lambda on_rollout: flows.rollback(_target(args), options, progress, on_rollout))


def _status(args: argparse.Namespace, progress: Progress) -> Result:
    result = flows.status(_target(args), progress)
    if args.json:
        return result
    # The table shows every device of a small group, the failing ones of a large one (whose counts are in `fleet`).
    Console().print(_device_table(result["devices"]))
    return {key: value for key, value in result.items() if key != "devices" and not (key == "fleet" and value is None)}


COMMANDS: dict[str, Command] = {
    "engine": Command(
        "make sure a Docker engine answers (started as root if needed) and the base image exists",
        lambda args, progress: flows.check_engine(args.cold, progress),
        _engine_arguments,
    ),
    "image": Command(
        "build the subscriber image (code and runtime; models are mounted from the model component)",
        lambda args, progress: flows.build_image(args.tag, progress, args.platform),
        _image_arguments,
    ),
    "plan": Command(
        "terraform plan of the cloud side (local cloud by default)",
        lambda args, progress: flows.plan(_target(args), progress),
        _target_arguments,
    ),
    "state": Command(
        "keep the stack's Terraform state in S3, locked while in use (the bucket made once per account), or on disk",
        lambda args, progress: flows.move_state(_target(args), args.to, progress),
        _state_arguments,
    ),
    "apply": Command(
        "terraform apply of the cloud side: the local cloud without asking, a real account after asking",
        lambda args, progress: flows.apply(_target(args), progress),
        _target_arguments,
    ),
    "deploy": Command(
        "build, publish and deploy both components to the thing group, then follow every device",
        _deploy,
        _deploy_arguments,
        render.rollout,
    ),
    "destroy": Command(
        "remove the components from the devices, delete versions, artifacts and images, then the infrastructure",
        lambda args, progress: flows.destroy(
            _target(args), args.keep_infrastructure, args.timeout, progress, args.force, _approval(args.confirm)
        ),
        _destroy_arguments,
    ),
    "promote": Command(
        "make the deployed challenger model the champion (one model version, one deployment), then follow it",
        _promote,
        _redeploy_arguments,
        render.rollout,
    ),
    "rollback": Command(
        "deploy the thing group's previous desired state again (after an aborted or failing rollout), then follow it",
        _rollback,
        _redeploy_arguments,
        render.rollout,
    ),
    "device": Command(
        "how a core device joins the stack: the installer's command and the IAM it needs, or an --init-config file",
        lambda args, progress: flows.join_device(_target(args), args.thing, args.csr, progress),
        _device_arguments,
        render.joining,
    ),
    "status": Command(
        "the per-device view of the thing group's current deployment, and its models", _status, _outputs_arguments
    ),
    "demo": Command(
        "run the publisher and the subscriber container under localgg and print predictions",
        lambda args, progress: flows.run_demo(
            args.model,
            args.messages,
            args.interval,
            args.timeout,
            progress,
            progress if args.json else print,
            product.Components(args.namespace),
        ),
        _demo_arguments,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts",
        description="Build, publish and deploy the edge ML components to AWS IoT Greengrass.",
        epilog="Exit codes: 0 done, 1 failed (message on stderr), 2 bad command line, 130 interrupted. "
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
    except (ToolError, RecipeError) as exc:  # a recipe's problems are expected failures too
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.FAILED
    except (docker.errors.DockerException, requests.RequestException) as exc:  # the engine, mid-operation
        print(f"error: the Docker engine failed a request: {exc}", file=sys.stderr)
        return ExitStatus.FAILED
    except OSError as exc:  # the machine's own refusals (a full disk, a folder it may not write): what and where
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return ExitStatus.FAILED
    except KeyboardInterrupt:
        print(f"interrupted: {args.command} stopped where it was; running it again carries on", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    if args.json:
        print(json.dumps(result, indent=2))
    elif command.render is not None:
        print("\n".join(command.render(result)))
    else:
        print_human(result)
    return ExitStatus.OK


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
