"""`python -m localcloud stack ...`: the local cloud with a localgg core as its core device, in the foreground
until SIGINT or SIGTERM (see localcloud.stack). `make deploy` starts it in the background for you.
`python -m localcloud device ...`: one core device joining a running local cloud (what an emulated device runs in
its container; it loads nothing of the cloud side).

Exit codes: 0 stopped by a signal (everything it started is stopped), 1 it could not start (nothing was left
running), 2 bad command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from pathlib import Path

from localcloud import coredevice, info, installer
from localcloud.coredevice import DeviceSpec
from localcloud.emulated import Emulated, EmulationUnavailable
from localcloud.hollow import Drift, DriftSpecError, Faults, FaultSpecError
from localcloud.throttle import Throttle, ThrottleSpecError
from localgg import leftovers
from localgg.core import CoreError
from localgg.mqtt import BridgeError

log = logging.getLogger("localcloud")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud",
        description="A local stand-in for the AWS services the deploy pipeline uses, with a core device in it.",
        epilog="Exit codes: 0 stopped by SIGINT/SIGTERM, 1 could not start, 2 bad command line.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "stack",
        help="run the local cloud and a core device in it until SIGINT/SIGTERM",
        description="Run moto (S3, ECR, IAM, IoT, STS), a registry standing in for ECR's, mosquitto for IoT Core, the "
        "Greengrass endpoint (greengrassv2, IoT jobs data, credentials provider) and a localgg core provisioned as "
        "a core device of THING_GROUP, until SIGINT/SIGTERM. ROOT/stack.json appears when every part answers and "
        "gives their endpoints.",
    )
    run.add_argument("--root", type=Path, required=True, help="the stack's folder (state, logs, registry data)")
    run.add_argument("--thing-name", default="localgg-core", help="the core device's thing name")
    run.add_argument("--thing-group", default="edgeml-cores", help="the thing group the device joins once it exists")
    run.add_argument("--region", default="eu-west-1", help="the local cloud's Region")
    run.add_argument(
        "--emulated-device",
        action="append",
        default=[],
        metavar="PLATFORM=IMAGE",
        type=_emulated,
        help="also run a core device of another CPU (e.g. linux/arm64=IMAGE), named THING_NAME-<arch>, in a "
        "container of IMAGE (its Python userland and Docker CLI) with an engine of its own; repeatable",
    )
    run.add_argument(
        "--hollow-devices",
        type=int,
        default=0,
        metavar="N",
        help="also run N hollow core devices (simulated in this process, THING_NAME-hollow-00001...) in the group",
    )
    run.add_argument(
        "--hollow-faults",
        type=_faults,
        default=Faults(),
        metavar="FAULT=SHARE,...",
        help="the share of hollow devices that are offline, slow, failing or broken (e.g. failing=0.2,offline=0.01)",
    )
    run.add_argument(
        "--hollow-drift",
        type=_drift,
        default=Drift(),
        metavar="SHARE:FEATURE,...:SHIFT",
        help="that share of the hollow devices see the named features moved by SHIFT training standard deviations "
        "in the telemetry they send (e.g. 0.1:alcohol,pH:1.0)",
    )
    run.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="run the jobs' clock (rollout rates, time-outs) and the hollow devices this many times faster",
    )
    run.add_argument(
        "--throttle",
        type=_throttle,
        metavar="NAME=RATE,...",
        help="requests per second per operation or service, answered over with ThrottlingException "
        "(e.g. DescribeJob=10,ListJobExecutionsForJob=10,greengrassv2=20)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    device = sub.add_parser(
        "device",
        help="run one core device that joins a running local cloud, until SIGINT/SIGTERM",
        description="A localgg core and the agent that takes its deployments from the cloud's endpoints. It joins "
        "once the installer has written its identity under ROOT/identity (`install`); it logs to ROOT/device.log.",
    )
    device.add_argument("--root", type=Path, required=True, help="the device's folder (its core, its downloads)")
    device.add_argument("--thing-name", required=True)
    device.add_argument("--greengrass", required=True, help="the Greengrass and IoT jobs data plane endpoint")
    device.add_argument("--credentials", required=True, help="the IoT credentials provider endpoint")
    device.add_argument("--aws", required=True, help="the S3 and ECR endpoint")
    device.add_argument("--mqtt", required=True, type=_host_port, metavar="HOST:PORT", help="IoT Core's broker")
    device.add_argument("--poll-interval", type=float, default=1.0)
    install = sub.add_parser(
        "install",
        help="provision one of a running stack's core devices as the Greengrass installer does",
        description="The installer's --provision true calls (thing, certificate, policies, thing group, role alias), "
        "with the stack owner's keys, then the device's identity written where it joins from. The flags after -- "
        "are the installer's, as `make device` prints them.",
    )
    install.add_argument("--stack", type=Path, default=Path("build/local"), help="the stack's folder")
    install.add_argument("installer_args", nargs=argparse.REMAINDER, help="-- then the installer's flags")
    env = sub.add_parser(
        "env",
        help="print the shell exports that point the AWS CLI, GDK or boto3 at a running stack",
        description="Print `export NAME=value` lines (endpoints, Region, the owner's keys) for the stack under ROOT: "
        '`eval "$(python -m localcloud env)"`. Exit 1 when no stack runs there.',
    )
    env.add_argument("--root", type=Path, default=Path("build/local"), help="the stack's folder (default build/local)")
    reap = sub.add_parser(
        "reap",
        help="end what the core devices of a stack that died left running",
        description="A stack killed with SIGKILL leaves its components' processes behind (systemd would end them with "
        "a real core's unit): every process group its cores wrote down and that still runs gets SIGTERM, then SIGKILL.",
    )
    reap.add_argument("--root", type=Path, required=True, help="the dead stack's folder")
    return parser


def _emulated(text: str) -> Emulated:
    platform, separator, image = text.partition("=")
    if not separator or not platform.startswith("linux/") or not image:
        raise argparse.ArgumentTypeError(f"expected PLATFORM=IMAGE (e.g. linux/arm64=name:tag), not {text!r}")
    return Emulated(platform, image)


def _faults(text: str) -> Faults:
    try:
        return Faults.parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _drift(text: str) -> Drift:
    try:
        return Drift.parse(text)
    except DriftSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _throttle(text: str) -> Throttle:
    try:
        return Throttle.parse(text)
    except ThrottleSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def _env(root: Path) -> int:
    running = info.find(root)
    if running is None:
        print(f"error: no local cloud runs under {root} (`make deploy` starts one)", file=sys.stderr)
        return 1
    for name, value in running.environment().items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "env":
        return _env(args.root)
    if args.command == "reap":
        for folder in dict.fromkeys((args.root.resolve(), info.device_home(args.root))):  # the same one, unless root
            for group in leftovers.reap_under(folder) if folder.is_dir() else []:
                print(f"ended process group {group}, left running by a core under {folder}")
        return 0
    if args.command == "install":
        if args.installer_args[:1] == ["--"]:
            args.installer_args = args.installer_args[1:]
        return _install(args)
    args.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.command == "device":  # its stderr is a container's: the log is kept beside its core
        handlers.append(logging.FileHandler(args.root / "device.log"))
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )
    if args.command == "device":
        return _device(args)
    # The cloud side (moto among it) is loaded only here: a device never needs it.
    from localcloud import stack
    from localcloud.broker import BrokerUnavailable
    from localcloud.registry import RegistryUnavailable

    try:
        return asyncio.run(
            stack.run(
                args.root,
                args.thing_name,
                args.thing_group,
                args.region,
                tuple(args.emulated_device),
                stack.FleetSettings(
                    args.hollow_devices, args.hollow_faults, args.time_scale, args.throttle, args.hollow_drift
                ),
            )
        )
    except (CoreError, RegistryUnavailable, BrokerUnavailable, BridgeError, EmulationUnavailable) as exc:
        log.error("%s", exc)
        return 1


def _device(args: argparse.Namespace) -> int:
    spec = DeviceSpec(args.root.resolve(), args.thing_name, args.greengrass, args.credentials, args.aws, args.mqtt)
    try:
        return asyncio.run(_run_device(spec, args.poll_interval))
    except (CoreError, BridgeError) as exc:
        log.error("%s", exc)
        return 1


def _install(args: argparse.Namespace) -> int:
    """The installer's provisioning for a device of the running stack under --stack (localcloud.installer)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    running = info.find(args.stack)
    if running is None:
        print(f"error: no local cloud runs under {args.stack}", file=sys.stderr)
        return 1
    flags = installer.parser().parse_args(args.installer_args)
    if flags.thing_name not in running.devices:
        print(
            f"error: {flags.thing_name} is none of the stack's devices ({', '.join(running.devices)})", file=sys.stderr
        )
        return 2
    session = boto3.Session(region_name=running.region, **_installer_keys(running))
    iot, iam = (session.client(service, endpoint_url=running.aws) for service in ("iot", "iam"))
    try:
        identity, key, certificate = installer.provision(iot, iam, flags)
    except (ClientError, BotoCoreError, installer.InstallerError) as exc:
        print(f"error: provisioning {flags.thing_name}: {exc}", file=sys.stderr)
        return 1
    identity.save(running.identity(flags.thing_name), key, certificate)
    print(f"provisioned {flags.thing_name}: certificate {identity.certificate_id}")
    return 0


_KEYS = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
}


def _installer_keys(running: info.StackInfo) -> dict[str, str]:
    """The installer signs with the credentials in its environment (as the AWS SDK's default chain reads them), the
    identity `make device` prints a policy for; with none there, the stack owner's, so the local target's own
    devices need no identity of their own."""
    if "AWS_ACCESS_KEY_ID" in os.environ:
        return {argument: os.environ[name] for name, argument in _KEYS.items() if name in os.environ}
    return {"aws_access_key_id": running.access_key_id, "aws_secret_access_key": running.secret_access_key}


async def _run_device(spec: DeviceSpec, poll_interval: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with coredevice.running(spec, poll_interval) as polling:
        await asyncio.wait([asyncio.create_task(stop.wait()), polling], return_when=asyncio.FIRST_COMPLETED)
        if polling.done():
            polling.result()  # it died: say why
    return 0
