"""`python -m localgg run ...`: a local Greengrass core in the foreground, until SIGINT or SIGTERM.

Exit codes: 0 stopped by a signal (every component stopped, containers included) after a deployment that held,
1 the deployment could not be applied (nothing was left running) or a component of it went BROKEN (the nucleus
reports that deployment FAILED), 2 bad command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from localgg import environment
from localgg.core import Core, CoreError
from localgg.deployment import DeploymentError, DeploymentRequest, parse_merge, parse_update_config
from localgg.mqtt import BridgeError, MqttBridge
from localgg.permissions import RootNotOwned, own_root

log = logging.getLogger("localgg")


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localgg",
        description="A local AWS IoT Greengrass v2 core: runs components from their recipes and serves Greengrass "
        "IPC to the unmodified awsiotsdk.",
        epilog="Exit codes: 0 stopped by SIGINT/SIGTERM, 1 the deployment was refused or a component of it went "
        "BROKEN, 2 bad command line.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a core with a local deployment until SIGINT/SIGTERM",
        description="Run a core with a local deployment (flags as `greengrass-cli deployment "
        "create`) until SIGINT/SIGTERM. Logs: ROOT/logs/<component>.log and "
        "ROOT/logs/greengrass.log; IPC socket: ROOT/ipc.socket; component states: "
        "ROOT/status.json.",
    )
    run.add_argument("--root", type=Path, required=True, help="the core's folder (like /greengrass/v2)")
    run.add_argument("--recipe-dir", "--recipeDir", type=Path, help="folder of <name>-<version>.json|yaml recipes")
    run.add_argument("--artifact-dir", "--artifactDir", type=Path, help="folder of <name>/<version>/<artifact>")
    run.add_argument(
        "--merge",
        action="append",
        default=[],
        metavar="NAME=VERSION",
        help="deploy this component version (repeatable)",
    )
    run.add_argument("--remove", action="append", default=[], metavar="NAME", help="remove this component")
    run.add_argument(
        "--update-config",
        "--updateConfig",
        metavar="JSON|@FILE",
        help='configuration changes: {"NAME": {"MERGE": {...}, "RESET": ["/key"]}}',
    )
    run.add_argument("--thing-name", default="localgg-core", help="AWS_IOT_THING_NAME for components")
    run.add_argument("--region", default="us-east-1", help="AWS_REGION for components")
    run.add_argument(
        "--mqtt-broker",
        metavar="HOST:PORT",
        type=host_port,
        help="an MQTT broker standing in for AWS IoT Core (PublishToIoTCore, SubscribeToIoTCore)",
    )
    run.add_argument(
        "--interpolate-component-configuration",
        action="store_true",
        help="expand recipe variables such as {iot:thingName} inside component configurations, accessControl "
        "included (the nucleus setting interpolateComponentConfiguration)",
    )
    run.add_argument(
        "--keep-env",
        action="append",
        default=["DOCKER_HOST"],
        metavar="NAME",
        help="pass NAME from this shell to the components, as a device's greengrass.service would declare it with "
        "Environment=; the rest of this shell's environment (keys, tokens) stays out, as it does of a nucleus "
        "systemd starts (default: DOCKER_HOST)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


async def run(args: argparse.Namespace) -> int:
    request = DeploymentRequest(
        args.recipe_dir,
        args.artifact_dir,
        parse_merge(args.merge),
        tuple(args.remove),
        parse_update_config(args.update_config),
    )
    bridge = None
    if args.mqtt_broker:
        host, port = args.mqtt_broker
        bridge = MqttBridge(host, port, f"localgg-{args.thing_name}", asyncio.get_running_loop())
        bridge.connect()
    core = Core(
        args.root,
        args.thing_name,
        args.region,
        iot_core=bridge,
        interpolate_configuration=args.interpolate_component_configuration,
        service_environment=environment.of_service(args.keep_env),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await core.start()
    try:
        await core.deploy(request)
    except DeploymentError as exc:
        log.error("deployment refused: %s", exc)
        await core.stop()
        return 1
    log.info("deployment applied: %s", ", ".join(f"{n}={core.recipes[n].version}" for n in core.order))
    await stop.wait()
    log.info("stopping")
    await core.stop()
    if bridge is not None:
        bridge.close()
    if core.broken:
        log.error("stopped; the deployment FAILED: %s went BROKEN", ", ".join(sorted(core.broken)))
        return 1
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        own_root(args.root)
    except RootNotOwned as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (args.root / "logs").mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stderr),
        logging.FileHandler(args.root / "logs" / "greengrass.log"),
    ]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        handlers=handlers,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(run(args))
    except (DeploymentError, CoreError, BridgeError) as exc:
        log.error("%s", exc)
        return 1
