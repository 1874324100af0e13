"""The command line's options, and the values the commands take made from them: what a user typed is checked
here, so that a command gets only values it can use."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from scripts import product, targets
from scripts.building import image
from scripts.errors import ToolError
from scripts.fleet import deployments, presets, releases
from scripts.local.localdevices import LocalFleet
from scripts.platforms import PLATFORMS, Platform
from scripts.publishing import components


def add_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cold",
        action="store_true",
        help="remove every image the project built (not the base image), so the next build starts from nothing",
    )


def add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="XGBoost JSON/UBJ model file")


def add_image(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", default=image.DEFAULT_TAG, help=f"image name (default: {image.DEFAULT_TAG})")
    parser.add_argument(
        "--platform",
        choices=sorted(PLATFORMS),
        help="build for this platform (default: this machine's); another CPU's build runs under qemu emulation",
    )


def add_demo(parser: argparse.ArgumentParser) -> None:
    add_model(parser)
    parser.add_argument("--messages", type=int, default=5, help="stop after this many predictions (default: 5)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between published messages")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")
    parser.add_argument(
        "--namespace",
        default=product.DEMO.namespace,
        help="the components' names are NAMESPACE.WineQuality...; their container is named after the subscriber's "
        "(default %(default)s, apart from any stack's)",
    )


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=targets.NAMES,
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
        "--local-drift",
        default="",
        metavar="SHARE:FEATURE,...:SHIFT",
        help="local: that share of the hollow devices see the features moved by SHIFT training standard deviations "
        "(their telemetry), e.g. 0.1:alcohol,pH:1.0",
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


def _add_confirm(parser: argparse.ArgumentParser, without_asking: str, otherwise: str) -> None:
    parser.add_argument(
        "--confirm",
        metavar="ACCOUNT_ID",
        help=f"aws: {without_asking} without asking, if ACCOUNT_ID is the account your credentials reach "
        f"(sts:GetCallerIdentity); otherwise {otherwise}",
    )


def add_apply(parser: argparse.ArgumentParser) -> None:
    add_target(parser)
    _add_confirm(parser, "change the account", "Terraform shows the plan and asks")


def add_state(parser: argparse.ArgumentParser) -> None:
    add_apply(parser)
    parser.add_argument(
        "--to",
        choices=("s3", "local"),
        default="s3",
        help="s3 (the default): an S3 bucket made by terraform/state, locked with a lock file, shared by a team and "
        "the workflow's plan; local: a file on this disk (backend_override.tf says so). The state is moved with "
        "`terraform init -migrate-state`; in an account Terraform asks first",
    )


def add_outputs(parser: argparse.ArgumentParser) -> None:
    add_target(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--outputs", type=Path, help="AWS: a saved `terraform output -json` file")
    source.add_argument(
        "--terraform-dir", type=Path, help="AWS: read the outputs from this applied Terraform folder (terraform/)"
    )


def add_monitor(parser: argparse.ArgumentParser) -> None:
    add_outputs(parser)
    parser.add_argument("--since", default="1h", help="how far back: 90m, 1h, 2d (default 1h)")
    parser.add_argument("--thing", help="one device only")


def add_logs(parser: argparse.ArgumentParser) -> None:
    add_outputs(parser)
    parser.add_argument("--thing", default="", help="one device only (default: every device)")
    parser.add_argument("--component", default="", help="one component only: subscriber, publisher, model, nucleus")
    parser.add_argument("--since", default="10m", help="how far back: 10m, 1h, 2d (default 10m)")
    parser.add_argument("--grep", default="", help="only lines holding this text")
    parser.add_argument("--follow", action="store_true", help="then print new lines as they are written (Ctrl-C ends)")


def add_deploy(parser: argparse.ArgumentParser) -> None:
    add_outputs(parser)
    add_model(parser)
    parser.add_argument(
        "--bump",
        choices=components.BUMPS,
        default="patch",
        help="which version part a changed component gets (default: patch)",
    )
    parser.add_argument(
        "--profile-data",
        type=Path,
        help="a CSV of the rows the model learnt from: the reference profile its telemetry is binned with (default: "
        "the profile.json `make model` wrote beside it, if it is this model's)",
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
    add_rollout(parser)


def platforms(args: argparse.Namespace) -> tuple[Platform, ...]:
    if args.platforms is None:
        return tuple(PLATFORMS.values())
    names = [name.strip() for name in args.platforms.split(",") if name.strip()]
    unknown = [name for name in names if name not in PLATFORMS]
    if unknown or not names:
        raise ToolError(f"--platforms {args.platforms!r}: each must be one of {', '.join(PLATFORMS)}")
    return tuple(PLATFORMS[name] for name in dict.fromkeys(names))


def add_rollout(parser: argparse.ArgumentParser) -> None:
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
        default=releases.Rollout.request_rate,
        help="API requests a second while following the rollout, at most (default %(default)s)",
    )
    parser.add_argument(
        "--health-window",
        type=float,
        metavar="SECONDS",
        help="after every device succeeded, watch the group this long for a component that breaks, and fail "
        f"naming it (default {targets.AccountStack.health_window:.0f} on aws, "
        f"{targets.LocalStack.health_window:.0f} locally)",
    )
    parser.add_argument(
        "--auto-rollback",
        action="store_true",
        help="when the rollout or the health window fails, deploy the group's last good state (the command still "
        "fails)",
    )


def rollout(args: argparse.Namespace) -> releases.Rollout:
    if args.request_rate <= 0:
        raise ToolError(f"--request-rate must be positive, not {args.request_rate}")
    if args.health_window is not None and args.health_window < 0:
        raise ToolError(f"--health-window cannot be negative, not {args.health_window}")
    return releases.Rollout(
        args.dry_run,
        args.timeout,
        policies=deployments.Policies(rollout=args.rollout),
        request_rate=args.request_rate,
        health_window=-1.0 if args.health_window is None else args.health_window,  # -1: the target's default
        auto_rollback=args.auto_rollback,
        redeploy=getattr(args, "redeploy", False),
    )


def add_redeploy(parser: argparse.ArgumentParser) -> None:
    add_outputs(parser)
    add_rollout(parser)


def add_device(parser: argparse.ArgumentParser) -> None:
    add_outputs(parser)
    parser.add_argument("--thing", required=True, help="the core device's thing name (one of Terraform's core_devices)")
    parser.add_argument(
        "--csr",
        action="store_true",
        help="the device made its key and a CSR, and Terraform issued its certificate: write a complete --init-config "
        "file under build/device/THING (the installer then provisions nothing)",
    )


def add_destroy(parser: argparse.ArgumentParser) -> None:
    add_outputs(parser)
    _add_confirm(parser, "delete the stack, in its own account only,", "it asks on the terminal")
    parser.add_argument("--keep-infrastructure", action="store_true", help="skip the final terraform destroy")
    parser.add_argument(
        "--force",
        action="store_true",
        help="local cloud: stop it even when it holds things this project did not create (they are discarded)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every device (default 900)")


def approval(confirmed: str | None) -> Callable[[str, str], bool]:
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


def target(args: argparse.Namespace) -> targets.Target:
    fleet = None
    if args.local_hollow is not None:
        fleet = LocalFleet(
            args.local_hollow, args.local_faults, args.local_time_scale, args.local_throttle, args.local_drift
        )
    return targets.chosen(
        args.target,
        getattr(args, "outputs", None),
        getattr(args, "terraform_dir", None),
        args.local_devices,
        fleet,
        platforms=getattr(args, "platforms", None) is not None,
        confirm=getattr(args, "confirm", None),
    )
