"""One deployment to a thing group of an amd64 and an emulated arm64 core."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from scripts.local import sandbox
from tests.support import elf
from tests.support.make import PREDICTION, Make

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_one_deploy_serves_a_mixed_group_of_amd64_and_arm64_cores(
    make: Make, docker_client: docker.DockerClient
) -> None:
    """`make deploy LOCAL_DEVICES=amd64,arm64`: the local cloud starts a second core device, emulated arm64, and one
    deployment to the thing group gives each core its own CPU's artifacts.

    What the real parts do: the nucleus reports `aarch64` for an arm64 CPU (PlatformResolver) and takes the first
    recipe manifest whose Platform accepts it; its Docker application manager has the device's engine pull the image,
    and an engine pulls its own CPU's entry of a multi-platform index (Docker's `docker pull`). So the arm64 core must
    run the arm64 publisher zip under an arm64 Python and the arm64 variant of the subscriber image, and report
    SUCCEEDED with predictions, beside the amd64 core."""
    sandbox.stop(lambda message: None, make.root)
    done = make("deploy", LOCAL_DEVICES="amd64,arm64")
    assert done.returncode == 0, done.stderr
    cloud = make.cloud()
    arm = f"{cloud.thing}-arm64"
    assert [thing for thing in cloud.devices] == [cloud.thing, arm]
    gg = make.client("greengrassv2")
    core_devices = {d["coreDeviceThingName"]: d["status"] for d in gg.list_core_devices()["coreDevices"]}
    assert core_devices == {cloud.thing: "HEALTHY", arm: "HEALTHY"}
    assert gg.get_core_device(coreDeviceThingName=arm)["architecture"] == "aarch64"
    for thing in cloud.devices:
        (effective,) = gg.list_effective_deployments(coreDeviceThingName=thing)["effectiveDeployments"]
        assert effective["coreDeviceExecutionStatus"] == "SUCCEEDED", thing
        assert f"prediction on {thing}: {PREDICTION}" in done.stdout
        assert PREDICTION in cloud.component_log(make.names.subscriber, thing).read_text()
        assert "published message" in cloud.component_log(make.names.publisher, thing).read_text()
    # Each core ran its own CPU's subscriber image, from one index digest.
    arm_engine = docker.DockerClient(base_url=cloud.devices[arm].engine)
    ran = {
        thing: engine.images.get(engine.containers.get(make.names.subscriber).attrs["Image"]).attrs
        for thing, engine in ((cloud.thing, docker_client), (arm, arm_engine))
    }
    assert {thing: image["Architecture"] for thing, image in ran.items()} == {cloud.thing: "amd64", arm: "arm64"}
    (index,) = ran[arm]["RepoDigests"]  # the machine's engine may hold more, from earlier registries
    assert index.startswith(cloud.registry) and index in ran[cloud.thing]["RepoDigests"]
    # ... and its own CPU's publisher, under its own CPU's Python.
    unpacked = Path(cloud.devices[arm].core) / "packages" / "artifacts-unarchived" / make.names.publisher
    (native_library,) = unpacked.glob("*/publisher/_awscrt*.so")
    assert elf.machine(native_library.read_bytes()[:20]) == elf.MACHINE["aarch64"]
    userland = docker_client.containers.get(cloud.devices[arm].container)
    python = userland.exec_run(["python3", "-c", "import platform; print(platform.machine())"])
    assert python.output.decode().strip() == "aarch64"
    # Components inherit the core's environment, but not the device's key. Read from this machine: the publisher
    # runs as ggc_user, and reading another user's environ takes CAP_SYS_PTRACE, which the container's root lacks.
    top = userland.top()
    pids = [row[top["Titles"].index("PID")] for row in top["Processes"]]
    # Its own arguments, not sudo's `sh -c '... exec python3 -m publisher'` (under qemu, after the interpreter's path).
    (pid,) = [p for p in pids if Path(f"/proc/{p}/cmdline").read_bytes().endswith(b"\0python3\0-m\0publisher\0")]
    publisher_environment = Path(f"/proc/{pid}/environ").read_bytes().decode().replace("\0", "\n")
    assert "SVCUID=" in publisher_environment and "LOCALCLOUD_DEVICE" not in publisher_environment

    refused = make("plan", LOCAL_DEVICES="amd64")
    assert refused.returncode != 0 and "devices are chosen when it starts" in refused.stderr
    done = make("destroy")
    assert done.returncode == 0, done.stderr
    assert docker_client.containers.list(all=True, filters={"name": cloud.devices[arm].container}) == []
    assert not make.root.exists()
