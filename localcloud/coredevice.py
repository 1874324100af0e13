"""One core device of the local cloud: a localgg core, its MQTT connection to IoT Core and the agent that takes its
deployments (localcloud.device). The stack runs its own core device in its process; an emulated device of another
CPU runs this same code in a container of that CPU (`python -m localcloud device`, see localcloud.emulated).

Only the AWS APIs and MQTT join a device to the cloud: it imports nothing of the cloud side, so it runs wherever
the endpoints answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from localcloud.device import Connection, DeviceAgent
from localcloud.identities import device_secret
from localcloud.installer import IDENTITY, Identity
from localgg import environment
from localgg.core import Core, check_docker_image
from localgg.mqtt import MqttBridge
from localgg.runwith import RunWith

log = logging.getLogger("localcloud.coredevice")
IDENTITY_POLL = 0.5  # seconds between two looks for the installer's files


@dataclass(frozen=True)
class DeviceSpec:
    """Where a core device finds the local cloud. Who it is comes later: the installer (localcloud.installer, run
    by the tooling with `make device`'s flags) writes its identity into root/identity, and the device joins then."""

    root: Path  # its core under root/core, its downloads under root/device, its identity under root/identity
    thing: str
    greengrass: str  # the Greengrass data plane and the IoT jobs data plane
    credentials: str  # the IoT credentials provider
    aws: str  # S3 and ECR
    mqtt: tuple[str, int]  # IoT Core's broker

    @property
    def identity(self) -> Path:
        return self.root / IDENTITY


class _NucleusStamp(logging.Formatter):
    """Lines stamped as the nucleus and the components' logs are: 2026-12-08T01:02:03.456Z [INFO] name: message."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


@contextlib.contextmanager
def _nucleus_log(path: Path) -> Iterator[None]:
    """The core's own log beside its components' (the nucleus's logs/greengrass.log): this device's core and agent,
    which run alone in this process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(_NucleusStamp("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("localgg", "localcloud.device", "localcloud.coredevice")]
    for each in loggers:
        each.addHandler(handler)
    try:
        yield
    finally:
        for each in loggers:
            each.removeHandler(handler)
        handler.close()


async def _installed(spec: DeviceSpec) -> tuple[Identity, str]:
    while (found := Identity.load(spec.identity)) is None:
        await asyncio.sleep(IDENTITY_POLL)
    return found


async def _life(spec: DeviceSpec, poll_interval: float) -> None:
    """Waits for the installer's files, then runs the device until cancelled: its MQTT connection (its thing name as
    client id), its core with the components as the installer's default user, and the agent; all stopped after."""
    identity, private_key = await _installed(spec)
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as parts:
        parts.enter_context(_nucleus_log(spec.root / "core" / "logs" / "greengrass.log"))
        # As IoT Core knows a device by its certificate, the broker knows it by the certificate's id and key.
        mqtt = MqttBridge(*spec.mqtt, spec.thing, loop, (identity.certificate_id, device_secret(private_key)))
        await loop.run_in_executor(None, mqtt.connect)
        parts.callback(mqtt.close)
        # The device's own Docker engine (DOCKER_HOST where it has one of its own, as an emulated device does).
        engine = docker.from_env(timeout=120)
        parts.callback(engine.close)
        # A core that is not root cannot switch users: it runs its components as itself, as a nucleus does. The
        # installer creates a missing default user and group (UnixPlatform.createUser).
        user = identity.component_user if os.geteuid() == 0 else None
        run_with = RunWith.of(user, create=True) if user else None
        # Images are pulled by the engine the agent logs in to the registry with (its ECR token), as the nucleus's
        # Docker application manager logs in and then pulls.
        pull = functools.partial(check_docker_image, engine=engine)
        # As a device's greengrass.service would declare them: its engine, and the platform it pulls (an emulated one).
        kept = environment.of_service(("DOCKER_HOST", "DOCKER_DEFAULT_PLATFORM"))
        core = Core(spec.root / "core", spec.thing, identity.region, mqtt, pull, run_with=run_with,
                    service_environment=kept)  # fmt: skip
        await core.start()
        parts.push_async_callback(core.stop)
        connection = Connection(
            spec.greengrass,
            spec.credentials,
            spec.aws,
            identity.role_alias,
            identity.region,
            (identity.certificate_id, device_secret(private_key)),
        )
        agent = DeviceAgent(
            core,
            connection,
            mqtt.publish,
            lambda host, user, password: engine.login(user, password, registry=host, reauth=True),
            spec.root / "device",
        )
        log.info("core device %s joined as certificate %s", spec.thing, identity.certificate_id)
        await agent.run(poll_interval)


@contextlib.asynccontextmanager
async def running(spec: DeviceSpec, poll_interval: float) -> AsyncIterator[asyncio.Task[None]]:
    """The device, started (waiting for its identity if the installer has not run yet); yields its task (done
    only if it died). On exit its components are stopped."""
    spec.root.mkdir(parents=True, exist_ok=True)
    (spec.root / "started").touch()  # what a supervisor waits for: the device runs, joined or not
    life = asyncio.create_task(_life(spec, poll_interval), name=f"device {spec.thing}")
    try:
        yield life
    finally:
        life.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await life
