"""The device platforms the kit builds for, under each tool's name for them."""

from __future__ import annotations

from dataclasses import dataclass

from recipeformat.platform import oci_platform, this_device


@dataclass(frozen=True)
class Platform:
    greengrass: str  # a recipe's Platform.architecture, in the nucleus's names
    debian: str  # debootstrap --arch
    qemu: str  # the binfmt_misc entry that runs its binaries here: qemu-<name>
    wheel_tags: tuple[str, ...]  # pip --platform tags of the glibc wheels that load there

    @property
    def docker(self) -> str:
        """The OCI platform: `docker run --platform`, `buildah build --platform`, an index entry."""
        name = oci_platform({"os": "linux", "architecture": self.greengrass})
        assert name is not None, self.greengrass  # every platform listed below has one
        return name

    @property
    def architecture(self) -> str:
        """Docker's name for the CPU: `arm64`, `amd64`."""
        return self.docker.split("/")[1]


PLATFORMS = {
    p.docker: p
    for p in (
        Platform("amd64", "amd64", "x86_64", ("manylinux2014_x86_64", "manylinux_2_28_x86_64")),
        Platform("aarch64", "arm64", "aarch64", ("manylinux2014_aarch64", "manylinux_2_28_aarch64")),
    )
}
BY_GREENGRASS = {p.greengrass: p for p in PLATFORMS.values()}


def this_machine() -> Platform:
    """This machine's platform, read as a core on it reads its own (recipeformat.platform.this_device)."""
    architecture = this_device()["architecture"]
    if architecture not in BY_GREENGRASS:
        raise ValueError(f"this machine's CPU ({architecture}) is none of {', '.join(PLATFORMS)}")
    return BY_GREENGRASS[architecture]


def named(docker_platform: str) -> Platform:
    if docker_platform not in PLATFORMS:
        raise ValueError(f"platform {docker_platform!r} is not one of {', '.join(PLATFORMS)}")
    return PLATFORMS[docker_platform]
