"""What ships to devices is installed from pinned binary wheels: a component's declared dependencies, exactly,
without resolving more (the list in its pyproject.toml is complete by contract)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from scripts.errors import ToolError
from scripts.platforms import Platform

DEVICE_PYTHON = "3.11"  # the oldest Python a device runs the components with (Debian bookworm's python3)


class WheelsError(ToolError):
    """pip could not fetch or install the wheels; the message carries pip's own words."""


LOCK = "requirements.txt"  # a component's pins with the hashes of the wheels it accepts


def declared(project: Path) -> list[str]:
    with (project / "pyproject.toml").open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def lock_entries(project: Path) -> dict[str, list[str]]:
    """A component's hashed requirements file: each `name==version` pin with its `sha256:...` hashes."""
    text = (project / LOCK).read_text().replace("\\\n", " ")
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            pin, *options = line.split()
            entries[pin] = [option.removeprefix("--hash=") for option in options if option.startswith("--hash=")]
    return entries


def locked(project: Path) -> list[str]:
    """The `name==version` pins of a component's hashed requirements file."""
    return list(lock_entries(project))


def hashed(project: Path) -> list[str]:
    """pip arguments that install exactly the component's locked wheels, each checked against its hashes."""
    return ["--require-hashes", "-r", str(project / LOCK)]


def pip(action: str, requirements: list[str], *options: str, resolve: bool = False) -> None:
    """`pip download|install` of exactly these binary wheels (requirements, or `hashed(project)`; `options` say where
    to, e.g. --dest or --target); with `resolve`, their dependencies too."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        action,
        "--quiet",
        "--disable-pip-version-check",
        *(() if resolve else ("--no-deps",)),
        "--only-binary=:all:",
        *options,
        *requirements,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise WheelsError(
            f"pip {action} of {' '.join(requirements)} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}"
        )


def platform_options(platform: Platform) -> list[str]:
    """pip options that resolve wheels for `platform`'s devices rather than for this machine."""
    tags = [option for tag in platform.wheel_tags for option in ("--platform", tag)]
    return [*tags, "--python-version", DEVICE_PYTHON, "--implementation", "cp"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing(requirements: list[str], folder: Path) -> list[str]:
    """The pinned `name==version` requirements with no wheel of that name and version in `folder`."""
    have = set()
    for wheel in folder.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        have.add((_canonical(name), version))
    return [
        requirement
        for requirement in requirements
        if (_canonical(requirement.split("==")[0]), requirement.split("==")[-1]) not in have
    ]
