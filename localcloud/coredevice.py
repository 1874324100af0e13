"""One core device of the local cloud: a localgg core, its MQTT connection to IoT Core and the agent that takes its
deployments (localcloud.device). The stack runs its own core device in its process; an emulated device of another
CPU runs this same code in a container of that CPU (`python -m localcloud device`, see localcloud.emulated).

Only the AWS APIs and MQTT join a device to the cloud: it imports nothing of the cloud side, so it runs wherever
the endpoints answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import docker

from localcloud.device import Connection, DeviceAgent
from localgg.core import Core
from localgg.mqtt import MqttBridge
from localgg.runwith import RunWith

log = logging.getLogger("localcloud.coredevice")
# How an emulated device gets its identity: from its environment, never on a command line (`ps` shows those).
IDENTITY_VARIABLES = ("LOCALCLOUD_DEVICE_KEY_ID", "LOCALCLOUD_DEVICE_SECRET")
# What the README's installer command gives every device; a core that is not root cannot switch users, and runs its
# components as itself, as a nucleus installed without root does.
DEFAULT_USER = "ggc_user:ggc_group" if os.geteuid() == 0 else None


@dataclass(frozen=True)
class DeviceSpec:
    """Everything a core device needs to know to join the local cloud, as the installer writes it down."""

    root: Path  # its core under root/core, its downloads under root/device
    thing: str
    connection: Connection
    mqtt: tuple[str, int]  # IoT Core's broker
    # The installer's --component-default-user: who the components run as (None: the core's own user).
    component_user: str | None = DEFAULT_USER

    def identity_environment(self) -> dict[str, str]:
        return dict(zip(IDENTITY_VARIABLES, self.connection.identity, strict=True))


def identity_from_environment() -> tuple[str, str]:
    """Taken out of the environment as it is read: components inherit the core's environment, and a device's key
    is not theirs (nor is the checkout's PYTHONPATH, which Python has read by now)."""
    missing = [name for name in IDENTITY_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ValueError(f"the device's identity is missing from the environment: {', '.join(missing)}")
    key_id, secret = (os.environ.pop(name) for name in IDENTITY_VARIABLES)
    os.environ.pop("PYTHONPATH", None)
    return key_id, secret


@contextlib.asynccontextmanager
async def running(spec: DeviceSpec, poll_interval: float) -> AsyncIterator[asyncio.Task[None]]:
    """The device, started; yields its polling task (done only if it died). On exit its components are stopped."""
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as parts:
        mqtt = MqttBridge(*spec.mqtt, spec.thing, loop)  # a core connects with its thing name as client id
        mqtt.connect()
        parts.callback(mqtt.close)
        # The device's own Docker engine (DOCKER_HOST where it has one of its own, as an emulated device does).
        engine = docker.from_env(timeout=120)
        parts.callback(engine.close)
        # The installer creates the default user and group when they are missing (UnixPlatform.createUser).
        run_with = RunWith.of(spec.component_user, create=True) if spec.component_user else None
        core = Core(spec.root / "core", spec.thing, spec.connection.region, iot_core=mqtt, run_with=run_with)
        await core.start()
        parts.push_async_callback(core.stop)
        agent = DeviceAgent(
            core,
            spec.connection,
            mqtt.publish,
            lambda host, user, password: engine.login(user, password, registry=host, reauth=True),
            spec.root / "device",
        )
        polling = asyncio.create_task(agent.run(poll_interval))
        parts.callback(polling.cancel)
        log.info("core device %s ready (%s)", spec.thing, agent.platform["architecture"])
        yield polling
