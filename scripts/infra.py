"""Terraform for the cloud side, against the local cloud (the default) or a real account.

A `Workspace` says where Terraform points: the local one sets the endpoints of the running local cloud, keeps
its state and provider cache under build/local (never next to a real account's state in terraform/), and
applies without asking, since it only touches a sandbox. Terraform runs through scripts/terraform.sh (the
offline provider mirror where there is one) and always under a timeout: a provider that retries forever must
not hang a pipeline.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localgg.cloud.stack import StackInfo
from scripts import localcloud, tfoutputs
from scripts.engine import Progress

REPO = Path(__file__).resolve().parent.parent
TERRAFORM = REPO / "scripts" / "terraform.sh"
WORKDIR = REPO / "terraform"
TIMEOUT = 900
TARGETS = ("local", "aws")


class InfraError(RuntimeError):
    pass


@dataclass(frozen=True)
class Workspace:
    target: str
    env: dict[str, str] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    state: Path | None = None
    cloud: StackInfo | None = None

    def state_args(self) -> list[str]:
        return [f"-state={self.state}"] if self.state else []


def local_workspace(progress: Progress, root: Path = localcloud.ROOT) -> Workspace:
    """The running local cloud (started if need be) as a Terraform workspace."""
    cloud = localcloud.ensure(progress, root)
    return Workspace(
        "local",
        {**cloud.environment(), "TF_DATA_DIR": str(root / "terraform")},
        ("-var", f"region={cloud.region}", "-var", "s3_use_path_style=true"),
        root / "terraform.tfstate",
        cloud,
    )


def workspace(target: str, progress: Progress) -> Workspace:
    return local_workspace(progress) if target == "local" else Workspace("aws")


def terraform(
    args: list[str], space: Workspace, progress: Progress, timeout: float = TIMEOUT, quiet: bool = False
) -> int:
    cmd = [str(TERRAFORM), f"-chdir={WORKDIR}", *args]
    progress(f"$ terraform {' '.join(args)}")
    try:
        done = subprocess.run(
            cmd,
            env={**os.environ, **space.env, "TF_IN_AUTOMATION": "1"},
            timeout=timeout,
            check=False,
            stdout=subprocess.DEVNULL if quiet else None,
        )
    except subprocess.TimeoutExpired:
        raise InfraError(f"terraform {args[0]} did not finish within {timeout:.0f}s") from None
    return done.returncode


def init(space: Workspace, progress: Progress) -> None:
    if terraform(["init", "-input=false"], space, progress, quiet=True) != 0:
        raise InfraError("terraform init failed (see above)")


def plan(space: Workspace, progress: Progress) -> dict[str, object]:
    """Exit codes of `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error."""
    init(space, progress)
    code = terraform(
        ["plan", "-input=false", "-detailed-exitcode", *space.state_args(), *space.variables], space, progress
    )
    if code == 1:
        raise InfraError("terraform plan failed (see above)")
    return {"target": space.target, "changes": code == 2}


def apply(space: Workspace, progress: Progress) -> dict[str, Any]:
    """`terraform apply` (asks first, except in the local sandbox); returns the outputs the scripts need."""
    init(space, progress)
    approve = ["-auto-approve"] if space.target == "local" else []
    args = ["apply", "-input=false", *approve, *space.state_args(), *space.variables]
    if terraform(args, space, progress) != 0:
        raise InfraError("terraform apply failed (see above)")
    return outputs(space)


def outputs(space: Workspace) -> dict[str, Any]:
    return tfoutputs.from_workdir(WORKDIR, space.state)


def destroy(space: Workspace, progress: Progress) -> None:
    """`terraform destroy` of the applied stack."""
    args = ["destroy", "-auto-approve", "-input=false", *space.state_args(), *space.variables]
    if terraform(args, space, progress) != 0:
        raise InfraError("terraform destroy failed (see above); the stack may be partly deleted: run it again")
