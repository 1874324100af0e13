"""The local cloud and its device in one process: what `make deploy` talks to when no AWS account is involved.

- moto on loopback for S3, ECR (API), IAM, IoT and STS (`AWS_ENDPOINT_URL`), with ECR bound to
- Debian's registry on loopback (`docker login` with an ECR token, then push and pull as with ECR),
- the greengrassv2 control plane on its own port (`AWS_ENDPOINT_URL_GREENGRASSV2`),
- a localgg core registered as the core device `thing`, provisioned as the installer does with
  `--provision true --thing-group-name`: the thing is created in IoT and joins the group once the group exists
  (Terraform creates it after the stack starts).

Everything lives in memory and under `root`; `root/stack.json` appears once every part answers and says where
each one is. SIGTERM stops the components (containers included), the servers and the registry, then removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3
import docker
from botocore.exceptions import ClientError

from localcloud import moto_aws, registry
from localcloud.device import DeviceAgent
from localcloud.greengrassv2 import ControlPlane
from localcloud.info import STATE_FILE, StackInfo
from localcloud.server import serve
from localgg.core import Core

log = logging.getLogger("localcloud.stack")
ACCOUNT = "123456789012"  # moto's account


class Provisioning:
    """The device's thing and its thing groups, as the Greengrass installer provisions them."""

    def __init__(self, iot: Any, thing: str, group: str) -> None:
        self.iot, self.thing, self.group = iot, thing, group

    def groups(self) -> list[str]:
        try:
            self.iot.describe_thing(thingName=self.thing)
        except self.iot.exceptions.ResourceNotFoundException:
            self.iot.create_thing(thingName=self.thing)
        joined = self._joined()
        if self.group not in joined:
            try:
                self.iot.add_thing_to_thing_group(thingGroupName=self.group, thingName=self.thing)
                joined = self._joined()
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        return sorted(joined.values())

    def _joined(self) -> dict[str, str]:
        pages = self.iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=self.thing)
        return {group["groupName"]: group["groupArn"] for page in pages for group in page["thingGroups"]}


async def run(root: Path, thing: str, group: str, region: str, poll_interval: float = 1.0) -> int:
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as parts:  # whatever started is stopped, in reverse, whatever fails
        registry_process, registry_host = registry.start(root / "registry")
        parts.callback(_terminate, registry_process)
        moto, aws_url = moto_aws.start(registry=registry_host)
        parts.callback(moto.stop)
        plane = ControlPlane(region, ACCOUNT)
        gg_server, gg_url = serve(plane)
        parts.callback(gg_server.shutdown)
        session = boto3.Session(region_name=region, aws_access_key_id="local", aws_secret_access_key="local")
        s3, ecr, iot = (session.client(service, endpoint_url=aws_url) for service in ("s3", "ecr", "iot"))
        docker_client = docker.from_env(timeout=120)
        core = Core(root / "core", thing, region)
        await core.start()
        parts.push_async_callback(core.stop)
        agent = DeviceAgent(
            core,
            plane,
            Provisioning(iot, thing, group).groups,
            s3,
            ecr,
            lambda host, user, password: docker_client.login(user, password, registry=host, reauth=True),
            root / "device",
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        polling = asyncio.create_task(agent.run(poll_interval))
        parts.callback(polling.cancel)
        info = StackInfo(os.getpid(), aws_url, gg_url, registry_host, region, ACCOUNT, thing, group, str(core.root))
        info.save(root)
        parts.callback((root / STATE_FILE).unlink, missing_ok=True)
        log.info("local cloud ready: %s", json.dumps(asdict(info)))
        await asyncio.wait([asyncio.create_task(stop.wait()), polling], return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping the local cloud")
        if polling.done():
            polling.result()  # the device loop died: say why (the parts still stop)
    log.info("stopped")
    return 0


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)
