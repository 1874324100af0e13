"""The local cloud's lifecycle as the tools drive it: started in the background, found again, provisioned as
a core device once its thing group exists, stopped with nothing left, and a clear error when it cannot start."""

from __future__ import annotations

import os
import time
from dataclasses import fields
from pathlib import Path

import boto3
import pytest

from localgg.cloud.stack import STATE_FILE, StackInfo
from scripts import localcloud

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
    assert localcloud.find(tmp_path) is None
    (tmp_path / STATE_FILE).write_text("{not json")
    assert localcloud.find(tmp_path) is None
    StackInfo(os.getpid(), *["x"] * (len(fields(StackInfo)) - 1)).save(tmp_path)
    assert StackInfo.load(tmp_path) is not None
    assert localcloud.find(tmp_path) is None  # a live PID, but this test, not a stack (a reused PID)


def test_start_find_provision_stop(tmp_path: Path, registry: str) -> None:
    root = tmp_path / "local"
    root.mkdir()
    (root / "terraform.tfstate").write_text("{}")  # left by a stack that is gone: cleared, not reused
    info = localcloud.ensure(quiet, root)
    try:
        assert not (root / "terraform.tfstate").exists()
        assert localcloud.ensure(quiet, root) == info  # found, not started twice
        env = info.environment()
        session = boto3.Session(
            region_name=info.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        iot = session.client("iot", endpoint_url=env["AWS_ENDPOINT_URL"])
        gg = session.client("greengrassv2", endpoint_url=env["AWS_ENDPOINT_URL_GREENGRASSV2"])
        ecr = session.client("ecr", endpoint_url=env["AWS_ENDPOINT_URL"])
        assert ecr.create_repository(repositoryName="probe")["repository"]["repositoryUri"].startswith(info.registry)
        group = iot.create_thing_group(thingGroupName=info.thing_group)["thingGroupArn"]
        deadline = time.monotonic() + 20
        while not gg.list_core_devices(thingGroupArn=group)["coreDevices"]:
            assert time.monotonic() < deadline, "the core device did not join its thing group"
            time.sleep(0.2)
        (device,) = gg.list_core_devices(thingGroupArn=group)["coreDevices"]
        assert device["coreDeviceThingName"] == info.thing
        assert iot.describe_thing(thingName=info.thing)["thingName"] == info.thing
    finally:
        assert localcloud.stop(quiet, root) is True
    assert localcloud.find(root) is None
    assert not root.exists()
    assert gone(info.pid)
    assert localcloud.stop(quiet, root) is False


def test_a_stack_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker-registry to be found
    with pytest.raises(localcloud.LocalCloudError) as caught:
        localcloud.ensure(quiet, tmp_path / "local")
    assert "the local cloud did not start" in str(caught.value)
    assert "docker-registry is not installed" in str(caught.value)
