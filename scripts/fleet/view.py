"""One poll's picture of a deployment across a thing group (scripts/fleet/rollout.py makes them): each device's
execution and components, the job's counts, and when the rollout is over.

A thing of the group that never joined (no core device of that name: the installer never ran on it) keeps its job
execution QUEUED for as long as the deployment lives, and Greengrass keeps the deployment open for it. The rollout is
over for the devices that joined once each of them has finished; the rest are named with what they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUCCEEDED = frozenset({"SUCCEEDED", "COMPLETED"})
FAILED = frozenset({"FAILED", "TIMED_OUT", "CANCELED", "REJECTED"})
BAD_STATES = frozenset({"ERRORED", "BROKEN"})
STATUSES = ("QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "CANCELED", "REMOVED")
SHOWN_UNJOINED = 5


@dataclass(frozen=True)
class InstalledState:
    version: str
    state: str
    details: str = ""


@dataclass(frozen=True)
class Device:
    thing: str
    health: str
    execution: str | None  # None: the device has not been reached yet
    reason: str = ""
    components: dict[str, InstalledState] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.execution in SUCCEEDED or self.execution in FAILED

    def failure(self) -> str | None:
        if self.execution not in FAILED:
            return None
        broken = [
            f"{name} {c.version} is {c.state}" + (f" ({c.details})" if c.details else "")
            for name, c in sorted(self.components.items())
            if c.state in BAD_STATES
        ]
        # After a rollback the components are healthy again: the reason alone then says what failed.
        causes = [self.reason, *broken] if self.reason or broken else ["no reason read"]
        return f"{self.thing}: deployment {self.execution}: " + "; ".join(filter(None, causes))


@dataclass(frozen=True)
class FleetView:
    """One poll's picture of a deployment across the group."""

    deployment_id: str
    job_status: str  # the IoT job's: IN_PROGRESS, CANCELED (aborted, replaced or canceled), COMPLETED
    comment: str  # why the job stopped, when the service says
    expected: int  # things in the group
    counts: dict[str, int]  # executions by status
    failures: tuple[Device, ...]  # the first failing devices, with their reasons where read
    devices: tuple[Device, ...] = ()  # every device, for a small group
    calls: int = 0  # API calls this poll made
    throttled: int = 0  # throttled requests so far
    unjoined: tuple[str, ...] = ()  # things of the group that are no core device: the installer never ran there
    unjoined_queued: int = 0  # of the active executions, those of unjoined things (QUEUED until they join)

    @property
    def notified(self) -> int:
        return sum(self.counts.values())

    @property
    def active(self) -> int:
        return self.counts.get("QUEUED", 0) + self.counts.get("IN_PROGRESS", 0)

    @property
    def failed(self) -> int:
        return sum(self.counts.get(status, 0) for status in ("FAILED", "TIMED_OUT", "REJECTED"))

    @property
    def stopped(self) -> bool:
        return self.job_status != "IN_PROGRESS"

    @property
    def finished(self) -> bool:
        """The job stopped, or every device that joined has finished (what is active is the unjoined things')."""
        joined = self.expected - len(self.unjoined)
        terminal = self.notified - self.active
        return self.stopped or (self.expected > 0 and self.active == self.unjoined_queued and terminal >= joined)

    def summary(self) -> str:
        shown = ", ".join(f"{self.counts[s]} {s.lower().replace('_', ' ')}" for s in STATUSES if self.counts.get(s))
        waiting = max(0, self.expected - self.notified)
        return (
            f"{self.notified}/{self.expected} devices reached"
            + (f" ({shown})" if shown else "")
            + (f", {waiting} not reached yet" if waiting and not self.stopped else "")
            + (f"; {self.never_joined()}" if self.unjoined else "")
        )

    def never_joined(self) -> str:
        names = ", ".join(self.unjoined[:SHOWN_UNJOINED]) + (", ..." if len(self.unjoined) > SHOWN_UNJOINED else "")
        return (
            f"{len(self.unjoined)} of the group's things never joined ({names}): their deployment waits for them "
            "(`make device THING=<name>` prints how a device joins)"
        )

    def record(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment_id,
            "job_status": self.job_status,
            "comment": self.comment,
            "devices": self.expected,
            "executions": {s.lower(): self.counts.get(s, 0) for s in STATUSES},
            "failures": [d.failure() for d in self.failures],
            "api_calls_last_poll": self.calls,
            "throttled": self.throttled,
            "not_joined": list(self.unjoined),
        }
