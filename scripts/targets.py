"""Where a command acts, as two objects behind one interface: the local cloud (the default) and a real account.

A `Target` is what the command line chose; reached, it is a `Stack`: the Terraform workspace and AWS sessions, and
each thing the commands do differently on the two (how often to look, how long to watch, whether the devices'
predictions can be read as proof, what stopping means). The commands (scripts/flows.py) never ask which they have.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import boto3

from localcloud.info import StackInfo
from scripts import logs, platforms, tfoutputs
from scripts.cloud import account, device, infra, tfstate
from scripts.errors import ToolError
from scripts.fleet import releases, teardown
from scripts.local import localdevices, sandbox
from scripts.progress import Progress

NAMES = ("local", "aws")
PREDICTIONS_TIMEOUT = 60.0


class TargetError(ToolError):
    pass


class Released(Protocol):
    """A command's result that made (or followed) a release."""

    @property
    def release(self) -> releases.Release: ...

    def record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Proven:
    """A release's result, with the predictions that prove the devices predict since (where they can be read)."""

    result: Released
    predictions: dict[str, list[str]] | None = None

    def record(self) -> dict[str, Any]:
        return {**self.result.record(), **({} if self.predictions is None else {"predictions": self.predictions})}


class Stack(abc.ABC):
    """A target, reached."""

    poll_interval: float  # how often a rollout is looked at
    health_window: float  # how long the group is watched after every device SUCCEEDED (scripts/fleet/health.py)

    def __init__(self, space: infra.Workspace) -> None:
        self.space = space

    def session(self, region: str) -> boto3.Session:
        return self.space.session(region)

    def changing(self) -> infra.Workspace:
        """The workspace for a command that changes the cloud side (`apply`, `state`)."""
        return self.space

    @abc.abstractmethod
    def outputs(self) -> tfoutputs.Outputs:
        """The applied stack's Terraform outputs."""

    @abc.abstractmethod
    def applied(self, progress: Progress) -> tfoutputs.Outputs:
        """`make apply`."""

    @abc.abstractmethod
    def provisioned(self, progress: Progress) -> tfoutputs.Outputs:
        """The stack a deploy deploys to."""

    def platforms(self, asked: tuple[platforms.Platform, ...]) -> tuple[platforms.Platform, ...]:
        """The device platforms a deploy builds and publishes for."""
        return asked

    def followed(self, options: releases.Rollout) -> releases.Rollout:
        """`options` with this target's poll interval and health window (unless one was given)."""
        window = self.health_window if options.health_window < 0 else options.health_window
        return replace(options, poll_interval=self.poll_interval, health_window=window)

    def proven(self, outputs: tfoutputs.Outputs, dry_run: bool, released: Callable[[], Released]) -> Proven:
        """What `released()` returns, with whatever proves the devices still predict after it."""
        return Proven(released())

    def subscriber_logs(self, outputs: tfoutputs.Outputs) -> dict[str, Path]:
        """Each device's subscriber log, where this machine can read it."""
        return {}

    def log_folders(self) -> dict[str, Path]:
        """Each core device's logs folder, where this machine can read it."""
        raise TargetError(logs.NOT_ON_AN_ACCOUNT)

    def check_destroy(self, keep_infrastructure: bool) -> None:
        """Refuse a destroy that cannot do what it was asked, before anything is read."""
        return None

    def approve_destroy(
        self,
        outputs: tfoutputs.Outputs,
        keep_infrastructure: bool,
        made: teardown.InstallerMade,
        approve: Callable[[str, str], bool],
    ) -> None:
        """Raise unless the destroy may go ahead (a sandbox of this user's: nobody else's to ask)."""
        return None

    @abc.abstractmethod
    def nothing_applied(self, error: tfoutputs.OutputsError, force: bool, progress: Progress) -> bool:
        """A destroy of a stack with no outputs (`error` says which): whether the local cloud was stopped."""

    def destroyed(self, force: bool, progress: Progress) -> bool | None:
        """What a destroy that removed the infrastructure does last: whether it stopped the local cloud (None:
        there is none)."""
        return None


class Target(abc.ABC):
    name: str

    @abc.abstractmethod
    def reach(self, progress: Progress) -> Stack:
        """The stack, started if it has to be."""

    def find(self, progress: Progress) -> Stack | None:
        """The stack, or None when nothing runs to be asked (nothing is started)."""
        return self.reach(progress)

    def left_running(self) -> str | None:
        """After a failed command: what of this target runs on on this machine, and how to stop it."""
        return None


@dataclass(frozen=True)
class Account(Target):
    """A real account, whose outputs come from a saved `terraform output -json` file, an applied Terraform folder,
    or terraform/."""

    outputs_file: Path | None = None
    terraform_dir: Path | None = None
    confirm: str | None = None  # the account id that lets `apply` and `state` change it without asking
    name = "aws"

    def reach(self, progress: Progress) -> Stack:
        return AccountStack(self, infra.Workspace(self.name, workdir=self.terraform_dir or infra.WORKDIR))


class AccountStack(Stack):
    poll_interval = 5.0  # a real fleet answers on the scale of seconds to minutes
    health_window = 60.0  # a real fleet's components take longer to start and to fail

    def __init__(self, target: Account, space: infra.Workspace) -> None:
        super().__init__(space)
        self.target = target

    def outputs(self) -> tfoutputs.Outputs:
        if self.target.outputs_file:
            return tfoutputs.from_file(self.target.outputs_file)
        return infra.outputs(self.space)

    def applied(self, progress: Progress) -> tfoutputs.Outputs:
        return infra.apply(self.changing(), progress)

    def provisioned(self, progress: Progress) -> tfoutputs.Outputs:
        return self.outputs()  # an account's stack is applied by its owner, after reading the plan

    def changing(self) -> infra.Workspace:
        return account.unattended_if_confirmed(self.space, self.target.confirm)

    def check_destroy(self, keep_infrastructure: bool) -> None:
        if self.target.outputs_file and not keep_infrastructure:
            raise TargetError(
                f"{self.target.outputs_file} names no Terraform state to destroy: use --terraform-dir with the "
                "applied folder, or --keep-infrastructure to remove only the components, artifacts and images"
            )

    def approve_destroy(
        self,
        outputs: tfoutputs.Outputs,
        keep_infrastructure: bool,
        made: teardown.InstallerMade,
        approve: Callable[[str, str], bool],
    ) -> None:
        """Only once `approve(account, question)` says so: there is no undo."""
        what = "the components, artifacts and images" + ("" if keep_infrastructure else " and the infrastructure")
        installer = f", and what the Greengrass installer made: {', '.join(made.names())}" if made.names() else ""
        question = (
            f"This deletes {what} of the stack {outputs.thing_group_name} in account {outputs.account_id} "
            f"({outputs.region}){installer}; there is no undo."
        )
        if not approve(outputs.account_id, question):
            raise TargetError("not confirmed: nothing deleted")
        account.check_reached(self.session(outputs.region), outputs.account_id)

    def nothing_applied(self, error: tfoutputs.OutputsError, force: bool, progress: Progress) -> bool:
        raise error


@dataclass(frozen=True)
class Local(Target):
    """The local cloud in build/local: started if need be, with these devices and hollow fleet (None: whichever it
    runs)."""

    devices: tuple[platforms.Platform, ...] | None = None
    fleet: localdevices.LocalFleet | None = None
    root: Path = sandbox.ROOT
    name = "local"

    def reach(self, progress: Progress) -> Stack:
        """Its stack's names follow `TF_VAR_name_prefix`, as Terraform's do: two checkouts with two prefixes are two
        stacks. Its state is in a bucket of its own, made by terraform/state as in an account (at its first use)."""
        prefix = os.environ.get("TF_VAR_name_prefix") or "edgeml"  # noqa: SIM112 (Terraform's own spelling)
        cloud = sandbox.ensure(progress, self.root, self.devices, self.fleet, prefix)
        region = ("-var", f"region={cloud.region}", "-var", "s3_use_path_style=true")
        # Its real devices are Terraform's core devices: each gets its own IoT policy before it joins. Every artifact
        # version is kept unless TF_VAR_ says (moto expires nothing; the provider waits a minute for a new rule).
        chosen: dict[str, object] = {"core_devices": {thing: {} for thing in cloud.devices}}
        for kept in ("noncurrent_version_days", "telemetry_retention_days"):
            if f"TF_VAR_{kept}" not in os.environ:
                chosen[kept] = None  # a file says null, -var cannot
        (self.root / "local.tfvars.json").write_text(json.dumps(chosen))
        space = infra.Workspace(
            self.name,
            {**cloud.environment(), "TF_DATA_DIR": str(self.root / "terraform")},
            (*region, "-var-file", str(self.root / "local.tfvars.json")),
            stand_in=cloud.environment(),
            unattended=True,
            log=self.root / "terraform.log",
            s3_config=self.root / tfstate.CONFIG,
            local_state=self.root / "terraform.tfstate",
            bootstrap=tfstate.Bootstrap(
                self.root / "state" / "terraform.tfstate", self.root / "terraform-state", region, cloud.aws
            ),
            plans=self.root / "plan",
        )
        if isinstance(space.backend, tfstate.S3Backend):
            infra.s3_backend(space, progress)
        return LocalStack(self, space, cloud)

    def find(self, progress: Progress) -> Stack | None:
        return None if sandbox.find(self.root) is None else self.reach(progress)

    def left_running(self) -> str | None:
        return sandbox.left_running(self.root)


class LocalStack(Stack):
    poll_interval = 1.0  # the local devices poll every second
    health_window = 10.0  # the local core's components crash within seconds

    def __init__(self, target: Local, space: infra.Workspace, cloud: StackInfo) -> None:
        super().__init__(space)
        self.target, self.cloud = target, cloud

    def outputs(self) -> tfoutputs.Outputs:
        return infra.outputs(self.space)

    def applied(self, progress: Progress) -> tfoutputs.Outputs:
        return self._joined(infra.apply(self.space, progress), progress)

    def provisioned(self, progress: Progress) -> tfoutputs.Outputs:
        return self._joined(infra.apply_if_changed(self.space, progress), progress)

    def _joined(self, outputs: tfoutputs.Outputs, progress: Progress) -> tfoutputs.Outputs:
        """The devices provisioned with the flags `make device` prints for them, once Terraform made their
        policies: the same way in as a real device's."""
        for thing in self.cloud.devices:
            joining = device.plan(outputs, thing)
            sandbox.install(self.cloud, self.target.root, thing, joining.installer_args(), progress)
        return outputs

    def platforms(self, asked: tuple[platforms.Platform, ...]) -> tuple[platforms.Platform, ...]:
        # The CPUs of the local devices only: another CPU's image is minutes under emulation.
        return tuple(dict.fromkeys(platforms.named(d.platform) for d in self.cloud.devices.values()))

    def log_folders(self) -> dict[str, Path]:
        return {thing: Path(device.core) / "logs" for thing, device in self.cloud.devices.items()}

    def followed(self, options: releases.Rollout) -> releases.Rollout:
        cloud = self.cloud
        return replace(
            super().followed(options), log_of=lambda thing, component: str(cloud.component_log(component, thing))
        )

    def proven(self, outputs: tfoutputs.Outputs, dry_run: bool, released: Callable[[], Released]) -> Proven:
        """A prediction from every device's subscriber after the release. With nothing deployed, any prediction
        since it began proves the devices still predict; after a deployment, only one made since it settled does."""
        subscribers = self.subscriber_logs(outputs)
        started_at = {thing: sandbox.log_size(log) for thing, log in subscribers.items()}
        result = released()
        if dry_run:
            return Proven(result)
        deployed = result.release.deployment is not None
        since = {thing: sandbox.log_size(log) if deployed else started_at[thing] for thing, log in subscribers.items()}
        proofs = {
            t: sandbox.predictions_flowing(t, log, since[t], PREDICTIONS_TIMEOUT) for t, log in subscribers.items()
        }
        return Proven(result, proofs)

    def subscriber_logs(self, outputs: tfoutputs.Outputs) -> dict[str, Path]:
        return self.cloud.component_logs(outputs.components.subscriber)

    def nothing_applied(self, error: tfoutputs.OutputsError, force: bool, progress: Progress) -> bool:
        # `make plan` started it, or an apply failed early: what it holds is someone else's.
        progress("local cloud: nothing applied in it")
        return self._stop(force, progress)

    def destroyed(self, force: bool, progress: Progress) -> bool | None:
        return self._stop(force, progress)

    def _stop(self, force: bool, progress: Progress) -> bool:
        state = tfstate.bootstrapped(self.space.bootstrap.state_file)
        ours = frozenset({state.bucket} if state else ())
        return sandbox.stop_if_empty(self.session(self.cloud.region), ours, force, progress, self.target.root)


def chosen(
    name: str | None,
    outputs_file: Path | None = None,
    terraform_dir: Path | None = None,
    local_devices: str | None = None,
    local_fleet: localdevices.LocalFleet | None = None,
    platforms: bool = False,
    confirm: str | None = None,
) -> Target:
    """The target the command line names: the local cloud unless `aws` is named or an account's outputs are.
    `platforms`: whether the device platforms to build for were named (an account's choice)."""
    explicit = outputs_file or terraform_dir
    if (name or ("aws" if explicit else "local")) == "aws":
        if local_devices or local_fleet:
            raise TargetError("--local-* options are for the local cloud; an account's devices are its own")
        return Account(outputs_file, terraform_dir, confirm)
    if explicit:
        raise TargetError("--outputs and --terraform-dir are for AWS; the local cloud has its own state")
    if platforms:
        raise TargetError("--platforms is for TARGET=aws; locally the devices' CPUs decide (LOCAL_DEVICES)")
    return Local(tuple(localdevices.parse(local_devices)) if local_devices else None, local_fleet)
