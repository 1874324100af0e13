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
from scripts.errors import ToolError
from scripts.fleet import presets

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
    """Deployment safety: roll back a failed device, give components time to stop, pace the rollout and stop it
    when too many devices fail (`rollout`, one of scripts.fleet.presets.PRESETS), bound each device's time on it."""

    update_timeout_seconds: int = 60
    job_timeout_minutes: int = 30
    rollout: str = presets.DEFAULT

    def deployment_policies(self) -> dict[str, Any]:
        return {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": self.update_timeout_seconds, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": self.update_timeout_seconds},
        }

    def job_configuration(self) -> dict[str, Any]:
        timeout = {"inProgressTimeoutInMinutes": self.job_timeout_minutes}
        return {**presets.PRESETS[self.rollout].job_configuration(), "timeoutConfig": timeout}


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


class NothingToRollBack(ToolError):
    """The target has no earlier desired state to go back to."""


# The health window's verdict, written on the deployment when the window ends (scripts/fleet/health.py): HEALTHY when
# it passed, UNHEALTHY when a device broke after it succeeded. A deployment without one was never proven (the window
# was interrupted: Ctrl-C, a kill, a lost network, an AccessDenied) and no rollback returns to it.
HEALTH_TAG = "edgeml:health"
HEALTHY, UNHEALTHY = "HEALTHY", "UNHEALTHY"


@dataclass(frozen=True)
class Release:
    """One deployment of the target, as a rollback weighs it: what it wanted, and how it ended."""

    deployment_id: str
    components: Components
    verdict: str  # "good", or why it is not a state to go back to

    @property
    def good(self) -> bool:
        return self.verdict == "good"


# Executions that never ran the deployment, and so say nothing against it: QUEUED (a thing in the group that never
# joined), CANCELED (still queued when a newer deployment replaced it: IoT's CancelJob cancels queued executions and,
# without force, leaves started ones to finish) and REMOVED (the thing left the group).
NEVER_RAN = ("Queued", "Canceled", "Removed")


def _counts(job: dict[str, Any]) -> dict[str, int]:
    details = job.get("jobProcessDetails") or {}
    return {key.removeprefix("numberOf").removesuffix("Things"): int(v or 0) for key, v in details.items()}


def weigh(gg: Any, describe_job: Any, deployment_id: str) -> Release:
    """A deployment is good when every device that ran it SUCCEEDED (at least one did) and its health window passed
    (the tooling tagged it HEALTHY); `describe_job(jobId=...)` is IoT's DescribeJob."""
    with calling(f"get deployment {deployment_id}"):
        deployment = gg.get_deployment(deploymentId=deployment_id)
    components = dict(deployment.get("components") or {})
    verdict = (deployment.get("tags") or {}).get(HEALTH_TAG)
    if verdict == UNHEALTHY:
        return Release(deployment_id, components, "its devices went unhealthy after it succeeded")
    if verdict != HEALTHY:
        return Release(deployment_id, components, "unproven: its health window never finished")
    with calling(f"describe the job of deployment {deployment_id}"):
        counts = _counts(describe_job(jobId=deployment["iotJobId"])["job"])
    others = {status: n for status, n in counts.items() if status not in ("Succeeded", *NEVER_RAN) and n}
    if others or not counts.get("Succeeded"):
        shown = ", ".join(f"{n} {status.lower()}" for status, n in others.items()) or "no device succeeded"
        return Release(deployment_id, components, f"not every device succeeded ({shown})")
    return Release(deployment_id, components, "good")


def history(gg: Any, target_arn: str) -> list[str]:
    """The target's deployments, newest first."""
    with calling(f"list the deployments of {target_arn}"):
        pages = gg.get_paginator("list_deployments").paginate(targetArn=target_arn, historyFilter="ALL")
        found = sorted(
            (d for page in pages for d in page.get("deployments", [])),
            key=lambda d: d["creationTimestamp"],
            reverse=True,
        )
    return [d["deploymentId"] for d in found]


def last_good(gg: Any, describe_job: Any, target_arn: str) -> tuple[Release, Release, list[Release]]:
    """The target's latest deployment, the newest earlier one that is good (weigh), and the ones passed over on
    the way (a rollback of a rollback never lands on a failed release)."""
    ids = history(gg, target_arn)
    if not ids:
        raise NothingToRollBack(f"{target_arn} has no deployment: nothing to roll back")
    latest = weigh(gg, describe_job, ids[0])
    passed: list[Release] = []
    for deployment_id in ids[1:]:
        release = weigh(gg, describe_job, deployment_id)
        if release.good:
            return latest, release, passed
        passed.append(release)
    skipped = "; ".join(f"{r.deployment_id}: {r.verdict}" for r in passed)
    raise NothingToRollBack(
        f"{target_arn} has no earlier deployment that every device took and stayed healthy on: nothing to roll "
        "back" + (f" (passed over {skipped})" if skipped else "")
    )


def mark(gg: Any, region: str, account: str, deployment_id: str, verdict: str) -> None:
    """Remember, in the service, how this deployment's health window ended (HEALTHY or UNHEALTHY): a rollback returns
    only to a HEALTHY one."""
    arn = f"arn:aws:greengrass:{region}:{account}:deployments:{deployment_id}"
    with calling(f"tag deployment {deployment_id} as {verdict.lower()}"):
        gg.tag_resource(resourceArn=arn, tags={HEALTH_TAG: verdict})
