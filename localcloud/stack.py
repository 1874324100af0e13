"""The local cloud and its device in one process: what `make deploy` talks to when no AWS account is involved.

- moto on loopback for S3, ECR (API), IAM, IoT and STS (`AWS_ENDPOINT_URL`), with ECR bound to
- Debian's registry on loopback (`docker login` with an ECR token, then push and pull as with ECR),
- mosquitto on loopback as IoT Core's MQTT broker,
- the Greengrass endpoint on its own port (`AWS_ENDPOINT_URL_GREENGRASSV2`): greengrassv2, the IoT jobs data
  plane and the IoT credentials provider (localcloud.server),
- a localgg core as the core device `thing`, provisioned as the installer does with `--provision true
  --thing-group-name --tes-role-alias-name`: the thing is created in IoT and joins the group once the group
  exists (Terraform creates it after the stack starts). From then on it talks to the cloud only through the
  AWS APIs (localcloud.device), and the cloud learns about it only from them,
- for each emulated device asked for, a core of that CPU in a container of its own image, with an engine of its
  own (localcloud.emulated), provisioned the same way as `<thing>-<architecture>`: a mixed fleet in one group,
- as many hollow core devices as asked for (localcloud.hollow), `<thing>-hollow-00001`..., provisioned the same
  way, taking their jobs beside the real cores; the jobs' clock runs `time_scale` times faster, and the services
  answer over the `throttle` rates with ThrottlingException (localcloud.cloud).

Everything lives in memory and under `root`; `root/stack.json` appears once every part answers and says where
each one is. SIGTERM stops the components (containers included), the servers and the registry, then removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
from botocore.exceptions import ClientError
from moto.s3.models import s3_backends

from localcloud import audit, broker, coredevice, firehose, moto_aws, mqttauth, registry
from localcloud.cloud import ACCOUNT, running
from localcloud.coredevice import DeviceSpec
from localcloud.emulated import Emulated, emulated_device, names
from localcloud.greengrassv2 import ControlPlane
from localcloud.hollow import Drift, Faults, HollowFleet, ScaledClock
from localcloud.hollow_telemetry import HollowTelemetry, Setup, setup_reader
from localcloud.info import STATE_FILE, Device, StackInfo, device_home
from localcloud.rules import RulesEngine
from localcloud.throttle import Throttle
from localgg.leftovers import reap_under
from localgg.mqtt import MqttBridge
from recipeformat.platform import oci_platform, this_device

log = logging.getLogger("localcloud.stack")


FLEET_STATUS = "$aws/things/+/greengrassv2/health/json"
AUDIT_FILE = "allowed.json"  # which identity was allowed which action (localcloud.audit)


async def _installer(devices: list[Callable[[], object]], interval: float) -> None:
    """The hollow devices' provisioning, retried until the group exists and again whenever it is recreated."""
    loop = asyncio.get_running_loop()
    while True:
        for provision in devices:
            try:
                await loop.run_in_executor(None, provision)
            except ClientError as exc:
                log.warning("provisioning: %s", exc)
        await asyncio.sleep(interval)


async def _broker_accounts(mqtt: broker.Broker, cloud: broker.Account, region: str, interval: float) -> None:
    """The broker kept knowing exactly the devices IoT has ACTIVE certificates for, with their policies' topics:
    a device that joins can connect within `interval`, one whose certificate goes is shut out."""
    loop = asyncio.get_running_loop()
    while True:
        certificates = await loop.run_in_executor(None, moto_aws.device_certificates, ACCOUNT, region)
        mqtt.accounts(mqttauth.accounts(cloud, certificates, region, ACCOUNT))
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class FleetSettings:
    """Hollow core devices beside the real ones, and how the cloud treats a fleet (localcloud.hollow)."""

    hollow: int = 0
    faults: Faults = field(default_factory=Faults)
    time_scale: float = 1.0
    throttle: Throttle | None = None
    drift: Drift = field(default_factory=Drift)  # which hollow devices see shifted inputs (their telemetry says so)

    def names(self, thing: str) -> list[str]:
        return [f"{thing}-hollow-{index:05d}" for index in range(1, self.hollow + 1)]


async def _rules(engine: RulesEngine, listener: MqttBridge, delivery: firehose.Delivery, interval: float) -> None:
    """The rules engine listening on what the enabled rules select, as they are created and deleted, and Firehose's
    buffers written as they come due."""
    loop = asyncio.get_running_loop()
    listening: dict[str, Callable[[], None]] = {}
    while True:
        wanted = engine.filters()
        for topic_filter in wanted - set(listening):

            def receive(topic: str, payload: bytes, retain: bool) -> None:
                engine.receive(topic, payload)

            listening[topic_filter] = await loop.run_in_executor(None, listener.subscribe, topic_filter, 1, receive)
        for topic_filter in set(listening) - wanted:
            listening.pop(topic_filter)()
        await loop.run_in_executor(None, delivery.tick)
        await asyncio.sleep(interval)


def hollow_windows(
    hollow: HollowFleet, plane: ControlPlane, fleet: FleetSettings, clock: ScaledClock, engine: RulesEngine
) -> HollowTelemetry:
    """The hollow devices' telemetry, from the components each has installed, into the rules engine."""

    def recipe_of(name: str, version: str) -> dict[str, Any] | None:
        with plane.lock:
            found = plane.components.get(name, {}).get(version)
        return found.recipe if found else None

    def read(uri: str) -> bytes | None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            found = s3_backends[ACCOUNT]["aws"].get_object(bucket, key)
        except Exception:  # moto's MissingKey or MissingBucket: the device would fail its deployment, not send
            return None
        return bytes(found.value) if found is not None else None

    setup = setup_reader(recipe_of, read)

    def of(thing: str) -> Setup | None:
        return setup(tuple(sorted(hollow.cores[thing].components.items())))

    return HollowTelemetry(list(hollow.cores), fleet.drift, clock, of, engine.receive, fleet.drift.seed)


def fleet_status_receiver(plane: ControlPlane) -> Callable[[str, bytes, bool], None]:
    def receive(topic: str, payload: bytes, retain: bool) -> None:
        thing = topic.split("/")[2]
        try:
            report = json.loads(payload)
            if not isinstance(report, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log.warning("a fleet status report from %s is not JSON (%s); dropped", thing, exc)
            return
        with plane.lock:
            plane.fleet_status(thing, report)

    return receive


def native_home(root: Path) -> Path:
    """The folder of the stack's own core device (localcloud.info.device_home), made afresh: what a core of an
    earlier stack left running there is ended first (localgg.leftovers), as it would be on a real device."""
    home = device_home(root)
    if home == root:
        return root
    reap_under(home)
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    home.mkdir(mode=0o755)
    return home


async def run(
    root: Path,
    thing: str,
    group: str,
    region: str,
    emulated: tuple[Emulated, ...] = (),
    fleet: FleetSettings = FleetSettings(),
    poll_interval: float = 1.0,
) -> int:
    root = root.resolve()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    audit.record_to(root / AUDIT_FILE)
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as parts:  # whatever started is stopped, in reverse, whatever fails
        # The registry answers only the stack; ECR's front (localcloud.ecr_front) answers the tokens it issues.
        registry_password = secrets.token_urlsafe(32)
        registry_process, registry_host = registry.start(root / "registry", password=registry_password)
        parts.callback(_terminate, registry_process)
        # The broker knows the stack's own client now and each device once its certificate exists (_broker_accounts).
        cloud_client = mqttauth.cloud_account()
        mqtt_broker = broker.start(root / "mqtt", accounts=[cloud_client])
        parts.callback(mqtt_broker.stop)
        mqtt = mqtt_broker.address
        # The real devices join as the installer provisions them (localcloud.installer, after Terraform made the
        # group, the role alias and each device's policy), and sign with their certificates.
        things = [thing, *(f"{thing}-{device.architecture}" for device in emulated)]
        clock = ScaledClock(fleet.time_scale)
        cloud = parts.enter_context(running(region, {}, registry_host, fleet.throttle, clock, registry_password))
        aws_url, gg_url, plane, owner = cloud.aws, cloud.greengrass, cloud.plane, cloud.owner
        assert cloud.registry is not None  # given one
        iot = cloud.client("iot")
        hollow = HollowFleet(plane, fleet.names(thing), fleet.faults, clock)
        plane.jobs.notify = hollow.notified
        hollow.start()
        parts.callback(hollow.stop)
        accounts = asyncio.create_task(_broker_accounts(mqtt_broker, cloud_client, region, poll_interval))
        parts.callback(accounts.cancel)
        listener = MqttBridge(*mqtt, "localcloud-fleet-status", loop, (cloud_client.username, cloud_client.password))
        listener.connect()
        parts.callback(listener.close)
        listener.subscribe(FLEET_STATUS, 1, fleet_status_receiver(plane))
        # IoT topic rules and Firehose's buffering, on the stack's clock (a hollow fleet's hour passes in minutes).
        delivery = firehose.Delivery(ACCOUNT, clock)
        parts.callback(firehose.install(delivery))
        rules_engine = RulesEngine(
            ACCOUNT, region, clock, lambda topic, data, qos: listener.publish(topic, qos, data, False)
        )
        rules = asyncio.create_task(_rules(rules_engine, listener, delivery, poll_interval))
        parts.callback(rules.cancel)
        windows = hollow_windows(hollow, plane, fleet, clock, rules_engine)
        windows.start()
        parts.callback(windows.stop)

        def spec(name: str, folder: Path) -> DeviceSpec:
            return DeviceSpec(folder, name, gg_url, gg_url, aws_url, mqtt)

        home = native_home(root)
        if home != root:
            parts.callback(shutil.rmtree, home, ignore_errors=True)
        native = await parts.enter_async_context(coredevice.running(spec(thing, home), poll_interval))
        own_engine = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        devices = {thing: Device(str(home / "core"), oci_platform(this_device()) or "", own_engine)}
        machine_engine = docker.from_env(timeout=120)
        for name, device in zip(things[1:], emulated, strict=True):
            # Beside the stack's own device, where the emulated device's ggc_user can walk to its folder too: the
            # stack's folder (0700) would stop it at the first step.
            folder = home / "devices" / name
            engine = await loop.run_in_executor(
                None, parts.enter_context, emulated_device(machine_engine, spec(name, folder), device, poll_interval)
            )
            devices[name] = Device(str(folder / "core"), device.platform, engine, names(spec(name, folder))[1])
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        provisions: list[Callable[[], object]] = []
        if fleet.hollow:
            provisions.append(functools.partial(hollow.provision, iot, group))
        installer = asyncio.create_task(_installer(provisions, poll_interval))
        parts.callback(installer.cancel)
        info = StackInfo(
            os.getpid(),
            aws_url,
            gg_url,
            cloud.registry,
            region,
            ACCOUNT,
            thing,
            group,
            devices,
            f"{mqtt[0]}:{mqtt[1]}",
            *owner,
            fleet.hollow,
        )
        info.save(root)
        parts.callback((root / STATE_FILE).unlink, missing_ok=True)
        # The owner's secret stays in the 0600 state file alone: a log is copied, attached and pasted.
        shown = {**asdict(info), "secret_access_key": f"(in {root / STATE_FILE})"}
        log.info("local cloud ready: %s", json.dumps(shown))
        tasks = [asyncio.create_task(stop.wait()), native, installer, accounts, rules]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping the local cloud")
        for task in (native, installer, accounts, rules):
            if task.done():
                task.result()  # a loop died: say why (the parts still stop)
    log.info("stopped")
    return 0


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)
