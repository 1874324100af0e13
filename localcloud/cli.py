"""`python -m localcloud stack ...`: the local cloud with a localgg core as its core device, in the foreground
until SIGINT or SIGTERM (see localcloud.stack). `make deploy` starts it in the background for you.

Exit codes: 0 stopped by a signal (everything it started is stopped), 1 it could not start (nothing was left
running), 2 bad command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from localcloud import stack
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
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
