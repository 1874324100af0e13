"""Follow a deployment across a fleet in a handful of calls per poll, however large the thing group.

A thing-group deployment stays ACTIVE while devices fail, so its own status says nothing; its IoT job does. Each
poll reads:
- the job (iot:DescribeJob): its status and how many executions are queued, in progress, succeeded, failed...;
- for a small group (at most SMALL_GROUP things), every execution in one page and every core device's health
  (iot:ListJobExecutionsForJob, greengrassv2:ListCoreDevices): the per-device table;
- for a larger one, only the failing executions (ListJobExecutionsForJob filtered by FAILED and TIMED_OUT, read
  again only when their count changed: one call per 250 failures);
- per-device detail (the effective deployment's reason, the components' states) for at most DETAILS_PER_POLL
  failing devices a poll and MAX_DETAILED in all.
So a poll costs at most 5 calls plus one per 250 failures, with 10 or 10,000 devices. The group's things are
counted once, before the first poll (iot:ListThingsInThingGroup), so that devices the rollout has not reached
yet count as waiting, and so are the core devices among them (greengrassv2:ListCoreDevices): a thing that never
joined keeps its execution QUEUED for as long as the deployment lives, so the rollout is over once every device
that joined has finished (scripts/fleet/view.py). Only when every active execution could be an unjoined thing's
are the joins read again and the QUEUED executions listed. A device that joined and then went silent is waited
for, up to the deadline, and named. Every call goes through a Pacer: a request rate is never exceeded and
throttling is waited out as the service asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scripts.errors import ToolError
from scripts.fleet.pacing import Watch

# What a follow returns is part of this module's interface (rollout.FleetView, rollout.Device).
from scripts.fleet.view import STATUSES, InstalledState
from scripts.fleet.view import Device as Device
from scripts.fleet.view import FleetView as FleetView

LISTED_FAILURES = ("FAILED", "TIMED_OUT")  # a Greengrass core does not reject; REJECTED is counted, not listed
SMALL_GROUP = 20
LIST_PAGE = 250
DETAILS_PER_POLL = 1
MAX_DETAILED = 10
EMPTY_GROUP_GRACE = 10.0


class RolloutError(ToolError):
    """Devices failed, the job was stopped, or the rollout did not finish in time; the message says where and why,
    `view` what was seen last."""

    def __init__(self, message: str, view: FleetView | None = None) -> None:
        super().__init__(message)
        self.view = view


def _named(arn: str) -> str:
    """A thing's or thing group's name, from its ARN."""
    return arn.rsplit("/", 1)[-1]


def group_things(watch: Watch, group_arn: str) -> list[str]:
    name = _named(group_arn)
    return watch.pages(
        f"list the things in {name}",
        watch.iot.list_things_in_thing_group,
        "things",
        thingGroupName=name,
        maxResults=250,
    )


def device(watch: Watch, thing: str, deployment_id: str | None, health: str, watched: set[str]) -> Device:
    """One device's execution of the deployment and our components' states on it (2 calls)."""
    action = f"read the deployments and components of {thing}"
    effective = watch.pages(
        action, watch.gg.list_effective_deployments, "effectiveDeployments", coreDeviceThingName=thing
    )
    installed = watch.pages(
        action, watch.gg.list_installed_components, "installedComponents", coreDeviceThingName=thing
    )
    ours = next((e for e in effective if e.get("deploymentId") == deployment_id), None)
    components = {
        c["componentName"]: InstalledState(
            c.get("componentVersion", "?"), c.get("lifecycleState", "?"), c.get("lifecycleStateDetails", "")
        )
        for c in installed
        if c.get("componentName") in watched
    }
    return Device(thing, health, ours.get("coreDeviceExecutionStatus") if ours else None, _reason(ours), components)


def _reason(effective: dict[str, Any] | None) -> str:
    """The device's reason, with the nucleus's error codes (statusDetails.errorStack, outermost first): the codes
    the developer guide's troubleshooting pages are searched by."""
    if effective is None:
        return ""
    stack = effective.get("statusDetails", {}).get("errorStack", [])
    return str(effective.get("reason", "")) + (f" [error stack: {', '.join(stack)}]" if stack else "")


def core_devices(watch: Watch, group_arn: str) -> list[dict[str, Any]]:
    return watch.pages(
        f"list the core devices of {group_arn}", watch.gg.list_core_devices, "coreDevices", thingGroupArn=group_arn
    )


def snapshot(watch: Watch, group_arn: str, deployment_id: str | None, watched: set[str]) -> list[Device]:
    """Every core device of the group in detail: two calls each, for a small group or a one-off look."""
    cores = core_devices(watch, group_arn)
    return [
        device(watch, core["coreDeviceThingName"], deployment_id, core.get("status", "?"), watched)
        for core in sorted(cores, key=lambda c: c["coreDeviceThingName"])
    ]


class Follower:
    """The state carried from one poll to the next: the job, the group's things, the failures read so far."""

    def __init__(self, watch: Watch, group_arn: str, deployment_id: str, watched: set[str]) -> None:
        self.watch, self.group_arn, self.deployment_id, self.watched = watch, group_arn, deployment_id, watched
        got = watch.call(f"get deployment {deployment_id}", watch.gg.get_deployment, deploymentId=deployment_id)
        self.job_id: str = got["iotJobId"]
        self.things = group_things(watch, group_arn)
        self.joined = self._joined()
        self.failing: dict[str, list[str]] = {status: [] for status in LISTED_FAILURES}
        self.detailed: dict[str, Device] = {}

    def recount(self) -> None:
        self.things = group_things(self.watch, self.group_arn)
        self.joined = self._joined()

    def _joined(self) -> set[str]:
        return {core["coreDeviceThingName"] for core in core_devices(self.watch, self.group_arn)}

    def _unjoined(self, counts: dict[str, int], queued: set[str] | None) -> tuple[tuple[str, ...], int]:
        """The things that never joined, and how many of the active executions are theirs. Read only when all that
        is active could be theirs: then joins since the start are read again, and the QUEUED executions listed."""
        unjoined = {t for t in self.things if t not in self.joined}
        if not unjoined or counts["IN_PROGRESS"] or not 0 < counts["QUEUED"] <= len(unjoined):
            return tuple(sorted(unjoined)), 0
        if queued is None:  # a small group's poll has just read both (_small_group)
            self.joined = self._joined()
            unjoined = {t for t in self.things if t not in self.joined}
            summaries = self.watch.pages(
                f"list the QUEUED executions of job {self.job_id}",
                self.watch.iot.list_job_executions_for_job,
                "executionSummaries",
                jobId=self.job_id,
                status="QUEUED",
                maxResults=LIST_PAGE,
            )
            queued = {_named(s["thingArn"]) for s in summaries}
        return tuple(sorted(unjoined)), len(queued & unjoined)

    def poll(self) -> FleetView:
        watch, before = self.watch, self.watch.pacer.calls
        job = watch.call(f"describe job {self.job_id}", watch.iot.describe_job, jobId=self.job_id)["job"]
        details = job.get("jobProcessDetails") or {}
        counts = {s: int(details.get(f"numberOf{s.title().replace('_', '')}Things") or 0) for s in STATUSES}
        small = len(self.things) <= SMALL_GROUP
        rows: dict[str, Device] = {}
        if small:
            rows = self._small_group()
        else:
            self._read_failures(counts)
        queued = {t for t, row in rows.items() if row.execution == "QUEUED"} if small else None
        unjoined, unjoined_queued = self._unjoined(counts, queued)
        failing = [t for status in LISTED_FAILURES for t in self.failing[status]]
        budget = max(0, min(DETAILS_PER_POLL, MAX_DETAILED - len(self.detailed)))
        for thing in [t for t in failing if t not in self.detailed][:budget]:
            health = rows[thing].health if thing in rows else "?"
            self.detailed[thing] = device(watch, thing, self.deployment_id, health, self.watched)
        status_of = {t: s for s in LISTED_FAILURES for t in self.failing[s]}
        failures = tuple(
            replace(self.detailed[t], execution=status_of[t]) if t in self.detailed else Device(t, "?", status_of[t])
            for t in failing[:MAX_DETAILED]
        )
        devices = tuple(
            replace(self.detailed[t], health=row.health, execution=row.execution) if t in self.detailed else row
            for t, row in sorted(rows.items())
        )
        return FleetView(
            self.deployment_id,
            str(job.get("status", "?")),
            str(job.get("comment", "")),
            len(self.things),
            counts,
            failures,
            devices,
            watch.pacer.calls - before,
            watch.pacer.throttled,
            unjoined,
            unjoined_queued,
        )

    def _small_group(self) -> dict[str, Device]:
        watch = self.watch
        executions = watch.call(
            f"list the executions of job {self.job_id}",
            watch.iot.list_job_executions_for_job,
            jobId=self.job_id,
            maxResults=LIST_PAGE,
        )["executionSummaries"]
        cores = watch.call(
            f"list the core devices of {self.group_arn}",
            watch.gg.list_core_devices,
            thingGroupArn=self.group_arn,
            maxResults=100,
        )["coreDevices"]
        health = {c["coreDeviceThingName"]: c.get("status", "?") for c in cores}
        self.joined = set(health)
        status = {_named(e["thingArn"]): e["jobExecutionSummary"]["status"] for e in executions}
        for kind in LISTED_FAILURES:
            self.failing[kind] = [t for t, s in status.items() if s == kind]
        return {t: Device(t, health.get(t, "?"), status.get(t)) for t in {*self.things, *status}}

    def _read_failures(self, counts: dict[str, int]) -> None:
        for kind in LISTED_FAILURES:
            if counts[kind] == len(self.failing[kind]):
                continue
            summaries = self.watch.pages(
                f"list the {kind} executions of job {self.job_id}",
                self.watch.iot.list_job_executions_for_job,
                "executionSummaries",
                jobId=self.job_id,
                status=kind,
                maxResults=LIST_PAGE,
            )
            self.failing[kind] = [_named(s["thingArn"]) for s in summaries]


def follow(
    watch: Watch,
    group_arn: str,
    deployment_id: str,
    watched: set[str],
    timeout: float,
    on_update: Callable[[FleetView], None],
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FleetView:
    """Poll until every device of the group has finished the deployment, or its job stopped; the last view, with
    every device in detail for a small group. A failure, a stopped job or the deadline is a RolloutError."""
    started = clock()
    deadline = started + timeout
    follower = Follower(watch, group_arn, deployment_id, watched)
    while True:
        view = follower.poll()
        on_update(view)
        if view.finished:
            break
        if not follower.things and clock() >= min(deadline, started + EMPTY_GROUP_GRACE):
            raise RolloutError(f"no things in {group_arn}: nothing received deployment {deployment_id}", view)
        if clock() >= deadline:
            waiting = f"{view.counts['QUEUED']} queued (offline devices stay queued)" if view.counts["QUEUED"] else ""
            raise RolloutError(
                f"deployment {deployment_id} did not finish within {timeout:.0f}s: {view.summary()}"
                + (f"; {waiting}" if waiting else ""),
                view,
            )
        sleep(interval)
        if not follower.things:
            follower.recount()  # a device may join a new group a moment after it exists
    if len(follower.things) <= SMALL_GROUP:
        view = replace(view, devices=tuple(snapshot(watch, group_arn, deployment_id, watched)))
        on_update(view)  # the last frame shows every device's components as they ended
    problems = _problems(view)
    if problems:
        raise RolloutError(problems, view)
    return view


def _problems(view: FleetView) -> str:
    failures = [f for d in (view.devices or view.failures) if (f := d.failure())]
    if view.expected and len(view.unjoined) == view.expected:
        return f"deployment {view.deployment_id} reached no device: {view.never_joined()}"
    if not view.stopped and not view.failed:
        return ""
    head = (
        f"deployment {view.deployment_id} stopped ({view.job_status}"
        + (f": {view.comment}" if view.comment else "")
        + f"): {view.summary()}"
        if view.stopped
        else f"deployment {view.deployment_id}: {view.failed} of {view.expected} devices failed: {view.summary()}"
    )
    shown = failures[:MAX_DETAILED]
    more = view.failed - len(shown)
    return "\n".join([head, *shown, *([f"... and {more} more"] if more > 0 else [])])
