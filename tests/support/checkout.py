"""A test's own copy of the checkout and its own stack names, so that it never touches what a user has running: their
build/ folders (the local cloud's, the demo's), their components' containers (named after the components), their
Terraform state."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from scripts.product import REPO, Components


def checkout_copy(target: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) with their times, plus the wheel cache."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for wheel in (REPO / "components/subscriber/wheelhouse").glob("*.whl"):
        shutil.copy2(wheel, target / "components/subscriber/wheelhouse" / wheel.name)
    return target


def name_prefix() -> str:
    """A Terraform `name_prefix` of a test's own (terraform/variables.tf: 2-20 lower-case letters and digits)."""
    return f"t{secrets.token_hex(4)}"


def components(prefix: str) -> Components:
    """The components' names of the stack Terraform makes with `prefix` (its `component_namespace` output)."""
    return Components(f"com.{prefix}")
