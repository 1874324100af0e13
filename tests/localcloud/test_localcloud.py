"""The local cloud's lifecycle as the tools drive it: started in the background, found again, provisioned as
a core device once its thing group exists, stopped with nothing left, and a clear error when it cannot start."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import fields
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud.info import STATE_FILE, Device, StackInfo
from localgg.mqtt import BridgeError, MqttBridge
from scripts.building import engine
from scripts.local import sandbox
from tests.conftest import machine_command
from tests.support.eventually import eventually

pytestmark = pytest.mark.slow


def quiet(message: str) -> None:
    pass


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped (PID 1 here does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_state_file_naming_another_process_is_not_a_stack(tmp_path: Path) -> None:
    assert sandbox.find(tmp_path) is None
    (tmp_path / STATE_FILE).write_text("{not json")
    assert sandbox.find(tmp_path) is None
    values: dict[str, Any] = {f.name: "x" for f in fields(StackInfo)}
    StackInfo(**values | {"pid": os.getpid(), "devices": {"x": Device("x", "x", "x")}}).save(tmp_path)
    assert StackInfo.load(tmp_path) is not None
    assert sandbox.find(tmp_path) is None  # a live PID, but this test, not a stack (a reused PID)


def test_start_find_provision_stop(tmp_path: Path, registry: str) -> None:
    root = tmp_path / "local"
    root.mkdir()
    (root / "terraform.tfstate").write_text("{}")  # left by a stack that is gone: cleared, not reused
    info = sandbox.ensure(quiet, root)
    try:
        assert not (root / "terraform.tfstate").exists()
        assert (tmp_path / "local.previous" / "terraform.tfstate").exists()  # a dead stack's folder, kept until stop
        assert sandbox.ensure(quiet, root) == info  # found, not started twice
        env = info.environment()
        # The owner's secret is in the 0600 state file only, not in the stack's log (copied, attached, pasted).
        eventually(lambda: "local cloud ready" in (root / sandbox.LOG).read_text(), 10, what="the ready line")
        assert env["AWS_SECRET_ACCESS_KEY"] not in (root / sandbox.LOG).read_text()
        session = boto3.Session(
            region_name=info.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        iot = session.client("iot", endpoint_url=env["AWS_ENDPOINT_URL"])
        gg = session.client("greengrassv2", endpoint_url=env["AWS_ENDPOINT_URL_GREENGRASSV2"])
        ecr = session.client("ecr", endpoint_url=env["AWS_ENDPOINT_URL"])
        assert ecr.create_repository(repositoryName="probe")["repository"]["repositoryUri"].startswith(info.registry)
        # The registry, as ECR, answers only the token GetAuthorizationToken gives (and IAM lets the owner have).
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://{info.registry}/v2/probe/tags/list", timeout=10)
        assert refused.value.code == 401
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        authorized = urllib.request.Request(f"http://{info.registry}/v2/", headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(authorized, timeout=10) as answer:
            assert answer.status == 200
        iam = session.client("iam", endpoint_url=env["AWS_ENDPOINT_URL"])
        trust = '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "credentials.iot.amazonaws.com"}, '
        iam.create_role(RoleName="probe-tes", AssumeRolePolicyDocument=trust + '"Action": "sts:AssumeRole"}]}')
        assert not gg.list_core_devices()["coreDevices"]  # running, but nobody until the installer ran
        # The installer's own flags, its defaults for the rest (a thing policy of its own, the alias made).
        flags = [
            *("--aws-region", info.region, "--thing-name", info.thing, "--thing-group-name", info.thing_group),
            *("--tes-role-name", "probe-tes", "--tes-role-alias-name", "probe-alias", "--provision", "true"),
        ]
        sandbox.install(info, root, info.thing, flags, quiet)
        group = iot.describe_thing_group(thingGroupName=info.thing_group)["thingGroupArn"]
        eventually(lambda: gg.list_core_devices(thingGroupArn=group)["coreDevices"], 20, 0.2, what="joined its group")
        (device,) = gg.list_core_devices(thingGroupArn=group)["coreDevices"]
        assert device["coreDeviceThingName"] == info.thing
        assert iot.describe_thing(thingName=info.thing)["thingName"] == info.thing
        (certificate,) = iot.list_thing_principals(thingName=info.thing)["principals"]
        policies = {p["policyName"] for p in iot.list_attached_policies(target=certificate)["policies"]}
        assert policies == {"GreengrassV2IoTThingPolicy", "GreengrassTESCertificatePolicyprobe-alias"}
        key = info.identity(info.thing) / "private.pem.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # Only the owner drives it: the keys are in a file only the owner reads, and both endpoints want them.
        assert stat.S_IMODE((root / STATE_FILE).stat().st_mode) == 0o600
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE((root / sandbox.LOG).stat().st_mode) == 0o600
        # Its MQTT broker, as IoT Core, takes no anonymous client and no guessed key; the device got in (its fleet
        # status made it a core device above) with its certificate's id and key.
        host, port = info.mqtt.rsplit(":", 1)
        for credentials in (None, (certificate.rsplit("/", 1)[-1], "a guess")):
            intruder = MqttBridge(host, int(port), "intruder", asyncio.new_event_loop(), credentials)
            with pytest.raises(BridgeError, match="Not authorized"):
                intruder.connect(timeout=3)
        stranger = boto3.Session(region_name=info.region, aws_access_key_id="x", aws_secret_access_key="x")
        with pytest.raises(ClientError, match=r"InvalidClientTokenId|InvalidAccessKeyId|UnrecognizedClient"):
            stranger.client("iot", endpoint_url=env["AWS_ENDPOINT_URL"]).describe_thing(thingName=info.thing)
        with pytest.raises(ClientError, match="UnrecognizedClient"):
            stranger.client("greengrassv2", endpoint_url=env["AWS_ENDPOINT_URL_GREENGRASSV2"]).list_components()
        # The owner's way to point the AWS CLI or GDK at it.
        exports = subprocess.run(
            [sys.executable, "-m", "localcloud", "env", "--root", str(root)], capture_output=True, text=True, check=True
        ).stdout
        assert f"export AWS_ACCESS_KEY_ID={info.access_key_id}" in exports.splitlines()
    finally:
        assert sandbox.stop(quiet, root) is True
    assert sandbox.find(root) is None
    assert not root.exists() and not (tmp_path / "local.previous").exists()
    assert gone(info.pid)
    assert sandbox.stop(quiet, root) is False


def test_a_stack_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker-registry to be found
    with pytest.raises(sandbox.LocalCloudError) as caught:
        sandbox.ensure(quiet, tmp_path / "local")
    assert "the local cloud did not start" in str(caught.value)
    assert "docker-registry is not installed" in str(caught.value)


def test_the_engine_is_there_before_the_stack_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The core device pulls its images through the machine's engine, so on a new machine (no dockerd running yet)
    the engine must be started first: a fresh-machine `make deploy` failed in the stack on docker.from_env. Here an
    engine that cannot be had stops `ensure` before any stack process or state exists."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(engine.EngineError, match="no Docker engine answers at DOCKER_HOST"):
        sandbox.ensure(quiet, tmp_path / "local")
    assert not (tmp_path / "local").exists()


def test_the_registry_and_the_broker_die_with_a_stack_killed_by_sigkill(tmp_path: Path) -> None:
    """kill -9 runs no cleanup: the children are told by the kernel instead (PR_SET_PDEATHSIG), so a crashed stack
    leaves no registry or broker listening."""
    machine_command("mosquitto")
    machine_command("docker-registry")
    script = (
        "import sys, time, pathlib\n"
        "from localcloud import broker, registry\n"
        "root = pathlib.Path(sys.argv[1])\n"
        "started = broker.start(root / 'mqtt')\n"
        "server, host = registry.start(root / 'registry')\n"
        "print(started.process.pid, server.pid, flush=True)\n"
        "time.sleep(120)\n"  # the stack's life until the test kills it, not a wait of the test
    )
    stack = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert stack.stdout is not None
    children = [int(pid) for pid in stack.stdout.readline().split()]
    assert len(children) == 2 and not any(gone(pid) for pid in children)
    stack.kill()
    stack.wait(timeout=10)
    eventually(lambda: all(gone(pid) for pid in children), what="the children gone after their parent's SIGKILL")
