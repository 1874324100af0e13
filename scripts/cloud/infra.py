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
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import boto3

from scripts import aws, isolation, tfoutputs
from scripts.cloud import tfstate
from scripts.errors import ToolError
from scripts.product import REPO
from scripts.progress import Progress, step

WORKDIR = REPO / "terraform"
TIMEOUT = 900
GRACE = 120.0  # how long an interrupted Terraform may take to save its state and release its lock
# Terraform's closing lines ("Apply complete! Resources: 3 added, 0 changed, 0 destroyed.", "Plan: 1 to add, ...",
# "No changes.") and the start of its error blocks.
SUMMARY = re.compile(r"^(Apply complete!.*|Destroy complete!.*|Plan: .*|No changes\..*)$", re.MULTILINE)
ERROR = re.compile(r"^(?:│ )?Error: ", re.MULTILINE)


class InfraError(ToolError):
    pass


@dataclass(frozen=True)
class Workspace:
    """Where Terraform and the AWS clients point for one target (scripts/targets.py makes one per target)."""

    name: str  # the target's, as results record it
    env: dict[str, str] = field(default_factory=dict)  # added to Terraform's environment
    variables: tuple[str, ...] = ()
    # The local stand-in's endpoints and keys, as boto3's variables name them; None: a real account's normal chain.
    stand_in: dict[str, str] | None = None
    unattended: bool = False  # Terraform applies and moves state without asking: a sandbox nobody else uses
    log: Path | None = None  # where Terraform's output goes; None: shown as it runs
    workdir: Path = WORKDIR  # the Terraform configuration, whose state every command of the workspace uses
    s3_config: Path | None = None  # the S3 backend's settings; None: state.s3.tfbackend beside the configuration
    local_state: Path | None = None  # the state file with the local backend; None: the local backend's default
    bootstrap: tfstate.Bootstrap = field(default_factory=tfstate.Bootstrap)  # how terraform/state runs here
    plans: Path = REPO / "build" / "plan"  # `make plan`'s saved plan and its text

    @property
    def s3_settings(self) -> Path:
        return self.s3_config or self.workdir / tfstate.CONFIG

    @property
    def backend(self) -> tfstate.Backend:
        """Asked each time: moving the state (`make state`, `make state-local`) changes it."""
        return tfstate.chosen(self.workdir, self.s3_settings, self.local_state)

    def session(self, region: str) -> boto3.Session:
        return aws.session(region, self.stand_in)


def terraform(
    args: list[str], space: Workspace, progress: Progress, ok: tuple[int, ...] = (0,), timeout: float = TIMEOUT
) -> int:
    """Run one Terraform command and return its exit code, one of `ok`; InfraError with Terraform's own error
    message otherwise."""
    env, cmd = _environment(space), [str(tfoutputs.TERRAFORM), f"-chdir={space.workdir}", *args]
    try:
        if space.log is None:
            progress(f"$ terraform {' '.join(args)}")
            code = interruptibly(cmd, env, timeout, sys.stderr, say=progress)
            if code not in ok:
                raise InfraError(f"terraform {args[0]} failed (see above)")  # its hints are above too
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
                raise InfraError(f"terraform {args[0]} failed (log: {space.log}):\n{message.strip()}{_hint(output)}")
            summaries = SUMMARY.findall(output)
            outcome.said = summaries[-1] if summaries else "done"
    except subprocess.TimeoutExpired:
        raise InfraError(
            f"terraform {args[0]} did not finish within {timeout:.0f}s and was interrupted, as Ctrl-C does, so that "
            f"it saved its state and released its lock (log: {space.log})"
        ) from None
    return code


def _environment(space: Workspace) -> dict[str, str]:
    """A stand-in's Terraform gets none of the user's AWS settings (scripts/isolation.py); an account's, all."""
    base = isolation.environment(space.env) if space.stand_in is not None else {**os.environ, **space.env}
    return {**base, "TF_IN_AUTOMATION": "1"}


def _hint(output: str) -> str:
    """The way out of the two failures a shared state brings, said after Terraform's own words."""
    if "Error acquiring the state lock" in output:
        return (
            "\nAnother Terraform run holds the stack's lock (who, and since when: above). If that run is gone for good "
            "(killed), `scripts/terraform.sh -chdir=terraform force-unlock <ID>` frees it."
        )
    if "-migrate-state" in output:
        return "\nThe state's backend changed: `make state` moves the state to S3, `make state-local` to this disk."
    if "Failed to load state" in output and re.search(r"StatusCode: 403|AccessDenied", output):
        # S3 answers a HEAD without a body: Terraform cannot say which permission it lacked.
        return (
            "\nYour credentials may not read the stack's Terraform state: reading it needs s3:GetObject on the state "
            'object and s3:ListBucket on its bucket (README: "What the deploying identity needs").'
        )
    return ""


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
    with subprocess.Popen(
        cmd, env=env, stdout=stdout, stderr=stderr, start_new_session=True, preexec_fn=_stoppable
    ) as process:
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


def _stoppable() -> None:
    """In Terraform's process, before it starts: SIGINT as a terminal delivers it. Started from a background job
    (`cmd &` in a script, some CI runners) we inherit SIGINT ignored, and so would Terraform, which then never
    stops gracefully when told to."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def init(space: Workspace, progress: Progress) -> None:
    backend = space.backend
    if isinstance(backend, tfstate.S3Backend) and not backend.config.exists():
        raise InfraError(
            f"the stack's Terraform state has no home yet ({backend.config} is missing): `make state TARGET=aws` "
            "makes an S3 bucket for it, once per account (commit the file it writes), or `make state-local "
            "TARGET=aws` keeps it on this disk"
        )
    terraform(["init", "-input=false", *backend.init_args()], space, progress)


def s3_backend(space: Workspace, progress: Progress) -> tfstate.S3Backend:
    """The workspace's S3 backend, its bucket made first by terraform/state where its settings are missing (in an
    account, Terraform asks before it creates anything)."""
    config = space.s3_settings
    if config.exists():
        return tfstate.S3Backend(config)
    boot = space.bootstrap
    progress(f"state: making a bucket for the stack's Terraform state (terraform/state, its state: {boot.state_file})")
    made = replace(space, env={**space.env, "TF_DATA_DIR": str(boot.data_dir)}, workdir=tfstate.BOOTSTRAP)
    boot.state_file.parent.mkdir(parents=True, exist_ok=True)
    terraform(["init", "-input=false", *tfstate.LocalBackend(boot.state_file).init_args()], made, progress)
    approve = ["-auto-approve"] if space.unattended else []
    terraform(["apply", "-input=false", *approve, *boot.variables], made, progress)
    bucket = tfstate.bootstrapped(boot.state_file)
    if bucket is None:
        raise InfraError(f"terraform/state applied, but its state ({boot.state_file}) names no bucket")
    tfstate.write(config, tfstate.config_text(bucket, boot.endpoint))
    progress(f"state: s3://{bucket.bucket}/{bucket.key} ({bucket.region}); settings in {config}")
    return tfstate.S3Backend(config)


@dataclass(frozen=True)
class StateMoved:
    target: str
    state: str  # "s3" or "local": where the state now is

    def record(self) -> dict[str, Any]:
        return {"target": self.target, "state": self.state}


def move_state(space: Workspace, to: str, progress: Progress) -> StateMoved:
    """The stack's state moved to S3 (`to="s3"`, the bucket made if need be) or to this disk (`to="local"`), with
    `terraform init -migrate-state`. Against an account Terraform asks before it copies (and shows both states when
    the destination has one already); the local cloud's sandbox is moved without asking. The state it moved from
    is left where it was."""
    override = space.workdir / tfstate.OVERRIDE
    before = space.backend
    if to == "s3":
        target: tfstate.Backend = s3_backend(space, progress)
        override.unlink(missing_ok=True)
    else:
        target = tfstate.LocalBackend(space.local_state)
        tfstate.write(override, tfstate.OVERRIDE_TEXT)
    if before == target:
        progress(f"state: already {target.describe(space.workdir)}")
    else:
        quiet = ["-force-copy"] if space.unattended else []
        try:
            terraform(["init", "-migrate-state", *quiet, *target.init_args()], space, progress)
        except InfraError:
            if isinstance(before, tfstate.LocalBackend):  # put the backend back as it was, and say what failed
                tfstate.write(override, tfstate.OVERRIDE_TEXT)
            else:
                override.unlink(missing_ok=True)
            raise
        progress(f"state: moved, now {target.describe(space.workdir)}; the copy {before.describe(space.workdir)} stays")
    return StateMoved(space.name, "s3" if isinstance(target, tfstate.S3Backend) else "local")


def output(space: Workspace, args: list[str]) -> str:
    """A Terraform command's standard output (`show`, `output`): read, never shown."""
    cmd = [str(tfoutputs.TERRAFORM), f"-chdir={space.workdir}", *args]
    done = subprocess.run(cmd, env=_environment(space), capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise InfraError(f"terraform {args[0]} failed:\n{done.stderr.strip()}{_hint(done.stderr)}")
    return done.stdout


def apply(space: Workspace, progress: Progress) -> tfoutputs.Outputs:
    """`terraform apply` (asks first, except in the local sandbox); returns the outputs the scripts need."""
    init(space, progress)
    approve = ["-auto-approve"] if space.unattended else []
    terraform(["apply", "-input=false", *approve, *space.variables], space, progress)
    return outputs(space)


def apply_if_changed(space: Workspace, progress: Progress) -> tfoutputs.Outputs:
    """The local sandbox's `apply`, skipped when neither the configuration, nor the variables, nor the state changed
    since this tooling last applied it there: the local cloud is driven by nothing else, so the apply would change
    nothing, and it costs seconds a model-only redeploy should not pay. `make apply` always applies."""
    if space.local_state is None:  # an account's: others may change it
        return apply(space, progress)
    marker = space.local_state.with_name("applied.sha256")
    if marker.exists() and marker.read_text() == _applied_digest(space):
        progress("terraform: configuration, variables and state unchanged since the last apply; not applied again")
        return outputs(space)
    applied = apply(space, progress)
    marker.write_text(_applied_digest(space))
    return applied


def _applied_digest(space: Workspace) -> str:
    """The configuration (every file under the workdir, modules included), the variables and the state."""
    digest = hashlib.sha256("\0".join(space.variables).encode())
    for path in sorted(space.workdir.rglob("*")):
        if path.is_file() and ".terraform" not in path.parts and path.suffix in (".tf", ".tfvars", ".hcl"):
            digest.update(f"\0{path.relative_to(space.workdir)}\0".encode() + path.read_bytes())
    digest.update(_state_version(space))
    return digest.hexdigest()


def _state_version(space: Workspace) -> bytes:
    """Something that changes whenever the state is written: the file itself, or the S3 object's ETag (b"" with no
    state yet, so that a first apply always runs)."""
    backend = space.backend
    if isinstance(backend, tfstate.LocalBackend):
        path = backend.path or space.workdir / "terraform.tfstate"
        return path.read_bytes() if path.exists() else b""
    bucket = tfstate.bootstrapped(space.bootstrap.state_file)
    if bucket is None:
        return b""
    s3 = aws.client(space.session(bucket.region), "s3")
    try:
        with aws.calling("read the Terraform state's version"):
            return str(s3.head_object(Bucket=bucket.bucket, Key=bucket.key)["ETag"]).encode()
    except aws.AwsError:
        return b""


def outputs(space: Workspace) -> tfoutputs.Outputs:
    """The outputs of the state the workspace's backend names (`terraform output -json`, whose answer outside an
    applied stack is `{}`: the missing outputs are then named)."""
    try:
        raw = json.loads(output(space, ["output", "-json"]) or "{}")
    except (InfraError, json.JSONDecodeError) as exc:
        raise tfoutputs.OutputsError(f"cannot read the Terraform outputs of {space.workdir}: {exc}") from None
    data = space.env.get("TF_DATA_DIR", str(space.workdir / ".terraform"))
    return tfoutputs.parsed(
        raw if isinstance(raw, dict) else {}, f"the Terraform state of {space.workdir} (data: {data})"
    )


def destroy(space: Workspace, progress: Progress) -> None:
    """`terraform destroy` of the applied stack."""
    try:
        terraform(["destroy", "-auto-approve", "-input=false", *space.variables], space, progress)
    except InfraError as exc:
        raise InfraError(f"{exc}\nThe stack may be partly deleted: run the destroy again.") from None
