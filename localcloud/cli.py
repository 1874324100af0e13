"""`python -m localcloud stack ...`: the local cloud with a localgg core as its core device, in the foreground
until SIGINT or SIGTERM (see localcloud.stack). `make deploy` starts it in the background for you.

Exit codes: 0 stopped by a signal (everything it started is stopped), 1 it could not start (nothing was left
running), 2 bad command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from pathlib import Path

from localcloud import info, stack
from localcloud.broker import BrokerUnavailable
from localcloud.registry import RegistryUnavailable
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
    run.add_argument(
        "--role-alias",
        default="edgeml-token-exchange",
        help="the role alias the device gets its AWS credentials through",
    )
    run.add_argument("--region", default="eu-west-1", help="the local cloud's Region")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    env = sub.add_parser(
        "env",
        help="print the shell exports that point the AWS CLI, GDK or boto3 at a running stack",
        description="Print `export NAME=value` lines (endpoints, Region, the owner's keys) for the stack under ROOT: "
        '`eval "$(python -m localcloud env)"`. Exit 1 when no stack runs there.',
    )
    env.add_argument("--root", type=Path, default=Path("build/local"), help="the stack's folder (default build/local)")
    return parser


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
    args.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(stack.run(args.root, args.thing_name, args.thing_group, args.role_alias, args.region))
    except (CoreError, RegistryUnavailable, BrokerUnavailable, BridgeError) as exc:
        log.error("%s", exc)
        return 1
