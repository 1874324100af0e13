"""The GitHub workflows' hardening, read from the files: what actionlint, zizmor and checkov (`make lint`) do not
check on their own. GitHub's security hardening guide: a full-length commit SHA is the only immutable reference
to an action; untrusted or configured values reach a script through `env:`, never through `${{ }}` in its text;
an OIDC subject names the environment when a job runs in one (`repo:OWNER/REPO:environment:NAME`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    return document


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["terraform.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_and_names_its_release(path: Path) -> None:
    lines = [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines() if "uses:" in line]
    assert lines
    assert [line for line in lines if not PINNED.match(line)] == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_spliced_into_a_script(path: Path) -> None:
    scripts = [step["run"] for step in steps(load(path)) if "run" in step]
    assert scripts
    assert [script for script in scripts if "${{" in script] == []


def test_the_plan_runs_on_demand_in_the_environment_the_plan_roles_trust_names() -> None:
    workflow = load(REPO / ".github" / "workflows" / "terraform.yml")
    assert "workflow_dispatch" in workflow[True]  # YAML 1.1 reads the key `on` as true
    plan = workflow["jobs"]["plan"]
    variables = (REPO / "terraform" / "modules" / "github-plan-role" / "variables.tf").read_text()
    default = re.search(r'variable "environment" \{.*?default\s+=\s+"([^"]+)"', variables, re.DOTALL)
    assert default is not None and plan["environment"] == default.group(1)
    assert plan["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    # It plans the team's state, with its lock, from the settings `make state` writes, and publishes the plan.
    scripts = "\n".join(step.get("run", "") for step in plan["steps"])
    assert "terraform init -input=false -lockfile=readonly -backend-config=state.s3.tfbackend" in scripts
    assert "-lock=false" not in scripts and "terraform plan -input=false -lock-timeout=5m -out=tfplan" in scripts
    uploads = [step for step in plan["steps"] if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert [step["with"]["path"] for step in uploads] == ["terraform/plan.txt"]
    assert "gh pr comment" in scripts
    assert workflow["permissions"] == {}  # nothing by default: each job asks for what it uses
    checkouts = [step for step in steps(workflow) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts and all(step["with"]["persist-credentials"] is False for step in checkouts)
