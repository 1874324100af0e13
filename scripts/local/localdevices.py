"""The local cloud's core devices: which CPUs `LOCAL_DEVICES` asks for, and for each one that is not this
machine's, the image an emulated device of that CPU runs in (localcloud/device_image/Dockerfile), built once per
machine and content version under emulation.

The stack runs this machine's core itself; every other CPU becomes an emulated device (localcloud.emulated).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker

from scripts.building import crossbuild, engine, wheels
from scripts.errors import ToolError
from scripts.platforms import BY_GREENGRASS, PLATFORMS, Platform, this_machine
from scripts.product import REPO
from scripts.progress import Progress

CONTEXT = REPO / "localcloud" / "device_image"
# What the device runtime (localcloud.coredevice and localgg) imports, pinned as the project pins them.
RUNTIME = ("boto3", "docker", "PyYAML", "paho-mqtt", "semantic_version")
IMAGE = "edgeml/localgg-device"
START_TIMEOUT = 180.0  # how long an emulated device may take to start, Python under qemu on a loaded machine
# `LOCAL_DEVICES` names CPUs as Docker does or as Greengrass does.
_ALIASES = {**{p.architecture: p for p in PLATFORMS.values()}, **BY_GREENGRASS}


class DevicesError(ToolError):
    pass


@dataclass(frozen=True)
class LocalFleet:
    """Hollow core devices beside the real ones, and how the local cloud treats a fleet: passed to the stack when
    it starts, which checks them (localcloud.hollow and localcloud.throttle say what they mean)."""

    hollow: int = 0
    faults: str = ""  # e.g. failing=0.2,offline=0.01
    time_scale: float = 1.0
    throttle: str = ""  # e.g. DescribeJob=10,greengrassv2=20
    drift: str = ""  # e.g. 0.1:alcohol,pH:1.0: a tenth of the hollow devices see two features moved

    def __post_init__(self) -> None:
        if self.hollow < 0 or self.time_scale <= 0:
            raise DevicesError(
                f"hollow devices ({self.hollow}) cannot be negative, nor the time scale ({self.time_scale})"
            )

    def arguments(self) -> list[str]:
        given = {
            "--hollow-devices": str(self.hollow) if self.hollow else "",
            "--hollow-faults": self.faults,
            "--time-scale": f"{self.time_scale:g}" if self.time_scale != 1.0 else "",
            "--throttle": self.throttle,
            "--hollow-drift": self.drift,
        }
        return [f"{flag}={value}" for flag, value in given.items() if value]


def parse(text: str) -> list[Platform]:
    """`amd64,arm64` -> the platforms, in order, without repeats; this machine's must be among them, since the stack
    always runs its own core."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _ALIASES]
    if unknown:
        raise DevicesError(f"LOCAL_DEVICES: {', '.join(unknown)} is not one of {', '.join(sorted(_ALIASES))}")
    chosen = list(dict.fromkeys(_ALIASES[name] for name in names))
    here = this_machine()
    if here not in chosen:
        raise DevicesError(
            f"LOCAL_DEVICES must include this machine's CPU ({here.architecture}): the local cloud always runs "
            "a core of its own"
        )
    return chosen


def runtime_requirements() -> list[str]:
    pinned = {requirement.split("==")[0]: requirement for requirement in wheels.declared(REPO)}
    return [pinned[name] for name in RUNTIME]


def image_tag(platform: Platform) -> str:
    """Named after what goes into it, so a changed Dockerfile or pin builds anew and an unchanged one never does."""
    content = hashlib.sha256((CONTEXT / "Dockerfile").read_bytes())
    content.update("\n".join(runtime_requirements()).encode())
    return f"{IMAGE}:{platform.debian}-{content.hexdigest()[:12]}"


def ensure_image(client: docker.DockerClient, platform: Platform, progress: Progress) -> str:
    """The device image for `platform` in the engine, built when missing (a few minutes under emulation)."""
    tag = image_tag(platform)
    if engine.image_exists(client, tag):
        return tag
    base = crossbuild.ensure_base_image(platform, progress)
    progress(f"building {tag}, the userland of an emulated {platform.docker} core device")
    with tempfile.TemporaryDirectory(prefix="edgeml-device-") as tmp:
        context = Path(tmp)
        shutil.copy(CONTEXT / "Dockerfile", context / "Dockerfile")
        # With their dependencies, resolved for the device's CPU: the runtime's own list is not complete.
        wheels.pip(
            "download",
            runtime_requirements(),
            "--dest",
            str(context / "wheels"),
            *wheels.platform_options(platform),
            resolve=True,
        )
        crossbuild.build(context, platform, {"BASE_IMAGE": base}, tag, progress, network="host")
    if not engine.image_exists(client, tag):
        raise DevicesError(f"{tag} was built but the engine does not have it")
    return tag
