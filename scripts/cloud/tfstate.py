"""Where the stack's Terraform state lives.

The stack (terraform/) declares the S3 backend: the state in a bucket, locked by a `.tflock` object beside it
(`use_lockfile`, Terraform >= 1.10; no DynamoDB table). The bucket is made by terraform/state, applied once per
account and Region (`make state`), which writes the backend's settings to `state.s3.tfbackend` beside the stack:
commit that file, since teammates and the workflow's plan job initialise from it. The local cloud gets a bucket of
its own the same way at its first Terraform command, with its settings under build/local. A user who keeps the
state on this disk says so with `make state-local`: a `backend_override.tf` (git ignores it, as Terraform's own
convention for override files has it) declares the local backend instead.

What is here is plain data and text: the Terraform runs that make the bucket and move the state are in infra.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from scripts.product import REPO

BOOTSTRAP = REPO / "terraform" / "state"
CONFIG = "state.s3.tfbackend"
OVERRIDE = "backend_override.tf"
OVERRIDE_TEXT = """\
# Written by `make state-local`: this checkout keeps the stack's state on its own disk (the local backend) instead of
# the S3 backend versions.tf declares. `make state` moves it back to S3 and deletes this file.
terraform {
  backend "local" {}
}
"""


@dataclass(frozen=True)
class LocalBackend:
    path: Path | None = None  # None: terraform.tfstate beside the configuration, the local backend's default

    def init_args(self) -> list[str]:
        return [f"-backend-config=path={self.path}"] if self.path else []

    def describe(self, workdir: Path) -> str:
        return f"on this disk ({self.path or workdir / 'terraform.tfstate'})"


@dataclass(frozen=True)
class S3Backend:
    config: Path  # the `-backend-config` file: bucket, key, region, use_lockfile

    def init_args(self) -> list[str]:
        return [f"-backend-config={self.config}"]

    def describe(self, workdir: Path) -> str:
        return f"in S3, locked while in use (settings: {self.config})"


Backend = LocalBackend | S3Backend


@dataclass(frozen=True)
class Bucket:
    """Where the bootstrap put the state: its outputs."""

    bucket: str
    key: str
    region: str

    @classmethod
    def of(cls, outputs: dict[str, object]) -> Bucket:
        """From `terraform output -json` of terraform/state, or the `outputs` of its state file."""
        try:
            values = {name: outputs[name]["value"] for name in ("bucket", "key", "region")}  # type: ignore[index]
        except (KeyError, TypeError):
            raise ValueError(f"terraform/state's outputs lack bucket, key or region: {sorted(outputs)}") from None
        return cls(**{name: str(value) for name, value in values.items()})


@dataclass(frozen=True)
class Bootstrap:
    """How terraform/state runs for a workspace: its own state file and Terraform data folder (never the stack's),
    its variables, and the S3 endpoint of a local stand-in (None: AWS's)."""

    state_file: Path = BOOTSTRAP / "terraform.tfstate"
    data_dir: Path = BOOTSTRAP / ".terraform"
    variables: tuple[str, ...] = ()
    endpoint: str | None = None


def chosen(workdir: Path, s3_config: Path, local_state: Path | None) -> Backend:
    """The backend `terraform init` sets up for `workdir`: the local one where an override says so."""
    return LocalBackend(local_state) if (workdir / OVERRIDE).exists() else S3Backend(s3_config)


def config_text(bucket: Bucket, endpoint: str | None = None) -> str:
    """The S3 backend's settings. `endpoint`: a local stand-in of S3 (path-style addressing, its URL)."""
    settings: dict[str, object] = {
        "bucket": bucket.bucket,
        "key": bucket.key,
        "region": bucket.region,
        "encrypt": True,
        "use_lockfile": True,
    }
    if endpoint:
        settings["use_path_style"] = True
    # JSON's strings and booleans are HCL's: the values are quoted, whatever they hold.
    lines = [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
    if endpoint:
        lines.append(f"endpoints = {{ s3 = {json.dumps(endpoint)} }}")
    header = "# Written by `make state` from terraform/state's outputs: `terraform init -backend-config=<this file>`."
    return "\n".join([header, *lines]) + "\n"


def write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def bootstrapped(state_file: Path) -> Bucket | None:
    """The bucket a bootstrap with its state in `state_file` made, or None before it has."""
    try:
        return Bucket.of(json.loads(state_file.read_text()).get("outputs") or {})
    except (OSError, ValueError, AttributeError):
        return None
