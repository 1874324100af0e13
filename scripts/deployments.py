"""The thing group's deployment, always as the full desired state.

A Greengrass deployment replaces the target's previous one entirely, so the new one keeps every component of
the current deployment (other teams' included) and changes only ours. When nothing changes, nothing is created.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from scripts.aws import calling

Components = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Change:
    name: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before is None:
            return f"+ {self.name} {self.after}"
        if self.after is None:
            return f"- {self.name} {self.before}"
        return f"~ {self.name} {self.before} -> {self.after}"


@dataclass(frozen=True)
class Policies:
    """Deployment safety: roll back a failed device, give components time to stop, bound the whole job."""

    update_timeout_seconds: int = 60
    job_timeout_minutes: int = 30

    def deployment_policies(self) -> dict[str, Any]:
        return {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": self.update_timeout_seconds, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": self.update_timeout_seconds},
        }

    def job_configuration(self) -> dict[str, Any]:
        return {"timeoutConfig": {"inProgressTimeoutInMinutes": self.job_timeout_minutes}}


def current(gg: Any, target_arn: str) -> tuple[str | None, Components]:
    """The latest deployment of the target and its components ({} when there is none)."""
    with calling(f"list the deployments of {target_arn}"):
        deployments = gg.list_deployments(targetArn=target_arn, historyFilter="LATEST_ONLY").get("deployments", [])
    latest = next((d for d in deployments if d.get("isLatestForTarget")), deployments[0] if deployments else None)
    if latest is None:
        return None, {}
    with calling(f"get deployment {latest['deploymentId']}"):
        deployment = gg.get_deployment(deploymentId=latest["deploymentId"])
    return latest["deploymentId"], dict(deployment.get("components") or {})


def desired(before: Components, ours: Components) -> Components:
    """The current deployment's components with ours updated by their specifications (the version and, where
    given, the configuration update); what else a spec of ours holds there (someone's merge) stays."""
    after = {name: dict(spec) for name, spec in before.items()}
    for name, spec in ours.items():
        after[name] = {**after.get(name, {}), **spec}
    return after


def changes(before: Components, after: Components) -> list[Change]:
    found = []
    for name in sorted(set(before) | set(after)):
        old = before.get(name, {}).get("componentVersion") if name in before else None
        new = after.get(name, {}).get("componentVersion") if name in after else None
        if old != new or before.get(name) != after.get(name):
            found.append(Change(name, old, new))
    return found


def create(
    gg: Any, target_arn: str, name: str, components: Components, policies: Policies, replaces: str | None
) -> str:
    """A deployment of `components` to the target, replacing its current deployment `replaces`.

    The client token is the desired state and the deployment it replaces: a retry of this very request cannot
    create a second deployment, yet going back to an earlier desired state creates a new one, where a token of the
    desired state alone would get the old deployment back (the service answers a known token with its first answer
    for 8 hours) and deploy nothing."""
    token = hashlib.sha256(json.dumps([target_arn, replaces, components], sort_keys=True).encode()).hexdigest()[:64]
    with calling(f"create the deployment for {target_arn}"):
        response = gg.create_deployment(
            targetArn=target_arn,
            deploymentName=name,
            components=components,
            deploymentPolicies=policies.deployment_policies(),
            iotJobConfiguration=policies.job_configuration(),
            clientToken=token,
        )
    deployment_id: str = response["deploymentId"]
    return deployment_id
