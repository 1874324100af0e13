"""Terraform for the cloud side, against the local cloud (the default) or a real account.

A `Workspace` says where Terraform points: the local one sets the endpoints of the running local cloud, keeps
its state (the local backend's `path`) and provider cache under build/local (never next to a real account's
state in terraform/), and applies without asking, since it only touches a sandbox. Against the local cloud,
Terraform's own output goes to a log file and one line sums each command up; against a real account it is shown
(on stderr, so that `--json` keeps stdout for its document), since the plan is what a person approves there.
Terraform runs through scripts/terraform.sh (the offline provider mirror where there is one) and always under a
timeout: a provider that retries forever must not hang a pipeline.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from localcloud.info import StackInfo
from scripts import sandbox, tfoutputs
from scripts.errors import ToolError
from scripts.localdevices import LocalFleet
from scripts.platforms import Platform
from scripts.product import REPO
from scripts.progress import Progress, step

WORKDIR = REPO / "terraform"
TIMEOUT = 900
GRACE = 120.0  # how long an interrupted Terraform may take to save its state and release its lock
TARGETS = ("local", "aws")
# Terraform's closing lines ("Apply complete! Resources: 3 added, 0 changed, 0 destroyed.", "Plan: 1 to add, ...",
# "No changes.") and the start of its error blocks.
SUMMARY = re.compile(r"^(Apply complete!.*|Destroy complete!.*|Plan: .*|No changes\..*)$", re.MULTILINE)
ERROR = re.compile(r"^(?:│ )?Error: ", re.MULTILINE)


class InfraError(ToolError):
    pass


@dataclass(frozen=True)
class Workspace:
    target: str
    env: dict[str, str] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    state: Path | None = None
    cloud: StackInfo | None = None
    log: Path | None = None  # where Terraform's output goes; None: shown as it runs
    workdir: Path = WORKDIR  # the Terraform configuration, whose state every command of the workspace uses

    def init_args(self) -> list[str]:
        return [f"-backend-config=path={self.state}"] if self.state else []


def local_workspace(
    progress: Progress,
    devices: tuple[Platform, ...] | None = None,
    fleet: LocalFleet | None = None,
    root: Path = sandbox.ROOT,
) -> Workspace:
    """The running local cloud (started if need be, with `devices` and `fleet`) as a Terraform workspace. Its
    stack's names follow `TF_VAR_name_prefix`, as Terraform's do: two checkouts with two prefixes are two stacks."""
    cloud = sandbox.ensure(progress, root, devices, fleet, os.environ.get("TF_VAR_name_prefix") or "edgeml")  # noqa: SIM112
    # Its real devices are Terraform's core devices: each gets its own IoT policy before it joins.
    core_devices = "{" + ", ".join(f'"{thing}" = {{}}' for thing in cloud.devices) + "}"
    return Workspace(
        "local",
        {**cloud.environment(), "TF_DATA_DIR": str(root / "terraform")},
        ("-var", f"region={cloud.region}", "-var", "s3_use_path_style=true", "-var", f"core_devices={core_devices}"),
        root / "terraform.tfstate",
        cloud,
        root / "terraform.log",
    )


def terraform(
    args: list[str], space: Workspace, progress: Progress, ok: tuple[int, ...] = (0,), timeout: float = TIMEOUT
) -> int:
    """Run one Terraform command and return its exit code, one of `ok`; InfraError with Terraform's own error
    message otherwise."""
    env = {**os.environ, **space.env, "TF_IN_AUTOMATION": "1"}
    cmd = [str(tfoutputs.TERRAFORM), f"-chdir={space.workdir}", *args]
    try:
        if space.log is None:
            progress(f"$ terraform {' '.join(args)}")
            code = interruptibly(cmd, env, timeout, sys.stderr, say=progress)
            if code not in ok:
                raise InfraError(f"terraform {args[0]} failed (see above)")
            return code
        space.log.parent.mkdir(parents=True, exist_ok=True)
        shown = space.log.relative_to(REPO) if space.log.is_relative_to(REPO) else space.log
        with step(progress, f"terraform {args[0]}", f"log: {shown}") as outcome, space.log.open("a") as log:
            log.write(f"\n$ terraform {' '.join(args)}\n")
            log.flush()
            code = interruptibly([*cmd, "-no-color"], env, timeout, log, subprocess.STDOUT, progress)
            output = space.log.read_text(errors="replace").rsplit("\n$ terraform ", 1)[-1]
            if code not in ok:
                found = ERROR.search(output)
                message = output[found.start() :] if found else output[-3000:]
                raise InfraError(f"terraform {args[0]} failed (log: {space.log}):\n{message.strip()}")
            summaries = SUMMARY.findall(output)
            outcome.said = summaries[-1] if summaries else "done"
    except subprocess.TimeoutExpired:
        raise InfraError(
            f"terraform {args[0]} did not finish within {timeout:.0f}s and was interrupted, as Ctrl-C does, so that "
            f"it saved its state and released its lock (log: {space.log})"
        ) from None
    return code


def interruptibly(
    cmd: list[str],
    env: dict[str, str],
    timeout: float,
    stdout: IO[str],
    stderr: IO[str] | int | None = None,
    say: Progress = lambda message: None,
) -> int:
    """Terraform's exit code. It runs in a session of its own, so a terminal's Ctrl-C reaches only us, and what it
    has started is let finish: an interrupted Terraform cancels the provider's calls in flight, and what they were
    creating exists without being in the state (AlreadyExists on the next apply). A second Ctrl-C, or the end of
    `timeout`, or of GRACE after a Ctrl-C, interrupts it as Ctrl-C does (SIGINT: it stops, writes its state,
    releases a backend's lock); it is killed only if it has not stopped GRACE seconds after that."""
    with subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, start_new_session=True) as process:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _interrupt(process)
            raise
        except KeyboardInterrupt:
            say(
                f"interrupted: letting terraform finish what it started (up to {GRACE:.0f}s; Ctrl-C again stops it now)"
            )
            try:
                process.wait(timeout=GRACE)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                _interrupt(process)
            raise


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def init(space: Workspace, progress: Progress) -> None:
    terraform(["init", "-input=false", *space.init_args()], space, progress)


def plan(space: Workspace, progress: Progress) -> dict[str, object]:
    """`terraform plan -detailed-exitcode`: 0 no changes, 2 changes, anything else an error."""
    init(space, progress)
    code = terraform(["plan", "-input=false", "-detailed-exitcode", *space.variables], space, progress, ok=(0, 2))
    return {"target": space.target, "changes": code == 2}


def apply(space: Workspace, progress: Progress) -> tfoutputs.Outputs:
    """`terraform apply` (asks first, except in the local sandbox); returns the outputs the scripts need."""
    init(space, progress)
    approve = ["-auto-approve"] if space.target == "local" else []
    terraform(["apply", "-input=false", *approve, *space.variables], space, progress)
    return outputs(space)


def apply_if_changed(space: Workspace, progress: Progress) -> tfoutputs.Outputs:
    """The local sandbox's `apply`, skipped when neither the configuration, nor the variables, nor the state changed
    since this tooling last applied it there: the local cloud is driven by nothing else, so the apply would change
    nothing, and it costs seconds a model-only redeploy should not pay. `make apply` always applies."""
    if space.state is None:
        return apply(space, progress)
    marker = space.state.with_name("applied.sha256")
    if space.state.exists() and marker.exists() and marker.read_text() == _applied_digest(space):
        progress("terraform: configuration, variables and state unchanged since the last apply; not applied again")
        return outputs(space)
    applied = apply(space, progress)
    marker.write_text(_applied_digest(space))
    return applied


def _applied_digest(space: Workspace) -> str:
    """The configuration (every file under the workdir, modules included), the variables and the state."""
    assert space.state is not None
    digest = hashlib.sha256("\0".join(space.variables).encode())
    for path in sorted(space.workdir.rglob("*")):
        if path.is_file() and ".terraform" not in path.parts and path.suffix in (".tf", ".tfvars", ".hcl"):
            digest.update(f"\0{path.relative_to(space.workdir)}\0".encode() + path.read_bytes())
    digest.update(space.state.read_bytes() if space.state.exists() else b"")
    return digest.hexdigest()


def outputs(space: Workspace) -> tfoutputs.Outputs:
    return tfoutputs.from_workdir(space.workdir)


def destroy(space: Workspace, progress: Progress) -> None:
    """`terraform destroy` of the applied stack."""
    try:
        terraform(["destroy", "-auto-approve", "-input=false", *space.variables], space, progress)
    except InfraError as exc:
        raise InfraError(f"{exc}\nThe stack may be partly deleted: run the destroy again.") from None
