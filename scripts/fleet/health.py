"""After the devices report SUCCEEDED: a settle window in which a component that breaks fails the release anyway.

The nucleus reports a deployment SUCCEEDED once every component is RUNNING or FINISHED (DeploymentConfigMerger
.waitForServicesToStart) and keeps no stability window: a container that dies seconds after it started leaves the
device UNHEALTHY on the new version, and nothing rolls back. So the tooling watches the group for `window` seconds,
each poll one `ListCoreDevices` of the UNHEALTHY devices only (flat in the group's size) and `ListInstalledComponents`
for at most DETAILS_PER_POLL of them, and fails naming each device, the component and where its log is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scripts.errors import ToolError
from scripts.fleet import pacing, rollout

DETAILS_PER_POLL = 3
BAD = frozenset({"ERRORED", "BROKEN"})


class HealthError(ToolError):
    """A device went UNHEALTHY after it reported the deployment SUCCEEDED; the message names it."""


@dataclass(frozen=True)
class Breakage:
    thing: str
    component: str
    version: str
    state: str
    log: str  # where to look

    def __str__(self) -> str:
        return f"{self.thing}: {self.component} {self.version} is {self.state} (log: {self.log})"


def watch(
    follow: pacing.Watch,
    group_arn: str,
    watched: set[str],
    window: float,
    interval: float,
    log_of: Callable[[str, str], str],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Polls for `window` seconds; HealthError with every breakage found once one of our components on a device of
    the group is ERRORED or BROKEN. `log_of(thing, component)` says where that component's log is."""
    deadline = clock() + window
    seen: set[str] = set()
    while True:
        unhealthy = follow.pages(
            "list the unhealthy core devices",
            follow.gg.list_core_devices,
            "coreDevices",
            thingGroupArn=group_arn,
            status="UNHEALTHY",
        )
        found: list[Breakage] = []
        for core in [c for c in unhealthy if c["coreDeviceThingName"] not in seen][:DETAILS_PER_POLL]:
            thing = core["coreDeviceThingName"]
            seen.add(thing)
            device = rollout.device(follow, thing, None, "UNHEALTHY", watched)
            found += [
                Breakage(thing, name, c.version, c.state, log_of(thing, name))
                for name, c in sorted(device.components.items())
                if c.state in BAD
            ]
        if found:
            more = len({c["coreDeviceThingName"] for c in unhealthy}) - len({b.thing for b in found})
            raise HealthError(
                "after the deployment succeeded, a component broke:\n  "
                + "\n  ".join(str(b) for b in found)
                + (f"\n  ... and {more} more unhealthy device(s)" if more > 0 else "")
            )
        if clock() >= deadline:
            return
        sleep(min(interval, max(0.0, deadline - clock())))
