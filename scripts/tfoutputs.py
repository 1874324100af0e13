"""Terraform outputs: the deploy pipeline's only input from Terraform.

Parsed from `terraform output -json`, saved in a file or as Terraform prints it (scripts/cloud/infra.py runs it);
a missing output is an error that names it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from scripts.errors import ToolError
from scripts.product import REPO, Components

TERRAFORM = REPO / "scripts" / "terraform.sh"


@dataclass(frozen=True)
class Outputs:
    """Every output the scripts read, checked once when read. terraform/outputs.tf and terraform/README.md must
    declare each field (a test checks)."""

    region: str
    account_id: str
    repository_url: str
    repository_arn: str
    artifact_bucket: str
    artifact_prefix: str
    component_namespace: str
    token_exchange_role_arn: str
    token_exchange_role_name: str
    role_alias: str
    thing_group_name: str
    thing_group_arn: str
    iot_data_endpoint: str
    iot_credential_endpoint: str
    iot_policy_names: dict[str, str]  # each core device's own IoT policy, by thing
    certificate_pems: dict[str, str]  # the certificate issued from each core device's CSR, by thing
    telemetry_topic_prefix: str  # devices publish their telemetry windows on <prefix>/<thing>/telemetry
    telemetry_object_prefix: str  # in the artifact bucket: windows/ (Firehose's delivery), delivery- and rule-errors/
    telemetry_window_seconds: str  # how often each device sends one (a number, as Terraform's outputs are strings here)

    @property
    def components(self) -> Components:
        return Components(self.component_namespace, self.telemetry_topic_prefix, int(self.telemetry_window_seconds))

    def record(self) -> dict[str, Any]:
        return asdict(self)


REQUIRED_OUTPUTS = tuple(f.name for f in fields(Outputs))
MAPS = tuple(f.name for f in fields(Outputs) if str(f.type).startswith("dict"))


class OutputsError(ToolError):
    """Outputs missing or unreadable; the message names which and where."""


def parsed(raw: dict[str, Any], source: str) -> Outputs:
    """The outputs in `raw` (`terraform output -json`), checked; `source` says where they came from."""
    values = {name: item["value"] if isinstance(item, dict) and "value" in item else item for name, item in raw.items()}
    missing = [name for name in REQUIRED_OUTPUTS if name not in values]
    if missing:
        raise OutputsError(
            f"{source} lacks the Terraform output(s) {', '.join(missing)}: run `make apply` (or `make deploy`) first"
        )
    wrong = [
        name
        for name in REQUIRED_OUTPUTS
        if not (
            isinstance(values[name], dict) and all(isinstance(v, str) for v in values[name].values())
            if name in MAPS
            else isinstance(values[name], str) and values[name]
        )
    ]
    if wrong:
        raise OutputsError(
            f"{source}: the Terraform output(s) {', '.join(wrong)} must be non-empty strings "
            f"({', '.join(MAPS)}: maps of strings)"
        )
    return Outputs(**{name: values[name] for name in REQUIRED_OUTPUTS})


def from_file(path: Path) -> Outputs:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OutputsError(f"cannot read Terraform outputs from {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise OutputsError(f"{path} is not the JSON of `terraform output -json`")
    return parsed(raw, str(path))
